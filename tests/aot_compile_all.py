"""Compile every sketch (a few random valid configs) and every baseline for sm_90. Run without the interpreter.

Prints one line per compiled launch and exits non-zero if any launch fails to compile, or if one of our kernels
issues fewer global loads before its first exit than it has metadata loads (segment bounds, adapter index,
projection offsets: ``kernels/_common.py`` says why they must share one round trip).
"""

import random
import sys

from dop_tui.measure.aot import compile_kernel
from dop_tui.scenario import make_scenario
from dop_tui.space import BASELINES, SKETCHES, sample_many

# metadata loads each kernel issues before its first exit (the split-K kernels' count and projection offsets
# are read later, overlapping the shrink; the walk kernel's are its first segment's and the projection's)
METADATA_LOADS = {"_shrink_tile_kernel": 3, "_shrink_gemv_kernel": 3, "_shrink_splitlast_kernel": 3,
                  "_expand_tile_kernel": 5, "_expand_gemv_kernel": 5, "_expand_walk_kernel": 5,
                  "_expand_cols_kernel": 5,
                  "_fused_tile_kernel": 5, "_fused_gemv_kernel": 5, "_fused_splitk_kernel": 3}  # fmt: skip
failures = 0
scenarios = {
    op: [
        make_scenario(op, 4096, (4096,), 16, "bf16", [1] * 16, workload="distinct"),
        make_scenario(op, 11008, (4096, 4096), 64, "fp16", [40, 7, 1], workload="skewed"),
    ]
    for op in ("shrink", "expand", "fused")
}
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
jobs = [(sk.id, s, c.params) for sk in SKETCHES for s in scenarios[sk.op] for c in sample_many(sk.id, s, 2, rng)]
# the torch baseline launches no Triton kernel
jobs += [(b.id, s, {}) for b in BASELINES if b.name != "torch" for s in scenarios[b.op]]
for kid, s, cfg in jobs:
    try:
        for launch in compile_kernel(kid, s, cfg):
            need, got = METADATA_LOADS.get(launch.kernel, 0), launch.loads_before_exit
            late = got is not None and got < need
            failures += late
            print(
                f"{'LATE' if late else 'ok'} {kid} {launch.kernel} regs={launch.registers} local={launch.local_bytes} "
                f"smem={launch.shared_bytes} loads-before-exit={got} (needs {need}) {cfg}"
            )
    except Exception as exc:
        failures += 1
        print(f"FAIL {kid} {s.key} {cfg}: {type(exc).__name__}: {exc}")
print(f"{len(jobs)} kernels, {failures} failed (or load their metadata late)")
sys.exit(1 if failures else 0)
