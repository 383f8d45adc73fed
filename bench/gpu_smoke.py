"""First look on a GPU: versions, a correctness check of every kernel, and the cost of one timing.

python bench/gpu_smoke.py   # prints a table; a few minutes at most
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import triton

from dop_tui.measure.check import check_kernel
from dop_tui.measure.roofline import roofline
from dop_tui.measure.timing import make_pool, rotation_copies, time_do_bench, time_graph
from dop_tui.operands import make_operands
from dop_tui.scenario import make_scenario
from dop_tui.space import BASELINES, DEFAULT_DEVICE, sample_many, sketches_for
from dop_tui.workloads import decode_lens


def main() -> None:
    print(f"device {torch.cuda.get_device_name()} torch {torch.__version__} triton {triton.__version__}")
    rng = random.Random(0)
    for op in ("shrink", "expand", "fused"):
        for w in ("distinct", "skewed"):
            s = make_scenario(op, 4096, (4096,), 16, "bf16", decode_lens(w, 32), workload=w)
            kernels = [(sk.id, c.params) for sk in sketches_for(op) for c in sample_many(sk.id, s, 2, rng)]
            kernels += [(b.id, {}) for b in BASELINES if b.op == op]
            base = make_operands(s, "cuda")
            pool = make_pool(base, rotation_copies(base, DEFAULT_DEVICE.l2_bytes))
            floor = roofline(s, DEFAULT_DEVICE).floor_s * 1e6
            for kid, cfg in kernels:
                t0 = time.perf_counter()
                res = check_kernel(kid, s, cfg, device="cuda")
                t1 = time.perf_counter()
                if not res.ok:
                    print(f"FAIL {s.describe()} {kid} {cfg} {res.error or res.rel_error}")
                    continue
                g30 = time_graph(kid, pool[:30], cfg, calls=30, replays=3)
                t2 = time.perf_counter()
                g = time_graph(kid, pool, cfg, calls=max(100, len(pool)), replays=7)
                t3 = time.perf_counter()
                db = time_do_bench(kid, base, cfg, warmup_ms=5, rep_ms=25)
                t4 = time.perf_counter()
                print(
                    f"{s.op:6} {w:8} {kid:28} err {res.rel_error:.1e} | graph30 {g30.us:7.2f} us | "
                    f"graph{len(pool)} {g.us:7.2f} [{g.us_min:.2f},{g.us_max:.2f}] | do_bench {db.us:7.2f} | "
                    f"floor {floor:.2f} | check {t1 - t0:.2f}s screen {t2 - t1:.3f}s full {t3 - t2:.3f}s "
                    f"db {t4 - t3:.3f}s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
