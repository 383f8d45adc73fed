"""Headless consumer of the tuning loop's events (``--batch``): rich progress, a final table, the session file.

Never imports textual. Exit codes: 0 done; 1 the run failed (no GPU for a GPU job, a runner error); 2 bad
input (invalid job file, unreadable session); 130 interrupted (the session holds every finished round).
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dop_tui.job import Job, JobError
from dop_tui.jobrun import job_events
from dop_tui.scenario import OPS, scenario_label
from dop_tui.search.events import DeviceProgress, Finished, JobStarted, Measured, ModelRetrained, NewBest, RoundDone
from dop_tui.session.guard import OutputError, fresh_path
from dop_tui.session.store import Session, SessionError, load
from dop_tui.session.summary import best_per_scenario, delta_summary, session_delta


def default_output(job: Job) -> Path:
    """Where a job's session goes when ``-o`` is not given: ``<job file stem>.session.json.gz`` here, or the
    first free ``<stem>-N.session.json.gz`` (a default name never replaces a file)."""
    stem = Path(job.source).stem if job.source else "dop"
    return fresh_path(Path(f"{stem}.session.json.gz"))


def run_batch(
    job: Job | None,
    *,
    output: Path | None,
    resume: Path | None,
    console: Console,
    time_limit_s: float | None = None,
    force: bool = False,
    retime_baselines: bool = False,
) -> int:
    """Run the job headless; returns the exit code. ``time_limit_s`` stops it after the round in flight then;
    ``force`` lets ``output`` replace an existing file; ``retime_baselines`` times every baseline again first."""
    from dop_tui.run_control import RunControl

    control = RunControl(time_limit_s)
    controls = control.make_controls()
    controls.retime_baselines = retime_baselines
    if output is None and resume is None and job is not None:
        output = default_output(job)
    seen = Session()  # what the final table is built from: the resumed session's measurements and the new ones
    if resume is not None:
        with contextlib.suppress(SessionError):  # job_events names the problem
            seen.measurements = list(load(resume).measurements)
    started = time.monotonic()
    last_metrics = devices = ""
    finished: Finished | None = None
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[note]}"), console=console, transient=False)  # fmt: skip
    previous = _on_sigterm(_interrupt)  # a kill is an interruption: the session keeps its finished rounds
    try:
        with progress:
            task = progress.add_task("starting", total=None, note="")
            for ev in control.follow(job_events(job, output=output, resume=resume, controls=controls, force=force)):
                if isinstance(ev, JobStarted):
                    seen.scenarios = {scn.key: scn for scn in ev.specs}
                    output = output or resume
                    progress.update(task, total=ev.budget, description=f"{ev.strategy} on {ev.runner}")
                    console.print(f"[bold]{ev.job.get('name', 'job')}[/]: {len(ev.scenarios)} scenarios, "
                                  f"budget {ev.budget} measurements, {ev.runner} ({ev.device})")  # fmt: skip
                elif isinstance(ev, Measured):
                    seen.measurements.extend(ev.measurements)
                elif isinstance(ev, DeviceProgress) and len(ev.devices) > 1:  # one GPU: the rate says it all
                    label = (lambda k: scenario_label(k, short=True)) if console.width >= 160 else None
                    devices = ev.line(label)
                    progress.update(task, note=f"{devices}  {last_metrics}" if console.width >= 120 else devices)
                elif isinstance(ev, ModelRetrained) and ev.metrics and ev.metrics.spearman is not None:
                    m = ev.metrics
                    recall = f", top-{m.k} recall {m.topk_recall:.2f}" if m.topk_recall is not None else ""
                    last_metrics = f"model: spearman {m.spearman:.2f}{recall} (n={m.n})"
                elif isinstance(ev, NewBest) and ev.previous_us is not None:
                    where = scenario_label(ev.scenario, short=True)
                    progress.console.log(f"new best {ev.measurement.us:.2f} us ({ev.previous_us:.2f}) "
                                         f"{ev.measurement.kernel} on {where}")  # fmt: skip
                elif isinstance(ev, RoundDone):
                    rate = 60 * ev.budget_used / ev.elapsed_s if ev.elapsed_s > 0 else 0
                    note = f"{rate:.0f}/min" + (f" ({devices})" if devices else "")
                    note += f"  {last_metrics}" if console.width >= 120 else ""
                    progress.update(task, completed=ev.budget_used, description=f"round {ev.round}", note=note)
                elif isinstance(ev, Finished):
                    progress.update(task, completed=ev.budget_used)
                    finished = ev
    except (JobError, SessionError, OutputError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    except RuntimeError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: every finished round is in {output}; continue with --resume {output}")
        return 130
    finally:
        _on_sigterm(previous)
    if finished is None:
        console.print("[red]error:[/] the tuning loop ended without finishing")
        return 1
    timed = any(m.us is not None for m in seen.measurements)
    console.print(final_table(seen, console.width) if timed else checked_table(seen))
    summary = delta_table(seen) if timed else None
    if summary is not None:
        console.print(summary)
    for line in finished.notes:
        console.print(line)
    console.print(f"{finished.reason}: {finished.budget_used} measurements in {time.monotonic() - started:.1f} s; "
                  f"session written to {output}")  # fmt: skip
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _on_sigterm(handler: object) -> object:
    """Install ``handler`` for SIGTERM (main thread only; elsewhere nothing changes); returns the previous one."""
    try:
        return signal.signal(signal.SIGTERM, handler)  # type: ignore[arg-type]
    except ValueError:  # not the main thread
        return handler


def _natural(session: Session, key: str) -> tuple:
    """Sort key: op, shape, rank, tokens, segments, workload (numbers as numbers; unknown scenarios last)."""
    s = session.scenarios.get(key)
    if s is None:
        return (1, key)
    return (0, OPS.index(s.op), s.h_in, s.h_outs, s.rank, s.dtype, s.num_tokens, -s.num_segments, s.workload)


def final_table(session: Session, width: int = 200) -> Table:
    """Per scenario, in natural order: the best sketch, its time, speedup over the best baseline and fraction of
    the floor; from 120 columns on also its config and its speedup over each baseline."""
    best = sorted(best_per_scenario(session, screening_fallback=True), key=lambda b: _natural(session, b.scenario))
    wide = width >= 120
    notes = ["* a screening-pass time (ranking quality): the replayed dataset has no full timing there"] * any(
        b.measurement.screening for b in best
    )
    if not wide:
        notes.append("vs best: the fastest baseline's time over ours; 120 columns show configs and every baseline")
    table = Table(title="best kernel per scenario", caption="\n".join(notes) or None)
    cols = ("scenario", "sketch", "config", "us", "vs best", "speedup over each baseline", "floor")
    cols = cols if wide else ("scenario", "sketch", "us", "vs best", "floor")
    for col in cols:
        table.add_column(col, justify="right" if col in ("us", "vs best", "floor") else "left", overflow="fold")
    for b in best:
        m = b.measurement
        cells = {
            "scenario": scenario_label(b.scenario, short=not wide),
            "sketch": m.kernel if wide else m.kernel.split("/", 1)[1],  # the scenario names the op
            "config": " ".join(f"{k}={v}" for k, v in sorted(m.config.items())),
            "us": f"{m.us:.2f}" + ("*" if m.screening else ""),
            "vs best": f"{b.vs_best:.2f}x" if b.vs_best is not None else "-",
            "speedup over each baseline": " ".join(f"{n} {r:.2f}x" for n, r in b.speedup.items()),
            "floor": f"{m.floor_fraction:.2f}" if m.floor_fraction is not None else "-",
        }
        style = "red" if b.vs_best is not None and b.vs_best < 1 else None  # slower than a baseline
        table.add_row(*(cells[c] for c in cols), style=style)
    return table


def delta_table(session: Session) -> Table | None:
    """The LoRA delta ``y += (x A^T) B^T`` of the job's fused scenarios against each baseline's own delta and
    against the best baseline per case; None when the job has no fused scenario with a result."""
    cases = session_delta(session, screening_fallback=True)
    summary = delta_summary(cases)
    if not summary:
        return None
    fused = sum(1 for c in cases if c.how == "fused")
    table = Table(title=f"LoRA delta, ours (best fused or best shrink + best expand; fused won {fused} of "
                        f"{len(cases)}) against each baseline's delta")  # fmt: skip
    for col in ("against", "geo-mean", "min", "max", "cases"):
        table.add_column(col, justify="left" if col == "against" else "right")
    for name, r in summary.items():
        label = "best baseline per case" if name == "best" else name
        table.add_row(label, f"{r.geomean:.2f}x", f"{r.min:.2f}x", f"{r.max:.2f}x", str(r.n),
                      style="bold" if name == "best" else None)  # fmt: skip
    return table


def checked_table(session: Session) -> Table:
    """Per scenario, for a backend that checks without timing (the interpreter): measurements by status."""
    table = Table(title="checked per scenario (no timing on this backend)")
    for col in ("scenario", "checked", "ok", "wrong", "other"):
        table.add_column(col, justify="left" if col == "scenario" else "right")
    per: dict[str, list[str]] = {}
    for m in session.measurements:
        per.setdefault(m.scenario, []).append(m.status)
    for key, sts in sorted(per.items()):
        ok, wrong = sts.count("ok"), sts.count("wrong")
        table.add_row(scenario_label(key), str(len(sts)), str(ok), str(wrong), str(len(sts) - ok - wrong))
    return table
