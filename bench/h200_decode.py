"""H200 runs of the foundation issue: GPU correctness sweep and the first decode timing table.

  python bench/h200_decode.py check --out DIR   # every sketch (random configs) + baselines, Llama-2-7B shapes
  python bench/h200_decode.py time --out DIR    # best of N random configs per sketch vs baselines vs floor

Compilation runs in a pool of GPU worker processes (they share Triton's disk cache), which also run the
correctness check of every (config, shape) before anything is timed. Timing runs in the parent process:
a screening pass times every candidate with a CUDA graph of 30 calls over min(30, needed) rotated
copies (for the smallest layouts these can sit in L2: screening only ranks); the best few per sketch,
the baselines and torch are then re-timed with the full method (a graph of max(100, copies) calls over
copies totalling > 3x L2, median of 7 replays) and with do_bench + L2 flush.
Results: JSON lines per measurement and a markdown table in DIR.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dop_tui.models import get_model
from dop_tui.scenario import Scenario, make_scenario
from dop_tui.space import BASELINES, enumerate_valid, sketches_for
from dop_tui.workloads import WORKLOADS, decode_lens, prefill_lens

MODEL = get_model("llama2-7b")


def decode_scenarios(op: str, h_in: int, h_outs: tuple[int, ...], rank: int, batches: list[int]) -> list[Scenario]:
    """One scenario per distinct segment layout over the batch sizes and the four workloads."""
    seen, out = set(), []
    for bs in batches:
        for w in WORKLOADS:
            lens = tuple(decode_lens(w, bs))
            if lens in seen:
                continue
            seen.add(lens)
            out.append(make_scenario(op, h_in, h_outs, rank, "bf16", lens, workload=w))
    return out


def shape_groups(check: bool) -> list[tuple[str, int, tuple[int, ...]]]:
    """(op, h_in, h_outs): the 7B projections' distinct shapes, plus qkv/gateup groups for the check."""
    h, m = MODEL.hidden, MODEL.intermediate
    groups = [
        ("shrink", h, (h,)),
        ("shrink", m, (h,)),
        ("expand", h, (h,)),
        ("expand", h, (m,)),
        ("fused", h, (h,)),
        ("fused", m, (h,)),
    ]
    if check:
        groups += [("fused", h, (m,))]
        for op in ("shrink", "expand", "fused"):
            groups += [(op, *MODEL.group_shape("qkv")), (op, *MODEL.group_shape("gateup"))]
    return groups


# -- worker side -------------------------------------------------------------------------------------
def _worker_init() -> None:
    import torch

    torch.cuda.init()


def _check_task(task: tuple[dict, str, dict, int]) -> dict:
    from dop_tui.measure.check import check_kernel

    scn_json, kid, cfg, seed = task
    scn = Scenario.from_json(scn_json)
    t0 = time.perf_counter()
    res = check_kernel(kid, scn, cfg, device="cuda", seed=seed)
    return {
        "scenario": scn.key,
        "kernel": kid,
        "config": cfg,
        "rel_error": res.rel_error,
        "tolerance": res.tolerance,
        "ok": res.ok,
        "error": res.error,
        "seconds": round(time.perf_counter() - t0, 3),
    }


_WARM_OPS: dict = {}


def _warm_task(task: tuple[dict, str, dict]) -> tuple[str, str, str | None]:
    """Compile (and launch once) a kernel config in a worker; Triton's disk cache shares the binary."""
    import torch

    from dop_tui.measure.launch import bind
    from dop_tui.operands import make_operands

    scn_json, kid, cfg = task
    key = json.dumps(scn_json, sort_keys=True)
    if key not in _WARM_OPS:
        _WARM_OPS.clear()
        _WARM_OPS[key] = make_operands(Scenario.from_json(scn_json), "cuda")
    try:
        bind(kid, _WARM_OPS[key], cfg)()
        torch.cuda.synchronize()
        return kid, json.dumps(cfg, sort_keys=True), None
    except Exception as exc:
        return kid, json.dumps(cfg, sort_keys=True), f"{type(exc).__name__}: {exc}"


def run_checks(tasks: list[tuple[dict, str, dict, int]], workers: int, log, deadline: float = 0) -> list[dict]:
    """Run checks in a pool of GPU worker processes; stop taking results after ``deadline`` seconds."""
    ctx = mp.get_context("spawn")
    results = []
    t0 = time.time()
    with ctx.Pool(workers, initializer=_worker_init) as pool:
        for i, r in enumerate(pool.imap_unordered(_check_task, tasks, chunksize=4)):
            if deadline and time.time() - t0 > deadline:
                print(f"deadline reached after {i} of {len(tasks)} checks", flush=True)
                pool.terminate()
                break
            results.append(r)
            log.write(json.dumps(r) + "\n")
            if not r["ok"]:
                print("FAIL", r["scenario"], r["kernel"], r["config"], r["rel_error"], r["error"], flush=True)
            if (i + 1) % 500 == 0:
                print(f"  checked {i + 1}/{len(tasks)} in {time.time() - t0:.0f}s", flush=True)
    return results


def _device_name() -> str:
    import torch
    import triton

    return f"{torch.cuda.get_device_name()} (torch {torch.__version__}, triton {triton.__version__})"


# -- check phase -------------------------------------------------------------------------------------
def phase_check(args: argparse.Namespace) -> None:
    out = Path(args.out)
    rng = random.Random(args.seed)
    tasks = []
    batches = list(range(1, 65))
    for op, h_in, h_outs in shape_groups(check=True):
        for rank in (16, 64):
            scns = decode_scenarios(op, h_in, h_outs, rank, batches)
            # prefill layouts too: long segments (128..2048 tokens)
            scns += [
                make_scenario(op, h_in, h_outs, rank, "bf16", prefill_lens(n, seed=n), workload="prefill")
                for n in (1, 3)
            ]
            for sk in sketches_for(op):
                # a config pool shared by the group's layouts (compiles are reused); grown only when a layout
                # has fewer than 2 valid pool configs
                pool: list = rng.sample(enumerate_valid(sk.id, scns[-1]), args.configs)
                for s in scns:
                    vset = set(enumerate_valid(sk.id, s))
                    usable = [c for c in pool if c in vset]
                    while len(usable) < min(2, len(vset)):
                        c = rng.choice(sorted(vset - set(usable)))
                        pool.append(c)
                        usable.append(c)
                    for c in rng.sample(usable, 2):
                        tasks.append((s.to_json(), sk.id, c.params, rng.randrange(1 << 30)))
            for s in scns:
                for b in BASELINES:
                    if b.op == op:
                        tasks.append((s.to_json(), b.id, {}, rng.randrange(1 << 30)))
    rng.shuffle(tasks)  # a run cut short by the deadline still covers every group evenly
    print(f"{len(tasks)} checks", flush=True)
    with open(out / "gpu_check.jsonl", "w") as log:
        results = run_checks(tasks, args.workers, log, args.deadline)
    by_kernel: dict[str, list[dict]] = {}
    for r in results:
        by_kernel.setdefault(r["kernel"], []).append(r)
    lines = [
        f"{len(results)} of {len(tasks)} planned checks ran on {_device_name()}",
        "",
        "| kernel | checks | scenarios | worst rel. error | failures |",
        "|---|---|---|---|---|",
    ]
    for kid in sorted(by_kernel):
        rs = by_kernel[kid]
        worst = max(r["rel_error"] for r in rs)
        lines.append(
            f"| {kid} | {len(rs)} | {len({r['scenario'] for r in rs})} | {worst:.2e} | {sum(not r['ok'] for r in rs)} |"
        )
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


# -- time phase --------------------------------------------------------------------------------------
def phase_time(args: argparse.Namespace) -> None:
    import torch

    from dop_tui.measure.launch import bind
    from dop_tui.measure.roofline import roofline
    from dop_tui.measure.timing import make_pool, rotation_copies, time_do_bench, time_graph
    from dop_tui.operands import clone_operands, make_operands
    from dop_tui.reference import TOLERANCE, reference_loop, relative_error
    from dop_tui.space import DEFAULT_DEVICE

    out = Path(args.out)
    rng = random.Random(args.seed)
    dev = DEFAULT_DEVICE
    groups = [g for g in shape_groups(check=False) if g[0] in args.ops]
    plan = []  # (scenario, [(kernel, config)])
    tasks = []
    for op, h_in, h_outs in groups:
        for rank in args.ranks:
            scns = decode_scenarios(op, h_in, h_outs, rank, args.batches)
            cand_lists: list[list[tuple[str, dict]]] = [[] for _ in scns]
            for sk in sketches_for(op):
                # one config pool per (shape group, sketch), shared across its layouts so compiles are reused:
                # each layout takes the pool's configs valid for it, topped up with fresh samples to N
                pool: list = []
                for i, s in enumerate(scns):
                    valid = enumerate_valid(sk.id, s)
                    vset = set(valid)
                    mine = [c for c in pool if c in vset][: args.configs]
                    fresh = [c for c in valid if c not in set(mine)]
                    extra = rng.sample(fresh, min(len(fresh), args.configs - len(mine)))
                    for c in extra:
                        pool.append(c)
                        tasks.append((s.to_json(), sk.id, c.params, rng.randrange(1 << 30)))
                    cand_lists[i] += [(sk.id, c.params) for c in mine + extra]
            plan += list(zip(scns, cand_lists, strict=True))
    rng.shuffle(plan)  # a run cut short by the deadline still covers every op and shape
    if args.skip_done:  # resume: leave out scenarios a previous run's summary already holds
        done = {r["scenario"] for r in json.loads(Path(args.skip_done).read_text())}
        plan = [(sc, c) for sc, c in plan if sc.key not in done]
    print(f"{len(plan)} scenarios, {sum(len(c) for _, c in plan)} candidates, {len(tasks)} compiles", flush=True)
    t0 = time.time()
    bad: dict[tuple[str, str], str] = {}
    with mp.get_context("spawn").Pool(args.workers, initializer=_worker_init) as wpool:
        for kid, cfg_key, error in wpool.imap_unordered(_warm_task, [t[:3] for t in tasks], chunksize=2):
            if error:
                bad[(kid, cfg_key)] = error
    print(f"compiled in {time.time() - t0:.0f}s; {len(bad)} failed to compile or launch", flush=True)

    torch.cuda.init()
    with open(out / f"time_{'_'.join(args.ops)}.jsonl", "w") as log:
        rows = []
        t_start = time.time()
        for si, (s, cands) in enumerate(plan):
            base = make_operands(s, "cuda", seed=si)
            ref = reference_loop(base)
            probe = clone_operands(base)
            start_out = base.out.clone() if s.accumulate else torch.full_like(base.out, float("nan"))
            n_full = rotation_copies(base, dev.l2_bytes)
            pool = make_pool(base, n_full)
            screen_pool = pool[: min(len(pool), args.screen_calls)]
            screened: dict[str, list[tuple[float, dict]]] = {}
            n_wrong = 0
            for kid, cfg in cands:
                if (kid, json.dumps(cfg, sort_keys=True)) in bad:
                    continue
                try:  # correctness gate on this scenario before any timing
                    probe.out.copy_(start_out)
                    bind(kid, probe, cfg)()
                    err, exc_text = relative_error(probe.out, ref), None
                except Exception as exc:
                    err, exc_text = float("inf"), repr(exc)
                if not err <= TOLERANCE[s.dtype]:
                    n_wrong += 1
                    rec = {"scenario": s.key, "kernel": kid, "config": cfg, "status": "wrong", "rel_error": err}
                    log.write(json.dumps({**rec, "error": exc_text}) + "\n")
                    continue
                try:
                    t = time_graph(kid, screen_pool, cfg, calls=args.screen_calls, replays=3)
                except Exception as exc:  # record and go on
                    log.write(json.dumps({"scenario": s.key, "kernel": kid, "config": cfg, "error": repr(exc)}) + "\n")
                    continue
                screened.setdefault(kid, []).append((t.us, cfg))
                log.write(
                    json.dumps(
                        {
                            "scenario": s.key,
                            "kernel": kid,
                            "config": cfg,
                            "pass": "screen",
                            "us": t.us,
                            "method": t.method,
                        }
                    )
                    + "\n"
                )
            final = [
                (kid, cfg) for kid, lst in screened.items() for _, cfg in sorted(lst, key=lambda x: x[0])[: args.top]
            ]
            final += [(b.id, {}) for b in BASELINES if b.op == s.op]
            for b in BASELINES:  # the baselines pass the same gate
                if b.op == s.op:
                    probe.out.copy_(start_out)
                    bind(b.id, probe, {})()
                    if not relative_error(probe.out, ref) <= TOLERANCE[s.dtype]:
                        raise RuntimeError(f"baseline {b.id} is wrong on {s.key}")
            best: dict[str, dict] = {}
            for kid, cfg in final:
                g = time_graph(kid, pool, cfg, calls=max(100, len(pool)), replays=7)
                db = time_do_bench(kid, base, cfg, warmup_ms=5, rep_ms=25)
                rec = {
                    "scenario": s.key,
                    "kernel": kid,
                    "config": cfg,
                    "pass": "final",
                    "us": g.us,
                    "us_min": g.us_min,
                    "us_max": g.us_max,
                    "method": g.method,
                    "do_bench_us": db.us,
                }
                log.write(json.dumps(rec) + "\n")
                if kid not in best or g.us < best[kid]["us"]:
                    best[kid] = rec
            rf = roofline(s, dev)
            row = {
                "scenario": s.key,
                "op": s.op,
                "h_in": s.h_in,
                "h_out": s.h_outs[0],
                "rank": s.rank,
                "batch": s.num_tokens,
                "workload": s.workload,
                "floor_us": rf.floor_s * 1e6,
                "bytes": rf.bytes,
                "screened": sum(len(v) for v in screened.values()),
                "wrong": n_wrong,
                "best": {
                    k: {"us": v["us"], "do_bench_us": v["do_bench_us"], "config": v["config"]} for k, v in best.items()
                },
            }
            rows.append(row)
            log.flush()
            del pool, screen_pool, base, probe, ref, start_out
            torch.cuda.empty_cache()
            el = time.time() - t_start
            print(
                f"[{si + 1}/{len(plan)} {el:.0f}s] {s.describe()}: floor {row['floor_us']:.2f} us; "
                + ", ".join(
                    f"{k.split('/', 1)[1]} {v['us']:.2f}" for k, v in sorted(best.items(), key=lambda kv: kv[1]["us"])
                ),
                flush=True,
            )
            if args.deadline and el > args.deadline:
                print("deadline reached: stopping early", flush=True)
                break
    (out / f"time_summary_{'_'.join(args.ops)}.json").write_text(json.dumps(rows, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", choices=["check", "time"])
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=min(14, (os.cpu_count() or 2) - 1))
    p.add_argument("--configs", type=int, default=6, help="random configs per sketch (check: pool per group)")
    p.add_argument("--screen-calls", type=int, default=30, help="graph calls (and copies) of the screening pass")
    p.add_argument("--top", type=int, default=3, help="screened configs per sketch re-timed with the full method")
    p.add_argument("--ops", nargs="+", default=["shrink", "expand", "fused"])
    p.add_argument("--ranks", nargs="+", type=int, default=[16, 64])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8, 16, 32, 64])
    p.add_argument("--skip-done", default="", help="time summary JSON of an earlier run: skip its scenarios")
    p.add_argument("--deadline", type=float, default=0, help="stop checking/timing after this many seconds")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    {"check": phase_check, "time": phase_time}[args.phase](args)


if __name__ == "__main__":
    main()
