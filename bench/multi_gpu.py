"""Every GPU of a host against one: candidates per minute through the GPU runner's round queue, the same
requests answered the same way, and a tuning job per GPU count.

  python bench/multi_gpu.py --out DIR [--scenarios 24] [--configs 4] [--tune-seconds 90]

1. Work: the first ``--scenarios`` scenarios of the Llama-2-7B rank-16 decode family (shrink, expand, fused),
   ``--configs`` random valid configs of every sketch (seed 0) and the baselines.
2. Cold pass, every GPU, one round: compiles everything into Triton's cache on the CPU pool (rate with compiles).
3. Warm passes, each runner started and its workers ready before the clock: one GPU (one round); every GPU
   (one round: one queue, work stealing); every GPU one scenario per call (the barrier the runner had before).
4. Same answers: per request, the status of the one-GPU pass against the every-GPU pass, and |t2 - t1| / t1 of
   the requests both timed with a full graph (median, 90th percentile) beside the same figure for two passes
   on one GPU (the noise floor).
5. ``dop tune --batch bench/multi_gpu_job.toml --time-limit S`` with one GPU, then every GPU: search
   measurements per minute from each session (after the baseline round), and which GPU measured what.
Writes DIR/multi_gpu.json and the two sessions; prints a log.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from h200_dataset import graph_phases, rate, requests, scenarios, worker_seconds  # noqa: E402

from dop_tui.measure.gpu_runner import GpuRunner  # noqa: E402
from dop_tui.measure.record import Measurement  # noqa: E402
from dop_tui.scenario import Scenario  # noqa: E402

THREADS: int | None = 1  # --worker-threads


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def timed_pass(
    work: list[tuple[Scenario, list]], workers: int, per_scenario: bool = False, compile_workers: int | None = None
) -> tuple[dict, list]:
    """One warm pass: a runner started and ready (one baseline measured) before the clock. ``compile_workers``
    0: no CPU compile pool (the cache is warm after the cold pass, so the pool only costs CPU)."""
    with GpuRunner(workers=workers, do_bench=False, compile_workers=compile_workers, worker_threads=THREADS) as runner:
        runner.measure(work[0][0], work[0][1][-1:])
        t0 = time.monotonic()
        if per_scenario:
            got = [runner.measure(scn, reqs) for scn, reqs in work]
        else:
            done = dict(runner.measure_round(work))
            got = [done[i] for i in range(len(work))]
        seconds = time.monotonic() - t0
        loads = [vars(d) for d in runner.loads()]
    flat = [m for ms in got for m in ms]
    n = len(flat)
    check, graph = worker_seconds(flat)
    out = {"workers": workers, "per_scenario_calls": per_scenario, "compile_workers": compile_workers,
           "requests": n, "seconds": round(seconds, 1), "per_min": rate(n, seconds),
           "statuses": dict(Counter(m.status for m in flat)), "gpus": loads,
           "worker_s": {"check": round(check, 1), "graph": round(graph, 1),
                        **{k: round(v, 1) for k, v in graph_phases(flat).items()}}}  # fmt: skip
    log(f"pass: {out}")
    return out, flat


def agreement(a: list[Measurement], b: list[Measurement]) -> dict:
    """Status agreement and relative time differences of two passes over the same requests."""
    same = sum(x.status == y.status for x, y in zip(a, b, strict=True))
    pairs = [(x.us, y.us) for x, y in zip(a, b, strict=True) if x.us and y.us and not x.short and not y.short]
    diffs = sorted(abs(t2 - t1) / t1 for t1, t2 in pairs)
    return {
        "requests": len(a), "same_status": same, "timed_both": len(diffs),
        "median_rel_diff": round(statistics.median(diffs), 4) if diffs else None,
        "p90_rel_diff": round(diffs[int(0.9 * (len(diffs) - 1))], 4) if diffs else None,
        "geomean_ratio": round(math.exp(statistics.fmean(math.log(t2 / t1) for t1, t2 in pairs)), 4) if pairs else None,
    }  # fmt: skip


def tune_job(out_dir: Path, gpus: str, seconds: int) -> dict:
    """``dop tune --batch bench/multi_gpu_job.toml`` on ``gpus``; its search rate and per-GPU counts."""
    from dop_tui.session.store import load

    out = out_dir / f"tune_{gpus.count(',') + 1}gpu.json.gz"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpus, "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "dop_tui.cli", "tune", "--batch", str(ROOT / "bench/multi_gpu_job.toml"),
           "-o", str(out), "--time-limit", str(seconds), "--force"]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - t0
    tail = (proc.stdout + proc.stderr)[-3000:]
    if proc.returncode:
        log(f"tune on {gpus} failed ({proc.returncode}): {tail}")
        return {"gpus": gpus, "rc": proc.returncode}
    sess = load(out)
    rounds = [r for r in sess.rounds if int(r.get("round", 0)) > 0]
    r0 = next((r for r in sess.rounds if int(r.get("round", 0)) == 0), None)
    search_s = float(rounds[-1]["elapsed_s"]) - float(r0["elapsed_s"]) if rounds and r0 else 0.0
    used = int(rounds[-1]["budget_used"]) if rounds else 0
    by_gpu = Counter(m.env.get("gpu", "?") for m in sess.measurements)
    res = {"gpus": gpus, "rc": 0, "wall_s": round(wall, 1), "rounds": len(rounds), "search_measurements": used,
           "search_s": round(search_s, 1), "search_per_min": rate(used, search_s),
           "baseline_round_s": round(float(r0["elapsed_s"]), 1) if r0 else None,
           "measured_by_gpu": dict(by_gpu), "log_tail": tail[-1200:]}  # fmt: skip
    log(f"tune on {gpus}: { {k: v for k, v in res.items() if k != 'log_tail'} }")
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scenarios", type=int, default=24)
    p.add_argument("--configs", type=int, default=4)
    p.add_argument("--tune-seconds", type=int, default=90)
    p.add_argument("--worker-threads", type=int, default=1, help="CPU threads of each GPU worker (0: torch's default)")
    p.add_argument("--workers", type=int, default=0, help="GPU workers of the many-worker passes (default: one "
                   "per GPU; more than the GPUs share them, to look at contention on one GPU)")  # fmt: skip
    args = p.parse_args()
    global THREADS
    THREADS = args.worker_threads or None
    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    gpus = args.workers or torch.cuda.device_count()
    rng = random.Random(0)
    fam = scenarios(16, decode_only=True)
    step = max(1, len(fam) // args.scenarios)
    picked = fam[::step][: args.scenarios]  # spread over ops, batches and workloads
    work = [(scn, requests(scn, args.configs, rng)) for scn in picked]
    summary: dict = {"device": torch.cuda.get_device_name(), "gpus": torch.cuda.device_count(), "workers": gpus,
                     "worker_threads": THREADS, "scenarios": len(work),
                     "requests": sum(len(r) for _, r in work), "torch": torch.__version__}  # fmt: skip
    path = args.out / "multi_gpu.json"

    def save() -> None:
        path.write_text(json.dumps(summary, indent=1))

    log(f"{summary}")
    t0 = time.monotonic()
    with GpuRunner(workers=gpus, do_bench=False) as runner:
        list(runner.measure_round(work))
    summary["cold_pass"] = {"seconds": round(time.monotonic() - t0, 1), "per_min": rate(summary["requests"],
                            time.monotonic() - t0)}  # fmt: skip
    log(f"cold pass (compiles): {summary['cold_pass']}")
    one, flat1 = timed_pass(work, 1)
    many, flat_n = timed_pass(work, gpus)
    again, flat1b = timed_pass(work, 1, compile_workers=0)
    many0, _ = timed_pass(work, gpus, compile_workers=0)
    barrier, _ = timed_pass(work, gpus, per_scenario=True)
    summary["passes"] = [one, many, again, many0, barrier]
    summary["speedup_round_queue"] = round(many["per_min"] / one["per_min"], 2)
    summary["speedup_no_compile_pool"] = round(many0["per_min"] / again["per_min"], 2)
    summary["speedup_per_scenario_calls"] = round(barrier["per_min"] / one["per_min"], 2)
    summary["one_vs_one"] = agreement(flat1, flat1b)
    summary["one_vs_many"] = agreement(flat1, flat_n)
    log(f"speed-up {summary['speedup_round_queue']} (without the compile pool: {summary['speedup_no_compile_pool']};"
        f" one scenario per call: {summary['speedup_per_scenario_calls']})")  # fmt: skip
    log(f"agreement 1 vs 1: {summary['one_vs_one']}; 1 vs {gpus}: {summary['one_vs_many']}")
    save()
    if args.tune_seconds:
        summary["tune"] = [tune_job(args.out, "0", args.tune_seconds)]
        save()
        if torch.cuda.device_count() > 1:
            every = ",".join(map(str, range(torch.cuda.device_count())))
            summary["tune"].append(tune_job(args.out, every, args.tune_seconds))
            a, b = (t.get("search_per_min") for t in summary["tune"])
            summary["tune_speedup"] = round(b / a, 2) if a and b else None
            log(f"tune speed-up: {summary['tune_speedup']}")
        save()


if __name__ == "__main__":
    main()
