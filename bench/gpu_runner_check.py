"""On a GPU: the GPU runner measures a batch that holds a hanging and a faulting kernel.

  python bench/gpu_runner_check.py [--out DIR]

Expected: the hang is a ``timeout``, the out-of-bounds read a ``crash`` (CUDA fault), every other request
is measured; prints a table and the measurements per minute.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _task(task):
    """The runner's task with the fault kernels resolvable by id (patched inside the worker)."""
    from fault_kernels import FAULTS

    import dop_tui.measure.launch as launch
    from dop_tui.measure.gpu_runner import _gpu_task

    if not getattr(launch, "_faults_patched", False):
        original = launch.resolve
        launch.resolve = lambda kid: FAULTS.get(kid) or original(kid)
        launch._faults_patched = True
    return _gpu_task(task)


def main() -> None:
    from dop_tui.measure.gpu_runner import GpuRunner
    from dop_tui.scenario import make_scenario
    from dop_tui.space import BASELINES, sample_many
    from dop_tui.workloads import decode_lens

    p = argparse.ArgumentParser()
    p.add_argument("--out", default=".")
    p.add_argument("--timeout", type=float, default=20.0)
    args = p.parse_args()
    scn = make_scenario("shrink", 4096, (4096,), 16, "bf16", decode_lens("skewed", 32), workload="skewed")
    rng = random.Random(0)
    normal = [(c.sketch, c.params) for sk in ("shrink/tile/dot", "shrink/splitk/dot", "shrink/gemv/fma")
              for c in sample_many(sk, scn, 4, rng)]  # fmt: skip
    requests = [*normal[:4], ("shrink/test/hang", {}), *normal[4:8], ("shrink/test/oob", {}), *normal[8:]]
    requests += [(b.id, {}) for b in BASELINES if b.op == "shrink"]
    t0 = time.time()
    with GpuRunner(timeout_s=args.timeout, task_fn=_task) as runner:
        res = runner.measure(scn, requests)
        restarts = runner.pool.restarts
    wall = time.time() - t0
    for m in res:
        us = f"{m.us:7.2f} us" if m.us else " " * 10
        print(f"{m.kernel:24} {m.status:12} {us} {m.message[:70]}")
    n_ok = sum(m.status == "ok" for m in res)
    print(
        f"{len(res)} requests in {wall:.1f}s ({n_ok} timed; {60 * len(res) / wall:.0f} requests/min including "
        f"a {args.timeout:.0f}s hang timeout and worker restarts: {restarts})"
    )
    Path(args.out, "gpu_runner_check.json").write_text(json.dumps([m.to_json() for m in res], indent=1))


if __name__ == "__main__":
    main()
