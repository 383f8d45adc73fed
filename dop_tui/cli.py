"""The ``dop`` command line: inspect the search space and check kernels against the reference."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

if TYPE_CHECKING:
    from dop_tui.measure.record import Measurement
    from dop_tui.scenario import Scenario

from dop_tui.cli_bench import bench_app
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
from dop_tui.cli_tune import print_version, tune

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


def _scenario(*flags: object) -> Scenario:
    """The scenario of the shared flags, or exit 2 with the message naming the bad flag."""
    try:
        return scenario_from_flags(*flags)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _fail(str(exc)) from None


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=print_version, is_eager=True, help="Print the version and exit.")
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

    scn = _scenario(model, proj, h_in, h_out, op, rank, batch, workload, dtype)
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
    scn = _scenario(model, proj, h_in, h_out, op, rank, batch, workload, dtype)
    if backend not in ("interpret", "gpu"):
        raise _fail(f"unknown backend {backend!r}; expected interpret or gpu")
    _enable_backend(backend)
    device = "cpu" if backend == "interpret" else "cuda"

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


def _enable_backend(backend: str) -> None:
    """``backends.enable_backend``; exit 1 when the machine cannot run it (no GPU: the same code as ``dop tune``
    and ``dop calibrate``), 2 for a bad value."""
    from dop_tui.measure.backends import enable_backend

    try:
        enable_backend(backend)
    except RuntimeError as exc:
        raise _fail(str(exc), code=1) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None


@app.command()
def measure(
    backend: Annotated[
        str, typer.Option("--backend", help="gpu, interpret (CPU, correctness only) or replay.")
    ] = "gpu",
    sample: Annotated[int, typer.Option("--sample", min=1, help="Random valid configs per sketch.")] = 20,
    session: Annotated[
        str | None, typer.Option("--session", help="Session file to extend (gpu, interpret) or to replay from.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the config sampling.")] = 0,
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
    """Measure N random valid configs of every sketch and the baselines; write or extend a session."""
    scn = _scenario(model, proj, h_in, h_out, op, rank, batch, workload, dtype)
    _enable_backend(backend)
    from dop_tui.session.store import Session, SessionError, load, save

    existing = None
    if session and (backend == "replay" or os.path.exists(session)):
        try:
            existing = load(session)
        except SessionError as exc:
            raise _fail(str(exc)) from None
    elif backend == "replay":
        raise _fail("--backend replay needs --session FILE to replay from")

    from dop_tui.space import BASELINES, sample_many, sketches_for

    rng = random.Random(seed)
    requests = [(c.sketch, c.params) for sk in sketches_for(scn.op) for c in sample_many(sk.id, scn, sample, rng)]
    requests += [(b.id, {}) for b in BASELINES if b.op == scn.op]
    from dop_tui.measure.backends import open_runner

    recorded = existing.measurements if backend == "replay" else ()
    with (
        console.status(f"measuring {len(requests)} kernels on {backend}..."),
        open_runner(backend, seed=seed, replay=recorded) as (runner, _, _),
    ):
        results = runner.measure(scn, requests)
    _print_measurements(scn, results)
    if session and backend != "replay":
        store = existing or Session(job={"command": "dop measure"})
        env = next((m.env for m in results if m.env), {})
        store.device = store.device or env.get("device", backend)
        store.env = store.env or env
        store.add(scn, results)
        save(store, session)
        console.print(f"session: {session} ({len(store.measurements)} measurements)")


def _print_measurements(scn: Scenario, results: list[Measurement]) -> None:
    from collections import defaultdict

    by_kernel = defaultdict(list)
    for m in results:
        by_kernel[m.kernel].append(m)
    base = {k.rsplit("/", 1)[1]: min(m.us for m in v) for k, v in by_kernel.items()
            if "/baseline/" in k and any(m.us for m in v)}  # fmt: skip
    table = Table(title=f"measure: {scn.describe()}")
    for col, just in (("kernel", "left"), ("n", "right"), ("statuses", "left"), ("best us", "right"),
                      ("floor frac.", "right"), *((f"x {b}", "right") for b in base)):  # fmt: skip
        table.add_column(col, justify=just, no_wrap=col == "kernel")
    for kid, ms in by_kernel.items():
        counts: dict[str, int] = {}
        for m in ms:
            counts[m.status] = counts.get(m.status, 0) + 1
        timed = [m for m in ms if m.status == "ok" and m.us]
        best = min(timed, key=lambda m: m.us) if timed else None
        cells = [kid, str(len(ms)), ", ".join(f"{k} {v}" for k, v in counts.items())]
        cells += [f"{best.us:.2f}", f"{best.floor_fraction:.2f}"] if best else ["-", "-"]
        cells += [f"{t / best.us:.2f}" if best else "-" for t in base.values()]
        table.add_row(*cells)
    console.print(table)


@app.command()
def show(
    session: Annotated[str, typer.Argument(help="A session file (.json or .json.gz).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")] = False,
) -> None:
    """Summarise a session: job, device, versions, measurements by status, best per scenario."""
    from dop_tui.batch import delta_table
    from dop_tui.scenario import scenario_label
    from dop_tui.session.store import SessionError, load
    from dop_tui.session.summary import best_per_scenario, delta_summary, session_delta, status_counts

    try:
        sess = load(session)
    except SessionError as exc:
        raise _fail(str(exc)) from None
    counts, best = status_counts(sess), best_per_scenario(sess)
    if as_json:
        cases = session_delta(sess)
        delta = {"summary": {k: vars(r) for k, r in delta_summary(cases).items()},
                 "cases": [{"scenario": c.scenario.key, "us": c.ours_us, "how": c.how, "baselines": c.baselines,
                            "vs_best": c.vs_best} for c in cases]}  # fmt: skip
        print(json.dumps({"device": sess.device, "env": sess.env, "job": sess.job, "counts": counts,
                          "best": [b.to_json() for b in best], "lora_delta": delta, "rounds": sess.rounds,
                          "finished": sess.finished}))  # fmt: skip
        return
    job = sess.job.get("name") if "ops" in sess.job else sess.job
    console.print(f"[bold]{session}[/]  device: {sess.device or '?'}  job: {job or '-'}")
    console.print("versions: " + ", ".join(f"{k} {v}" for k, v in sess.env.items() if k != "device"))
    console.print("measurements: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if sess.rounds:
        last = sess.rounds[-1]
        rho = [
            r["metrics"]["spearman"] for r in sess.rounds if r.get("metrics") and r["metrics"]["spearman"] is not None
        ]
        model = f"; model Spearman per round {rho[0]:.2f} -> {rho[-1]:.2f}" if rho else ""
        spent = f"{last['budget_used']} search measurements in {last['elapsed_s']:.0f} s"
        console.print(f"rounds: {last['round']} ({spent}, {sess.finished or 'not finished'}){model}")
    table = Table(title="best per scenario")
    for col in ("scenario", "sketch", "us", "floor frac.", "vs best", "speedup over each baseline"):
        table.add_column(col)
    for b in best:
        m = b.measurement
        frac = f"{m.floor_fraction:.2f}" if m.floor_fraction is not None else "-"
        sp = ", ".join(f"{n} {x:.2f}x" for n, x in b.speedup.items())
        vs = f"{b.vs_best:.2f}x" if b.vs_best is not None else "-"
        table.add_row(scenario_label(b.scenario), m.kernel, f"{m.us:.2f}", frac, vs, sp)
    console.print(table)
    delta = delta_table(sess)
    if delta is not None:
        console.print(delta)


@app.command()
def export(
    sessions: Annotated[list[str], typer.Argument(help="Tuned session files (one device), merged into one table.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The package directory to write.")],
    name: Annotated[str, typer.Option("--name", help="The Python package name.")] = "lora_kernels",
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="package (a pip-installable kernel package), vllm (vLLM's tuned-config "
            "files, from the vllm sketch family) or both (the files in DIR/vllm_configs).",
        ),
    ] = "package",
    force: Annotated[
        bool, typer.Option("--force", help="Write into a directory that holds something else (its other files stay).")
    ] = False,
) -> None:
    """Turn tuned sessions into a kernel package: the winning Triton kernels, a dispatch table and an API
    (add_lora, shrink, expand, segments_from_token_mapping); pip-installable, no dop-tui needed."""
    from dop_tui.export.package import export_package
    from dop_tui.export.table import ExportError
    from dop_tui.session.store import SessionError, load

    loaded = []
    for path in sessions:
        try:
            loaded.append((Path(path).name, load(path)))
        except SessionError as exc:
            raise _fail(str(exc)) from None
    try:
        table = export_package(loaded, output, name, force=force, fmt=fmt)
    except ExportError as exc:
        raise _fail(str(exc)) from None
    if "entries" in table:
        e = table["entries"]
        console.print(f"wrote [bold]{output}[/]: package {name} for {table['device']}, {len(e['shrink'])} shrink, "
                      f"{len(e['expand'])} expand and {len(e['lora'])} LoRA-delta entries")  # fmt: skip
        best = table["summary"].get("best")
        if best:
            console.print(f"LoRA delta {best['geomean']:.2f}x the best baseline per case (min {best['min']:.2f}x, "
                          f"{best['n']} cases), as the sessions measured it")  # fmt: skip
        console.print(f"install: pip install {output}    check: python -m {name}.selftest")
    if table["vllm_files"]:
        folder = output / "vllm_configs" if "entries" in table else output
        console.print(f"vLLM tuned configs in {folder}: {', '.join(table['vllm_files'])}; use them with "
                      f"VLLM_TUNED_CONFIG_FOLDER={folder}")  # fmt: skip


@app.command()
def calibrate(
    show_only: Annotated[bool, typer.Option("--show", help="Print the ceilings in use; measure nothing.")] = False,
) -> None:
    """Measure the GPU's ceilings (copy bandwidth, bf16 matmul, launch floor in a graph) and cache them."""
    from dop_tui.measure.calibrate import cache_path, device_spec, launch_floor_us, measure_ceilings, save_spec
    from dop_tui.space.device import DEVICES

    def table(specs: dict[str, tuple]) -> Table:
        t = Table(title="device ceilings")
        for col in ("device", "HBM TB/s", "bf16 TFLOP/s", "SMs", "L2 MB", "launch us", "source"):
            t.add_column(col)
        for name, (spec, launch) in specs.items():
            t.add_row(name, f"{spec.hbm_bytes_per_s / 1e12:.2f}", f"{spec.bf16_flops / 1e12:.0f}", str(spec.sms),
                      f"{spec.l2_bytes / 2**20:.0f}", f"{launch:.2f}" if launch else "-", spec.source)  # fmt: skip
        return t

    import torch

    if show_only or not torch.cuda.is_available():
        names = [torch.cuda.get_device_name()] if torch.cuda.is_available() else list(DEVICES)
        console.print(table({n: (device_spec(n), launch_floor_us(n)) for n in names}))
        console.print(f"cache: {cache_path()}")
        if not show_only:
            raise _fail("no CUDA GPU is visible: nothing measured; the built-in table above is the fallback", code=1)
        return
    name = torch.cuda.get_device_name()
    with console.status(f"measuring {name}..."):
        spec, launch_us = measure_ceilings()
    save_spec(name, spec, launch_us)
    console.print(table({name: (spec, launch_us)}))
    console.print(f"cached in {cache_path()}")


app.command()(tune)
app.add_typer(bench_app, name="bench")


if __name__ == "__main__":
    app()
