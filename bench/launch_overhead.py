"""Host cost of one kernel launch, by path, on the GPU: where ``time_graph``'s capture time goes.

  python bench/launch_overhead.py [--out DIR] [--calls 1000]

For the shrink gemv kernel at decode batch 1 (the largest rotation pool) it captures ``--calls`` launches in a
CUDA graph through each path and prints host microseconds per launch:

- ``jit``: ``kernel[grid](*args, **meta)``, Triton's JIT dispatch (what the bind closures do);
- ``compiled``: the CompiledKernel that the first JIT call returned, launched as ``compiled[grid](*all_args)``;
- ``bind+jit``: ``bind()`` of a fresh closure plus its first call (what each rotation copy pays once).

It also replays each graph and checks that both paths compute the same output. Writes DIR/launch_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from dop_tui.kernels import shrink
from dop_tui.measure.launch import bind
from dop_tui.operands import clone_operands, make_operands
from dop_tui.scenario import make_scenario

CONFIG = {"BLOCK_T": 1, "BLOCK_N": 16, "BLOCK_K": 256, "SPLIT_K": 1, "WEIGHT_HINT": 0, "num_warps": 4,
          "num_stages": 1}  # fmt: skip


def capture_us(launch, calls: int) -> float:
    """Host microseconds per launch while capturing ``calls`` launches into a graph (replayed once)."""
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            launch()
    t1 = time.perf_counter()
    graph.replay()
    torch.cuda.synchronize()
    return (t1 - t0) * 1e6 / calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--calls", type=int, default=1000)
    args = p.parse_args()
    scn = make_scenario("shrink", 4096, 4096, 16, "bf16", [1])
    ops = make_operands(scn, "cuda", seed=0)
    fn = shrink._shrink_gemv_kernel
    kargs = shrink._args(ops)
    meta = dict(BLOCK_T=1, BLOCK_N=16, BLOCK_K=256, SPLIT_K=1, EVEN_K=True, EVEN_N=True, ACCUMULATE=scn.accumulate,
                ATOMIC=False, EVICT_W="", num_warps=4, num_stages=1)  # fmt: skip
    grid = (scn.num_segments, 1, 1)  # the compiled kernel's launcher takes all three grid sizes
    compiled = fn[grid](*kargs, **meta)
    torch.cuda.synchronize()
    full = [*kargs, *(meta[name] for name in fn.arg_names[len(kargs) :])]
    runner = compiled[grid]
    out: dict = {"device": torch.cuda.get_device_name(), "triton": __import__("triton").__version__,
                 "calls": args.calls}  # fmt: skip

    ops.v.fill_(float("nan"))
    fn[grid](*kargs, **meta)
    want = ops.v.clone()
    ops.v.fill_(float("nan"))
    runner(*full)
    torch.cuda.synchronize()
    out["same_output"] = bool(torch.equal(want, ops.v))

    for _ in range(2):  # the second round is the one reported (first pays allocator and graph-pool warm-up)
        out["jit_us"] = round(capture_us(lambda: fn[grid](*kargs, **meta), args.calls), 2)
        out["compiled_us"] = round(capture_us(lambda: runner(*full), args.calls), 2)
    copies = [clone_operands(ops) for _ in range(200)]
    t0 = time.perf_counter()
    runs = [bind("shrink/gemv/fma", c, CONFIG) for c in copies]
    out["bind_us"] = round((time.perf_counter() - t0) * 1e6 / len(copies), 2)
    pending = iter(runs)
    out["bind_jit_capture_us"] = round(capture_us(lambda: next(pending)(), len(runs)), 2)
    t0 = time.perf_counter()
    for _ in range(args.calls):
        ops.v.zero_()
    torch.cuda.synchronize()
    out["torch_zero_us"] = round((time.perf_counter() - t0) * 1e6 / args.calls, 2)
    print(json.dumps(out, indent=1))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "launch_overhead.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
