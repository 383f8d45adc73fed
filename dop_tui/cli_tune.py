"""``dop tune`` and the ``dop-tui`` entry point: a tuning job headless (``--batch``) or in the workbench.

``dop-tui --batch JOB.toml`` is ``dop tune --batch JOB.toml``; neither loads textual. Without ``--batch`` both
open the workbench on the job (or on a session to resume; with no argument at all, the bundled H200 dataset
in replay on a machine without a GPU).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dop_tui import __version__
from dop_tui.job import BACKENDS, JobError, load_job
from dop_tui.session.store import SessionError

console = Console()


def print_version(value: bool) -> None:
    """Eager ``--version`` of ``dop`` and ``dop-tui``."""
    if value:
        console.print(f"dop-tui {__version__}")
        raise typer.Exit()


def tune(
    job_file: Annotated[
        Path | None,
        typer.Argument(
            help="Tuning job (TOML), or the name of a bundled one: replay-h200, h200-7b-decode, "
            "h200-vllm-configs (in sessions/ of the checkout, or installed with the package)."
        ),
    ] = None,
    batch: Annotated[
        bool, typer.Option("--batch", help="Headless: progress, a final table, the session file.")
    ] = False,
    backend: Annotated[str | None, typer.Option("--backend", help=f"Override: {', '.join(BACKENDS)}.")] = None,
    budget: Annotated[int | None, typer.Option("--budget", min=1, help="Override: measurements to spend.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override: the search's seed.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Session file to write (a new file; an existing one needs --force)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Let -o replace an existing file (never needed to --resume in place).")
    ] = False,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue the job of this session (written after every round).")
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", min=1, help="With --batch: stop after this many seconds.")
    ] = None,
    retime_baselines: Annotated[
        bool,
        typer.Option(
            "--retime-baselines",
            help="With --batch: time every baseline again before searching (a resume on another machine or day; "
            "reports take each baseline's fastest time).",
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Tune a job (TOML): headless with --batch, otherwise in the workbench."""
    overrides = {"backend": backend, "budget": budget, "seed": seed}
    if job_file is not None and not job_file.exists():
        from dop_tui.jobrun import bundled_job

        job_file = bundled_job(str(job_file)) or job_file  # a bundled job by name; else the error names the file
    try:
        job = load_job(job_file).with_overrides(**overrides) if job_file else None
        if job is None and resume is not None and any(v is not None for v in overrides.values()):
            from dop_tui.jobrun import resume_job

            job = resume_job(resume)[0].with_overrides(**overrides)
    except (JobError, SessionError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if retime_baselines and not batch:
        console.print("[red]error:[/] --retime-baselines works with --batch")
        raise typer.Exit(2)
    if batch:
        if job is None and resume is None:
            console.print("[red]error:[/] --batch needs a job file (JOB.toml) or --resume SESSION")
            raise typer.Exit(2)
        from dop_tui.batch import run_batch

        raise typer.Exit(run_batch(job, output=output, resume=resume, console=console, time_limit_s=time_limit,
                                   force=force, retime_baselines=retime_baselines))  # fmt: skip
    from dop_tui.ui.app import run_app

    run_app(job, resume, output=output)


tui_app = typer.Typer(
    help="dop-tui: the tuning workbench (with --batch, the same job headless).",
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)
tui_app.command()(tune)


def tui_main() -> None:
    """Entry point of ``dop-tui``."""
    tui_app()
