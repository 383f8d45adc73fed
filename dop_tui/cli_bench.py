"""``dop bench``: benchmarks of dop's own machinery on recorded sessions (no GPU needed)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

bench_app = typer.Typer(
    help="Benchmarks of dop's own machinery on recorded sessions.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
)
console = Console()


@bench_app.command("search")
def search(
    session: Annotated[Path, typer.Argument(help="A recorded session (.json or .json.gz), replayed.")],
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds 0..N-1 per strategy.")] = 10,
    budget: Annotated[int, typer.Option("--budget", min=1, help="Measurements per scenario, on average.")] = 64,
    early: Annotated[int, typer.Option("--early", min=1, help="Also report the best of each scenario's first N.")] = 16,
    strategies: Annotated[
        str, typer.Option("--strategies", help="Comma-separated: evolution, random, genetic, grid.")
    ] = "evolution,random,genetic,grid",
    scenarios: Annotated[
        int, typer.Option("--scenarios", min=0, help="Scenarios spread evenly over the session; 0 = all.")
    ] = 24,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Measurements per scenario per round.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the report as markdown here.")] = None,
) -> None:
    """Compare search strategies in replay: measurements until within 2% of the best, best found at the budget."""
    # XGBoost's OpenMP threads spin while they wait; on a busy 2-core machine that makes fits ten times
    # slower. Set before xgboost loads; an explicit setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from dop_tui.search.compare import compare, to_markdown
    from dop_tui.search.strategies import STRATEGIES
    from dop_tui.session.store import SessionError, load

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown or not names:
        bad = ", ".join(unknown) or "(none)"
        console.print(f"[red]error:[/] unknown strategy {bad}; known: {', '.join(STRATEGIES)}")
        raise typer.Exit(2)
    try:
        sess = load(session)
    except SessionError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    command = (
        f"dop bench search {session} --seeds {seeds} --budget {budget} --early {early} --strategies {','.join(names)} "
        f"--scenarios {scenarios} --batch-size {batch_size}"
    )
    with console.status("replaying...") as status:
        result = compare(sess.scenarios, sess.measurements, strategies=names, seeds=range(seeds), budget=budget,
                         early=early, scenarios=scenarios or None, batch_size=batch_size,
                         progress=lambda s, i: status.update(f"{s}, seed {i}"))  # fmt: skip
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_markdown(result, command))
    if as_json:
        print(json.dumps({"command": command, **asdict(result)}))
        return
    table = Table(title=f"search in replay: {len(result.scenarios)} scenarios, {seeds} seeds, budget {budget}/scenario")
    table.add_column("strategy", no_wrap=True)
    for col in ("to 2% med", "mean", "missed", f"@{early} med", "mean", "end med", "mean", "s/run"):
        table.add_column(col, justify="right")
    for s in result.summaries:
        flag = "[yellow]" if s.not_reached else ""
        table.add_row(s.strategy, f"{s.to_target_median:.1f}", f"{s.to_target_mean:.1f}",
                      f"{flag}{s.not_reached}/{s.runs}", f"{s.early_median:.3f}", f"{s.early_mean:.3f}",
                      f"{s.found_median:.3f}", f"{s.found_mean:.3f}",
                      f"{s.seconds_per_run:.1f}")  # fmt: skip
    console.print(table)
    console.print(
        "to 2%: measurements until within 2% of the best replayable time (missed: counted as the budget); "
        f"@{early} / end: best replayable / best found after {early} measurements and at the budget"
    )
    if out:
        console.print(f"report: {out}")
