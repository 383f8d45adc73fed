"""``dop bench``: benchmarks of dop's own machinery on recorded sessions (no GPU needed)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import torch

    from dop_tui.serve.model import DecoderShape

bench_app = typer.Typer(
    help="Benchmarks of dop's own machinery on recorded sessions.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
)
console = Console()


def _fail(message: str) -> NoReturn:
    """Bad input: the message, exit code 2."""
    console.print(f"[red]error:[/] {message}")
    raise typer.Exit(2)


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
        _fail(f"unknown strategy {bad}; known: {', '.join(STRATEGIES)}")
    try:
        sess = load(session)
    except SessionError as exc:
        _fail(str(exc))
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


@bench_app.command("serve")
def serve(
    model: Annotated[str, typer.Option("--model", help="llama2-7b, llama2-13b or tiny (a CPU runs tiny).")] = (
        "llama2-7b"
    ),
    layers: Annotated[int | None, typer.Option("--layers", min=1, help="Layers (default: the model's).")] = None,
    rank: Annotated[int, typer.Option("--rank", min=1, help="LoRA rank of every adapter.")] = 16,
    ctx: Annotated[int, typer.Option("--ctx", min=1, help="Tokens already in each request's KV cache.")] = 512,
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Comma-separated decode batch sizes.")] = (
        "1,8,16,32,64,128"
    ),
    workloads: Annotated[
        str, typer.Option("--workloads", help="Comma-separated: distinct, uniform, skewed, identical.")
    ] = "distinct,uniform,skewed,identical",
    backends: Annotated[
        str,
        typer.Option(
            "--backends",
            help="Comma-separated: none, torch, vllm, vllm-tuned, sglang, punica, package:PATH (a dop export).",
        ),
    ] = "none,torch,vllm,vllm-tuned,sglang,punica",
    device: Annotated[str, typer.Option("--device", help="cuda or cpu (cpu: kernels in the Triton interpreter).")] = (
        "cuda"
    ),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the rows as JSON here.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Let --json replace an existing file.")] = False,
    replays: Annotated[int, typer.Option("--replays", min=1, help="GPU: graph replays per timing (5 timings).")] = 20,
    overlap: Annotated[
        bool, typer.Option("--overlap", help="Also run every backend beside the base GEMM on a side stream.")
    ] = False,
    trace: Annotated[
        int | None,
        typer.Option(
            "--trace", help="Serve N requests arriving over time with continuous batching instead (the trace mode)."
        ),
    ] = None,
    trace_rate: Annotated[float, typer.Option("--trace-rate", help="Trace mode: requests per step, on average.")] = (
        0.5
    ),
    seed: Annotated[
        int, typer.Option("--seed", help="Trace mode: the trace's seed (arrivals, lengths, adapters).")
    ] = 0,
) -> None:
    """Decode steps of a multi-tenant LoRA decoder (random weights, LoRA on all seven projections) per backend:
    each backend's logits checked against torch's, then one step timed in a CUDA graph. With ``--trace N``: N
    requests served with continuous batching (prefill and decode steps), tokens/s over the trace per backend."""
    from dop_tui.workloads import WORKLOADS

    if device not in ("cuda", "cpu"):
        _fail(f"--device: expected cuda or cpu, got {device!r}")
    if json_out is not None and json_out.exists() and not force:
        _fail(f"--json: {json_out} exists; pass --force to replace it")
    if trace is not None and trace < 1:
        _fail(f"--trace: expected a number of requests >= 1, got {trace}")
    if not trace_rate > 0:
        _fail(f"--trace-rate: expected a positive number of requests per step, got {trace_rate}")
    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(not 1 <= b <= 4096 for b in sizes):
        _fail(f"--batch-sizes: expected comma-separated sizes from 1 to 4096, got {batch_sizes!r}")
    loads = [w.strip() for w in workloads.split(",") if w.strip()]
    if not loads or any(w not in WORKLOADS for w in loads):
        _fail(f"--workloads: expected some of {', '.join(WORKLOADS)}, got {workloads!r}")
    if device == "cpu":  # before anything imports triton
        os.environ["TRITON_INTERPRET"] = "1"
    import torch

    from dop_tui.serve.backends import BackendError, parse_backends
    from dop_tui.serve.bench import cases, run, summary
    from dop_tui.serve.model import PRESETS

    if model not in PRESETS:
        _fail(f"--model: expected one of {', '.join(PRESETS)}, got {model!r}")
    try:
        names = parse_backends(backends)
    except BackendError as exc:
        _fail(str(exc))
    if overlap:
        names += [f"{n}+overlap" for n in names if n != "none"]
    if device == "cuda" and not torch.cuda.is_available():
        _fail("--device cuda: no CUDA GPU here (run the tiny model with --device cpu)")
    shape = PRESETS[model]
    dev = torch.device(device)
    if dev.type == "cuda":
        from dop_tui.measure.calibrate import device_spec

        gpu = torch.cuda.get_device_name()
        bandwidth = device_spec(gpu).hbm_bytes_per_s
    else:
        gpu, bandwidth = "cpu (Triton interpreter)", 4.3e12
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    tolerance = 5e-2 if dtype == torch.bfloat16 else 1e-3
    setup = {"device": gpu, "model": model, "layers": layers or shape.layers, "rank": rank, "ctx": ctx,
             "dtype": str(dtype).removeprefix("torch.")}  # fmt: skip
    if trace is not None:
        _serve_trace(setup, requests=trace, rate=trace_rate, seed=seed, max_running=max(sizes), loads=loads,
                     names=names, shape=shape, dev=dev, dtype=dtype, tolerance=tolerance, replays=replays,
                     json_out=json_out, overlap=overlap)  # fmt: skip
        return
    todo = cases(sizes, loads)
    rows = []
    from rich.progress import Progress

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{model}: {len(todo)} cases x {len(names)} backends", total=len(todo))
        try:
            measured = run(shape, layers=layers or shape.layers, rank=rank, ctx=ctx, serve_cases=todo,
                           backends=names, device=dev, dtype=dtype, bandwidth=bandwidth, tolerance=tolerance,
                           replays=replays)  # fmt: skip
            for case_rows in measured:
                rows.extend(case_rows)
                progress.advance(task)
        except RuntimeError as exc:
            _fail(str(exc))
    _serve_tables(rows, names, loads)
    result = {**setup, "rows": [r.to_json() for r in rows], "summary": summary(rows)}
    _serve_end(result, rows, json_out, overlap)


def _serve_end(result: dict, rows: list, json_out: Path | None, overlap: bool) -> None:
    """The summary lines, the JSON file, and exit code 1 if a backend's logits were wrong."""
    for name, stats in result["summary"].items():
        parts = ", ".join(f"{k} {v:.2f}x" for k, v in stats.items())
        form = " (each backend at its faster form, plain or overlapped)" if overlap else ""
        console.print(f"{_label(name)}{form}: {parts}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=1))
        console.print(f"wrote {json_out}")
    if any(r.status != "ok" for r in rows):
        wrong = sorted({r.backend for r in rows if r.status != "ok"})
        console.print(f"[red]wrong logits (not timed):[/] {', '.join(wrong)}")
        raise typer.Exit(1)


def _label(name: str) -> str:
    """A backend's column label: a package by its folder's or module's last name."""
    if name.startswith("package:"):
        spec, _, tail = name.removeprefix("package:").partition("+")
        return "pkg " + Path(spec).name + (f"+{tail}" if tail else "")
    return name


def _serve_tables(rows: list, names: list[str], loads: list[str]) -> None:
    """One table per workload: per backend and batch size, ms per step and the ms LoRA adds over ``none``."""
    for wl in loads:
        batches = sorted({r.batch for r in rows if r.workload == wl})
        if not batches:
            continue
        table = Table(title=f"{wl}: ms per step, and what LoRA adds over none")
        table.add_column("backend", no_wrap=True)
        for b in batches:
            table.add_column(f"batch {b}", justify="right", no_wrap=True)
        for n in names:
            cells = []
            for b in batches:
                r = next((r for r in rows if r.workload == wl and r.batch == b and r.backend == n), None)
                if r is None or r.ms_per_step is None:
                    cells.append("[red]wrong[/]" if r is not None else "")
                else:
                    cells.append(f"{r.ms_per_step:.3f}" + (f" {r.lora_ms:+.3f}" if n != "none" else ""))
            table.add_row(_label(n), *cells)
        console.print(table)


def _serve_trace(
    setup: dict, *, requests: int, rate: float, seed: int, max_running: int, loads: list[str], names: list[str],
    shape: DecoderShape, dev: torch.device, dtype: torch.dtype, tolerance: float, replays: int,
    json_out: Path | None, overlap: bool,
) -> None:  # fmt: skip
    """The trace mode: per workload, its trace served by every backend (``dop_tui.serve.trace``)."""
    from rich.progress import Progress

    from dop_tui.serve import trace as tr
    from dop_tui.serve.bench import summary

    rows: list = []
    with Progress(console=console, transient=True) as progress:
        for wl in loads:
            task = progress.add_task(f"{wl}: distinct steps x {len(names)} backends", total=None)
            try:
                rows += tr.run(shape, layers=setup["layers"], rank=setup["rank"], ctx=setup["ctx"],
                               trace=tr.build_trace(requests, wl, rate=rate, seed=seed), workload=wl,
                               max_running=max_running, backends=names, device=dev, dtype=dtype, tolerance=tolerance,
                               replays=replays,
                               progress=lambda done, total, task=task: progress.update(task, completed=done,
                                                                                       total=total))  # fmt: skip
            except RuntimeError as exc:
                _fail(str(exc))
    for wl in loads:
        _trace_table([r for r in rows if r.workload == wl], names, requests)
    about = {"requests": requests, "rate": rate, "prompt_lens": list(tr.PROMPT_LENS),
             "output_lens": list(tr.OUTPUT_LENS), "zipf": tr.ZIPF, "seed": seed, "max_running": max_running,
             "prefill_budget": tr.PREFILL_BUDGET}  # fmt: skip
    result = {**setup, "trace": about, "rows": [r.to_json() for r in rows], "summary": summary(rows)}
    _serve_end(result, rows, json_out, overlap)


def _trace_table(rows: list, names: list[str], requests: int) -> None:
    """One workload's trace: per backend, tokens/s, the trace's time, what LoRA adds over none, and (for a
    package) its tokens/s over each baseline's and the best one's (``summary``)."""
    from dop_tui.serve.backends import BASELINE_NAMES
    from dop_tui.serve.bench import summary

    first = rows[0]
    bases = [b for b in BASELINE_NAMES if b in names]
    ratios = summary(rows)
    table = Table(title=f"{first.workload} trace: {requests} requests, {first.tokens} tokens ({first.output_tokens} "
                  f"output), {first.prefill_steps} prefill + {first.decode_steps} decode steps "
                  f"({first.distinct_steps} distinct); x: tokens/s over a baseline's")  # fmt: skip
    table.add_column("backend", no_wrap=True)
    for col in ("tok/s", "out tok/s", "ms", "LoRA ms"):
        table.add_column(col, justify="right", no_wrap=True)
    speedups = [f"tokens_vs_{b}" for b in bases] + ["tokens_vs_best"] if ratios else []
    for key in speedups:
        table.add_column("x " + key.removeprefix("tokens_vs_"), justify="right", no_wrap=True)
    for r in rows:
        if r.ms is None:
            cells = ["[red]wrong[/]", "", "", ""]
        else:
            cells = [f"{r.tokens_per_s:.0f}", f"{r.output_tokens_per_s:.0f}", f"{r.ms:.1f}", f"{r.lora_ms:+.1f}"]
        stats = ratios.get(r.backend, {})  # a package's, at its faster form
        table.add_row(_label(r.backend), *cells, *(f"{stats[k]:.2f}" if k in stats else "" for k in speedups))
    console.print(table)
