"""Compile every sketch (a few random valid configs) and every baseline for sm_90. Run without the interpreter.

Prints one line per compiled launch and exits non-zero if any launch fails to compile.
"""

import random
import sys

from dop_tui.measure.aot import compile_kernel
from dop_tui.scenario import make_scenario
from dop_tui.space import BASELINES, SKETCHES, sample_many

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
            print(
                f"ok {kid} {launch.kernel} regs={launch.registers} local={launch.local_bytes} "
                f"smem={launch.shared_bytes} {cfg}"
            )
    except Exception as exc:
        failures += 1
        print(f"FAIL {kid} {s.key} {cfg}: {type(exc).__name__}: {exc}")
print(f"{len(jobs)} kernels, {failures} failed")
sys.exit(1 if failures else 0)
