"""The ``dop`` command line: inspect the search space and check kernels against the reference."""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from dop_tui import __version__
from dop_tui.cli_scenario import (
    BatchOpt,
    DtypeOpt,
    HInOpt,
    HOutOpt,
    ModelOpt,
    OpOpt,
    ProjOpt,
    RankOpt,
    WorkloadOpt,
    scenario_from_flags,
)

app = typer.Typer(
    help="dop: auto-tuning of SGMV multi-LoRA kernels in Triton (after Dop, AAAI 2025).",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)


def _fail(msg: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {msg}")
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        console.print(f"dop-tui {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """dop: auto-tuning of SGMV multi-LoRA kernels in Triton."""


@app.command()
def space(
    model: ModelOpt = "llama2-7b",
    proj: ProjOpt = "q",
    h_in: HInOpt = None,
    h_out: HOutOpt = None,
    op: OpOpt = "shrink",
    rank: RankOpt = 16,
    batch: BatchOpt = 8,
    workload: WorkloadOpt = "distinct",
    dtype: DtypeOpt = "bf16",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")] = False,
) -> None:
    """Show the sketch tree of a scenario with the number of valid configs per sketch."""
    from dop_tui.space import count_valid, get_sketch

    try:
        scn = scenario_from_flags(model, proj, h_in, h_out, op, rank, batch, workload, dtype)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    counts = count_valid(scn)
    total = sum(counts.values())
    if as_json:
        sketches = [
            {"op": sk.op, "family": sk.family, "sketch": sk.name, "id": sk.id, "valid": counts[sk.id]}
            for sk in map(get_sketch, counts)
        ]
        print(json.dumps({"scenario": scn.key, "total": total, "sketches": sketches, "detail": scn.to_json()}))
        return
    tree = Tree(f"[bold]{scn.op}[/]  {scn.describe()}  [dim]{scn.key}[/]")
    families: dict[str, Tree] = {}
    for sid, n in counts.items():
        sk = get_sketch(sid)
        if sk.family not in families:
            fam_total = sum(c for i, c in counts.items() if get_sketch(i).family == sk.family)
            families[sk.family] = tree.add(f"[cyan]{sk.family}[/]  ({fam_total} valid)")
        families[sk.family].add(f"{sk.name}: [bold]{n}[/] valid  [dim]{sk.doc}[/]")
    console.print(tree)
    console.print(f"total: [bold]{total}[/] valid configs")


@app.command()
def check(
    backend: Annotated[
        str, typer.Option("--backend", help="interpret (CPU, Triton interpreter) or gpu.")
    ] = "interpret",
    samples: Annotated[int, typer.Option("--samples", min=1, help="Random valid configs per sketch.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the config sampling and the inputs.")] = 0,
    model: ModelOpt = "llama2-7b",
    proj: ProjOpt = "q",
    h_in: HInOpt = None,
    h_out: HOutOpt = None,
    op: OpOpt = "shrink",
    rank: RankOpt = 16,
    batch: BatchOpt = 8,
    workload: WorkloadOpt = "distinct",
    dtype: DtypeOpt = "bf16",
) -> None:
    """Run random valid configs of every sketch, and every baseline, against the float64 reference.

    The interpreter costs about 2 ms per tile step: on a CPU, pass small shapes (--h-in 512 --h-out 384).
    """
    try:
        scn = scenario_from_flags(model, proj, h_in, h_out, op, rank, batch, workload, dtype)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if backend == "interpret":
        if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
            raise _fail("triton was imported before the interpreter could be enabled; run `dop check` in a new process")
        os.environ["TRITON_INTERPRET"] = "1"
        device = "cpu"
    elif backend == "gpu":
        import torch

        if not torch.cuda.is_available():
            raise _fail("--backend gpu needs a CUDA GPU and none is visible (try --backend interpret)")
        device = "cuda"
    else:
        raise _fail(f"unknown backend {backend!r}; expected interpret or gpu")

    from dop_tui.measure.check import check_kernel
    from dop_tui.space import BASELINES, sample_many, sketches_for

    rng = random.Random(seed)
    table = Table(title=f"{backend} check: {scn.describe()}")
    table.add_column("kernel", no_wrap=True)
    table.add_column("configs", justify="right")
    table.add_column("worst rel. err", justify="right")
    table.add_column("tol.", justify="right")
    table.add_column("result")
    failures = 0
    jobs: list[tuple[str, list[dict[str, int]]]] = [
        (sk.id, [c.params for c in sample_many(sk.id, scn, samples, rng)]) for sk in sketches_for(scn.op)
    ]
    jobs += [(b.id, [{}]) for b in BASELINES if b.op == scn.op]
    with console.status("checking...") as status:
        for kid, configs in jobs:
            worst, tol, errors = 0.0, 0.0, []
            for i, cfg in enumerate(configs):
                status.update(f"checking {kid} ({i + 1}/{len(configs)})")
                res = check_kernel(kid, scn, cfg, device=device, seed=seed + i)
                worst, tol = max(worst, res.rel_error), res.tolerance
                if not res.ok:
                    errors.append(res.error or f"rel. error {res.rel_error:.2e} with {cfg}")
            failures += bool(errors)
            verdict = "[green]pass[/]" if not errors else f"[red]FAIL[/] {errors[0]}"
            if configs:
                table.add_row(kid, str(len(configs)), f"{worst:.2e}", f"{tol:.0e}", verdict)
            else:
                table.add_row(kid, "0", "-", "-", "[yellow]no valid config[/]")
    console.print(table)
    if failures:
        raise _fail(f"{failures} kernel(s) failed the check", code=1)


def tui_main() -> None:
    """Entry point of ``dop-tui``: the workbench is not built yet, so point to the working commands."""
    err.print(
        "dop-tui: the interactive workbench is not built yet (see the issue tracker).\n"
        "Use `dop space` and `dop check` (dop --help) meanwhile."
    )
    raise SystemExit(2)


if __name__ == "__main__":
    app()
