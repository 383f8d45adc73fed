"""The H200 dataset of the measurement engine, measured through ``GpuRunner``; writes a session file.

  python bench/h200_dataset.py --out DIR [--configs 12] [--gpus N] [--deadline S] [--speedup-scenarios 6]
                                [--probe-only] [--decode-only]

1. Scenarios: the Llama-2-7B decode family (shrink 4096->16 and 11008->16, expand 16->4096 and 16->11008, fused
   q and down; bs 1, 8, 16, 32, 64; four workloads; bf16; one scenario per distinct segment layout) plus
   prefill scenarios (segments of 256 to 1024 tokens).
2. Requests: ``--configs`` random valid configs of every sketch of the op, plus the baselines.
3. Speed-up probe (``--speedup-scenarios``): the first decode scenarios measured with one GPU worker, then with
   every visible GPU, compile cache warm and runners started before the clock: candidates per minute for each.
4. Pass 1: every scenario with every GPU (the next scenario compiles on the CPU pool while one is measured).
   Graph timing only: do_bench's launch-inclusive figure costs ~0.1 s per candidate and is taken in pass 2.
5. Pass 2: ``--repeat`` measurements of pass 1 (the best per scenario, the baselines, and a random rest) again,
   with do_bench: median and 90th percentile of |t2 - t1| / t1.
Writes DIR/h200-dataset.json.gz (session), DIR/dataset_summary.json and prints a log.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dop_tui.job import Job
from dop_tui.measure.gpu_runner import GpuRunner
from dop_tui.measure.record import Measurement
from dop_tui.scenario import Scenario, make_scenario
from dop_tui.session.store import Session, save
from dop_tui.space import BASELINES, sample_many, sketches_for
from dop_tui.workloads import prefill_lens


def scenarios(rank: int, decode_only: bool = False) -> list[Scenario]:
    per_op = (("shrink", ("q", "down")), ("expand", ("q", "gate")), ("fused", ("q", "down")))
    job = Job(ops=("shrink", "expand", "fused"), ranks=(rank,), op_projections=per_op)
    if decode_only:
        return job.scenarios()
    out = []  # prefill first: a deadline cuts decode scenarios, of which there are many
    for op, h_in, h_out in (("shrink", 4096, 4096), ("expand", 4096, 4096), ("fused", 4096, 4096)):
        for n, seed in ((2, 0), (4, 1)):
            lens = prefill_lens(n, lo=256, hi=1024, seed=seed)
            out.append(make_scenario(op, h_in, h_out, rank, "bf16", lens, workload=f"prefill{n}"))
    return out + job.scenarios()


def requests(scn: Scenario, configs: int, rng: random.Random) -> list[tuple[str, dict]]:
    reqs = [(c.sketch, c.params) for sk in sketches_for(scn.op) for c in sample_many(sk.id, scn, configs, rng)]
    return reqs + [(b.id, {}) for b in BASELINES if b.op == scn.op]


def measure_all(runner: GpuRunner, work: list[tuple[Scenario, list]], log, deadline: float) -> list[Measurement]:
    """Measure scenario by scenario, compiling the next one while the GPUs measure this one."""
    out: list[Measurement] = []
    for i, (scn, reqs) in enumerate(work):
        if deadline and time.monotonic() > deadline:
            log(f"deadline: stopped after {i} of {len(work)} scenarios")
            break
        if i + 1 < len(work):
            runner.prefetch(*work[i + 1])
        res = runner.measure(scn, reqs)
        out.extend(res)
        check, graph = worker_seconds(res)
        split = " ".join(f"{k} {v:.1f}" for k, v in graph_phases(res).items())
        stats = runner.compiler.stats if runner.compiler else ""
        ok = [m for m in res if m.status == "ok"]
        best = min(ok, key=lambda m: m.us) if ok else None
        log(f"[{i + 1}/{len(work)}] {scn.describe()}: {len(ok)}/{len(res)} ok"
            + (f", best {best.kernel} {best.us:.2f} us" if best else "")
            + f"; worker s: check {check:.1f} graph {graph:.1f} ({split}); {stats}")  # fmt: skip
    return out


def worker_seconds(ms: list[Measurement]) -> tuple[float, float]:
    """Seconds the GPU workers spent checking (with load or compile) and graph-timing these measurements."""
    found = [re.search(r"check ([\d.]+) s.*graph ([\d.]+) s", m.message) for m in ms]
    return sum(float(f.group(1)) for f in found if f), sum(float(f.group(2)) for f in found if f)


def graph_phases(ms: list[Measurement]) -> dict[str, float]:
    """Seconds the GPU workers spent in each phase of ``time_graph`` (bind, probe, capture, replay)."""
    total: dict[str, float] = {}
    for m in ms:
        found = re.search(r"\(ms: ([^)]*)\)", m.message)
        words = found.group(1).split() if found else []
        for name, ms_ in zip(words[::2], words[1::2], strict=True):
            total[name] = total.get(name, 0.0) + float(ms_) / 1e3
    return total


def speedup_probe(probe: list[tuple[Scenario, list]], gpus: int, log) -> dict:
    """Candidates per minute with one GPU worker and with ``gpus``: the same requests, compile cache warm (a
    first untimed pass compiles), each runner started and warmed before its clock starts."""
    n = sum(len(r) for _, r in probe)
    out: dict = {"requests": n, "scenarios": len(probe), "gpus": gpus}
    for workers in (1, gpus):
        with GpuRunner(workers=workers, do_bench=False) as runner:
            t0 = time.monotonic()
            measure_all(runner, probe[:1], log, 0)  # start the workers, fill the caches
            if workers == 1:
                measure_all(runner, probe, log, 0)
                out["first_pass_s_with_compile"] = round(time.monotonic() - t0, 1)
            t0 = time.monotonic()
            measure_all(runner, probe, log, 0)
            out[f"per_min_{workers}gpu"] = rate(n, time.monotonic() - t0)
    out["speedup"] = round(out[f"per_min_{gpus}gpu"] / out["per_min_1gpu"], 2)
    log(f"speed-up probe: {out}")
    return out


def rate(n: int, seconds: float) -> float:
    return round(60 * n / seconds, 1) if seconds > 0 else 0.0


def repeatability(repeat: int, pass1: list[Measurement], by_key: dict, session: Session, gpus: int,
                  rng: random.Random, summary: dict, log: Callable[[str], None]) -> None:  # fmt: skip
    """Pass 2: ``repeat`` full-graph measurements of pass 1 again, with do_bench: median and 90th
    percentile of |t2 - t1| / t1 into ``summary["pass2"]``; the new measurements join ``session``."""
    timed = [m for m in pass1 if m.status == "ok" and m.us and not m.short]  # full graphs only
    best: dict[str, Measurement] = {}
    for m in timed:
        if "/baseline/" not in m.kernel and (m.scenario not in best or m.us < best[m.scenario].us):
            best[m.scenario] = m
    chosen = list(best.values()) + [m for m in timed if "/baseline/" in m.kernel]
    rest = [m for m in timed if m not in chosen]
    chosen += rng.sample(rest, max(0, min(len(rest), repeat - len(chosen))))
    chosen = chosen[: max(repeat, len(best))]
    groups: dict[str, list[Measurement]] = {}
    for m in chosen:
        groups.setdefault(m.scenario, []).append(m)
    diffs = []
    with GpuRunner(workers=gpus, do_bench=True, slow_factor=None) as runner:
        t0 = time.monotonic()
        for key, ms in groups.items():
            again = runner.measure(by_key[key], [(m.kernel, m.config) for m in ms])
            for a, b in zip(ms, again, strict=True):
                if b.status == "ok" and b.us:
                    diffs.append(abs(b.us - a.us) / a.us)
                    session.add(by_key[key], [b])
        t2 = time.monotonic() - t0
    diffs.sort()
    summary["pass2"] = {
        "remeasured": len(diffs), "seconds": round(t2, 1), "per_min_with_do_bench": rate(len(chosen), t2),
        "median_rel_diff": round(statistics.median(diffs), 4) if diffs else None,
        "p90_rel_diff": round(diffs[int(0.9 * (len(diffs) - 1))], 4) if diffs else None,
    }  # fmt: skip
    log(f"pass 2: {summary['pass2']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--configs", type=int, default=12, help="random valid configs per sketch per scenario")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpus", type=int, default=None, help="GPU workers (default: every visible GPU)")
    p.add_argument("--speedup-scenarios", type=int, default=0, help="scenarios of the 1-GPU vs all-GPU probe")
    p.add_argument("--repeat", type=int, default=400, help="pass-1 measurements re-measured in pass 2")
    p.add_argument("--probe-only", action="store_true", help="stop after the speed-up probe")
    p.add_argument("--deadline", type=float, default=0, help="stop pass 1 after this many seconds")
    p.add_argument("--decode-only", action="store_true", help="leave out the prefill scenarios")
    p.add_argument("--scenarios", type=int, default=0, help="measure only the first N scenarios (0: all)")
    p.add_argument(
        "--slow-factor",
        type=float,
        default=3.0,
        help="short graph for a candidate this many times slower than the best so far (0: never)",
    )
    args = p.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "dataset_log.txt"

    def log(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        with log_path.open("a") as f:
            f.write(line + "\n")

    t_start = time.monotonic()
    deadline = t_start + args.deadline if args.deadline else 0
    rng = random.Random(args.seed)
    work = [(s, requests(s, args.configs, rng)) for s in scenarios(args.rank, args.decode_only)]
    if args.decode_only:  # a deadline then cuts a random part of every op, not the last op
        rng.shuffle(work)
    if args.scenarios:
        work = work[: args.scenarios]
    log(f"{len(work)} scenarios, {sum(len(r) for _, r in work)} requests")
    summary: dict = {"configs_per_sketch": args.configs, "scenarios": len(work)}

    import torch

    gpus = args.gpus or torch.cuda.device_count()
    k = args.speedup_scenarios
    if k:
        summary["speedup_probe"] = speedup_probe([w for w in work if "prefill" not in w[0].workload][:k], gpus, log)
        (out_dir / "dataset_summary.json").write_text(json.dumps(summary, indent=1))
        if args.probe_only:
            return

    session = Session(job={"command": "bench/h200_dataset.py", "configs_per_sketch": args.configs,
                           "decode_only": args.decode_only, "seed": args.seed})  # fmt: skip
    with GpuRunner(workers=gpus, do_bench=False, slow_factor=args.slow_factor or None) as runner:
        t0 = time.monotonic()
        pass1 = measure_all(runner, work, log, deadline)
        t1 = time.monotonic() - t0
        stats = vars(runner.compiler.stats) if runner.compiler else {}
    n1 = len(pass1)
    phases = {k: round(v, 1) for k, v in graph_phases(pass1).items()}
    short = sum(m.short for m in pass1)
    summary["pass1"] = {"measurements": n1, "seconds": round(t1, 1), "per_min": rate(n1, t1), "gpus": gpus,
                        "compile": stats, "slow_factor": args.slow_factor, "short_graphs": short,
                        "worker_graph_phases_s": phases}  # fmt: skip
    log(f"pass 1: {summary['pass1']}")
    by_key = {s.key: s for s, _ in work}
    for m in pass1:
        session.add(by_key[m.scenario], [m])
    env = next((m.env for m in pass1 if m.env), {})
    session.device, session.env = env.get("device", ""), env
    save(session, out_dir / "h200-dataset.json.gz")

    # pass 2: repeatability, with do_bench's launch-inclusive figure
    if args.repeat:
        repeatability(args.repeat, pass1, by_key, session, gpus, rng, summary, log)
        save(session, out_dir / "h200-dataset.json.gz")
    summary["total_seconds"] = round(time.monotonic() - t_start, 1)
    (out_dir / "dataset_summary.json").write_text(json.dumps(summary, indent=1))
    log(f"done in {summary['total_seconds']} s")


if __name__ == "__main__":
    main()
