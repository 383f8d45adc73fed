"""Where the split-K fused kernel's time goes: the best config of chosen decode scenarios, timed as the kernel
and as three ablations generated from its source (kernels to time, not to use: their results are wrong):

- ``empty``: every program returns at once (the launch of the same grid, its scheduling and drain);
- ``nosync``: no reduction across programs (no atomics, no count, no wait): each program expands its own
  partial, so what is left is loading x, A, B and y, the two products and the store, all in parallel;
- ``nowait``: the partials' atomics and the count, but nobody waits or reads the workspace.

``full - nosync`` is the price of the dependent reduction; ``nosync`` is what one launch with the same tiles
costs without it. Timed by the tuner's method (a CUDA graph over copies rotated past L2), beside the
scenario's fastest baseline, timed again.

  python bench/splitk_ablation.py SESSION [SESSION ...] [--match t1s1-distinct --match ...] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernel_ab import binder_for, module_from_file

from dop_tui.session.store import load
from dop_tui.session.summary import baseline_times, best_per_scenario

KERNEL = Path(__file__).resolve().parent.parent / "kernels" / "fused_splitk.py"
NOWAIT = [("        if WAIT:\n            acc = _await_sum(count_ptr + blk",
           "        if WAIT:\n            if K < 0:\n                acc = _await_sum(count_ptr + blk")]  # fmt: skip
PATCHES = {
    "empty": [("    part = pid_ps % G\n", "    part = pid_ps % G\n    if seg >= 0:\n        return\n")],
    "nowait": NOWAIT,
    "nosync": [*NOWAIT, (
        '            tl.atomic_add(ws_ptrs, acc, mask=t_mask, sem="relaxed")\n'
        "        tl.debug_barrier()  # every thread's partial is in before the count says so\n"
        '        arrived = tl.atomic_add(count_ptr + blk, 1, sem="acq_rel") + 1\n',
        "            pass\n        arrived = found + 1\n",
    )],
}  # fmt: skip


def variants(folder: Path) -> dict[str, object]:
    """The kernel module and its ablations, written to ``folder`` and imported."""
    source = KERNEL.read_text()
    mods = {"full": module_from_file(str(KERNEL), "dop_tui.kernels._ablation_full")}
    for name, patches in PATCHES.items():
        text = source
        for old, new in patches:
            if text.count(old) != 1:
                raise SystemExit(f"{name}: the kernel source changed; update the patch for {old[:60]!r}")
            text = text.replace(old, new)
        path = folder / f"fused_splitk_{name}.py"
        path.write_text(text)
        mods[name] = module_from_file(str(path), f"dop_tui.kernels._ablation_{name}")
    return mods


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sessions", nargs="+")
    p.add_argument("--match", action="append", default=[], help="scenario key substring (any of them)")
    p.add_argument("--out", default="")
    args = p.parse_args()

    import torch

    from dop_tui.measure.check import error_against
    from dop_tui.measure.gpu_runner import build_state
    from dop_tui.measure.timing import time_graph
    from dop_tui.space.sketches import SKETCH_BY_ID

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mods = variants(Path(tmp))
        for path in args.sessions:
            s = load(path)
            base_us = baseline_times(s)
            for b in best_per_scenario(s):
                m, key = b.measurement, b.scenario
                if not m.kernel.startswith("fused/splitk/") or not any(x in key for x in args.match):
                    continue
                st, _ = build_state(s.scenarios[key])  # the GPU worker's operands, reference and rotation pool
                pool = st["pool"]
                err = error_against(m.kernel, st["probe"], m.config, st["start"], st["ref"])
                bname = min(base_us[key], key=base_us[key].__getitem__)
                row = {"scenario": key, "kernel": m.kernel, "config": m.config, "rel_error": err,
                       "baseline": bname, "baseline_us": time_graph(f"fused/baseline/{bname}", pool).us}  # fmt: skip
                fn = SKETCH_BY_ID[m.kernel].entry.function
                for name, mod in mods.items():
                    row[name] = time_graph(
                        m.kernel, pool, m.config, binder=binder_for(getattr(mod, fn), m.kernel, m.config)
                    ).us
                rows.append(row)
                t = {n: row[n] for n in ("empty", "nosync", "nowait", "full")}
                print(f"{key[:56]:56s} " + " ".join(f"{n} {v:5.2f}" for n, v in t.items())
                      + f" | {bname} {row['baseline_us']:6.2f} (x{row['baseline_us'] / t['full']:.2f}; "
                      f"without the reduction x{row['baseline_us'] / t['nosync']:.2f})", flush=True)  # fmt: skip
                del pool, st
                torch.cuda.empty_cache()
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
