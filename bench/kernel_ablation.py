"""Where a kernel's time goes: the best config of chosen scenarios, timed as the kernel and as ablations generated
from its source (kernels to time, not to use: their results are wrong). Per kernel file:

- ``empty`` (every file): every program returns at once (the launch of the same grid, its scheduling and drain);
- ``meta`` (every file): every program returns right after its metadata (segment bounds, adapter index,
  projection offsets) has arrived: the launch plus the first dependent round trip to memory;
- ``nosync`` (the split-K kernels but fan-out): no reduction across programs (no atomics, no count, no wait, no
  workspace read). In ``fused/splitk/*`` each program expands its own column tiles with its own partial; in
  ``fused/splitk-last/*`` and ``shrink/splitk-last/*`` the block's first program finishes alone with its own
  partial (expands every column tile, or writes v), the others end after their share of the shrink. What is
  left is loading the operands, the products and the stores;
- ``nowait`` (``fused/splitk/*``, the kernels that wait): the partials' atomics and the count, but nobody waits
  or reads the workspace.
- ``nodot`` (``expand/tile/*``): every load and store, but each product is two row and column sums on the CUDA
  cores in place of the tensor-core ``tl.dot``: what the products cost on the program's path;
- ``noload`` (``expand/tile/*``): the products and y's load and store, but the v and B tiles are constants (their
  loads are dead): what reading v and B (from L2, re-read once per column and row tile) costs.

``meta - empty`` is the metadata round trip, ``full - meta`` the operands' loads, the products and the store
(and, for the split-K kernel, ``full - nosync`` the dependent reduction). Timed by the tuner's method (a CUDA
graph over copies rotated past L2), beside the scenario's fastest baseline, timed again. With ``--hot``, ``full``
and ``meta`` are timed a second time on one copy of the operands (``full_hot``, ``meta_hot``: every call finds
them in L2 and their pages in the TLB), and the baseline too (``baseline_hot_us``): ``full - full_hot`` is what
reading operands that are not cached costs, the part of ``full - meta`` no kernel that reads them once avoids.

  python bench/kernel_ablation.py SESSION [SESSION ...] [--sketches fused/splitk/] [--match t1s1-distinct ...]
                                  [--hot] [--out FILE.json]
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

KERNELS = Path(__file__).resolve().parent.parent / "kernels"
RETURN = "\n        return\n"
DOT_INPUTS = "        vt, bt = _dot_operands(vt, bt, CAST_FP32)\n"
TILE_DOT = DOT_INPUTS + "        acc += tl.dot(vt, bt)\n"  # expand/tile/dot's product
CONST = "(tl.zeros(({}), dtype=tl.float32) + scale).to(b_ptr.dtype.element_ty)\n"  # a tile no load feeds
NOWAIT = [("        if WAIT:\n            acc = _await_sum(count_ptr + blk",
           "        if WAIT:\n            if K < 0:\n                acc = _await_sum(count_ptr + blk")]  # fmt: skip
# (old, new) source patches per ablation, every occurrence replaced; each must occur. ``meta`` turns a metadata
# exit's bounds test into ``end >= 0``, which always holds and still waits for all the metadata (``end`` depends
# on the adapter index: kernels/_common.py ``load_segment``), so the program ends there.
PATCHES: dict[str, dict[str, list[tuple[str, str]]]] = {
    "fused_splitk": {
        "empty": [("    part = pid_ps % G\n", "    part = pid_ps % G\n    if seg >= 0:" + RETURN),
                  ("    part = pid_ps % SPLIT_K\n", "    part = pid_ps % SPLIT_K\n    if seg >= 0:" + RETURN)],
        "meta": [("    if row0 >= end:  # the whole block", "    if end >= 0:  # the whole block")],
        "nowait": NOWAIT,
        "nosync": [*NOWAIT, (
            '            tl.atomic_add(ws_ptrs, acc, mask=t_mask, sem="relaxed")\n'
            "        tl.debug_barrier()  # every thread's partial is in before the count says so\n"
            '        arrived = tl.atomic_add(count_ptr + blk, 1, sem="acq_rel") + 1\n',
            "            pass\n        arrived = found + 1\n",  # read only where nobody waits (``K < 0``)
        ), (
            "            if arrived >= base + G:\n"
            '                acc = tl.load(ws_ptrs, mask=t_mask, other=0.0, cache_modifier=".cg")\n'
            "            n_end = tl.where(arrived >= base + G, n_cols, 0)\n",
            "            n_end = tl.where(part == 0, n_cols, 0)\n",
        ), (
            '    tl.atomic_add(ws_ptrs, acc, mask=t_mask, sem="relaxed")\n'
            "    tl.debug_barrier()  # every thread's partial is in before the count says so\n"
            '    arrived = tl.atomic_add(count_ptr + blk, 1, sem="acq_rel") + 1\n'
            "    if arrived == (found // SPLIT_K + 1) * SPLIT_K:  # the last one in writes the block's rows of v\n"
            '        out = tl.load(ws_ptrs, mask=t_mask, other=0.0, cache_modifier=".cg") * scale\n',
            "    if part == 0:\n        out = acc * scale\n",
        )],
    },
    "expand": {
        "empty": [("    pid_np = tl.program_id(2)\n", "    pid_np = tl.program_id(2)\n    if seg >= 0:" + RETURN),
                  ("    pid_np = tl.program_id(1)\n", "    pid_np = tl.program_id(1)\n    if seg >= 0:" + RETURN),
                  ("    p = tl.program_id(2)\n", "    p = tl.program_id(2)\n    if p >= 0:" + RETURN),
                  ("    pid_gp = tl.program_id(2)\n", "    pid_gp = tl.program_id(2)\n    if seg >= 0:" + RETURN)],
        "meta": [("    if (row0 >= end) | (col0 >= width):", "    if (end >= 0) | (col0 >= width):"),
                 ("    if (col0 >= width) | (start >= end):", "    if (col0 >= width) | (end >= 0):"),
                 ("    if (col0 >= width) | (first_start > first_end):", "    if (col0 >= width) | (first_end >= 0):")],
        "nodot": [(TILE_DOT, DOT_INPUTS + "        acc += tl.sum(vt.to(tl.float32), axis=1)[:, None]\n"
                   "        acc += tl.sum(bt.to(tl.float32), axis=0)[None, :]\n")],
        "noload": [(TILE_DOT, "        vt = " + CONST.format("BLOCK_M, BLOCK_K") + "        bt = "
                    + CONST.format("BLOCK_K, BLOCK_N") + TILE_DOT)],
    },
    "shrink": {
        "empty": [("    pid_nk = tl.program_id(2)\n", "    pid_nk = tl.program_id(2)\n    if seg >= 0:" + RETURN),
                  ("    pid_nk = tl.program_id(1)\n", "    pid_nk = tl.program_id(1)\n    if seg >= 0:" + RETURN)],
        "meta": [("    if row0 >= end:\n", "    if end >= 0:\n"),
                 ("    if start >= end:  # the exit", "    if end >= 0:  # the exit")],
    },
}  # fmt: skip
# The ablations that mean something only for some sketches of a file (sketch id prefixes); the rest apply to all.
ONLY_FOR = {
    "nowait": ("fused/splitk/",),
    "nosync": ("fused/splitk/", "fused/splitk-last/", "shrink/splitk-last/"),
    "nodot": ("expand/tile/",),
    "noload": ("expand/tile/",),
}


def applies(name: str, kernel_id: str) -> bool:
    """Whether ablation ``name`` is defined for sketch ``kernel_id``."""
    return kernel_id.startswith(ONLY_FOR.get(name, ("",)))


def variants(module: str, folder: Path) -> dict[str, object]:
    """Kernel file ``module`` and its ablations, written to ``folder`` and imported."""
    path = KERNELS / f"{module}.py"
    source = path.read_text()
    mods = {"full": module_from_file(str(path), f"dop_tui.kernels._ablation_{module}_full")}
    for name, patches in PATCHES.get(module, {}).items():
        text = source
        for old, new in patches:
            if old not in text:
                raise SystemExit(f"{module} {name}: the kernel source changed; update the patch for {old[:60]!r}")
            text = text.replace(old, new)
        out = folder / f"{module}_{name}.py"
        out.write_text(text)
        mods[name] = module_from_file(str(out), f"dop_tui.kernels._ablation_{module}_{name}")
    return mods


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sessions", nargs="+")
    p.add_argument("--sketches", action="append", default=[], help="sketch id prefix (any of them; default all)")
    p.add_argument("--match", action="append", default=[], help="scenario key substring (any of them)")
    p.add_argument("--hot", action="store_true", help="also time full, meta and the baseline on one copy (in L2)")
    p.add_argument("--out", default="")
    args = p.parse_args()

    import torch

    from dop_tui.measure.check import error_against
    from dop_tui.measure.gpu_runner import build_state
    from dop_tui.measure.timing import time_graph
    from dop_tui.space.sketches import SKETCH_BY_ID

    prefixes, rows = tuple(args.sketches) or ("",), []
    with tempfile.TemporaryDirectory() as tmp:
        mods: dict[str, dict[str, object]] = {}
        for path in args.sessions:
            s = load(path)
            base_us = baseline_times(s)
            for b in best_per_scenario(s):
                m, key = b.measurement, b.scenario
                entry = SKETCH_BY_ID[m.kernel].entry if m.kernel in SKETCH_BY_ID else None
                if not entry or entry.module not in PATCHES or not m.kernel.startswith(prefixes):
                    continue
                if args.match and not any(x in key for x in args.match):
                    continue
                if entry.module not in mods:
                    mods[entry.module] = variants(entry.module, Path(tmp))
                scn = s.scenarios[key]
                st, _ = build_state(scn)  # the GPU worker's operands, reference and rotation pool
                pool = st["pool"]
                err = error_against(m.kernel, st["probe"], m.config, st["start"], st["ref"])
                bname = min(base_us[key], key=base_us[key].__getitem__)
                row = {"scenario": key, "kernel": m.kernel, "config": m.config, "rel_error": err, "baseline": bname,
                       "baseline_us": time_graph(f"{scn.op}/baseline/{bname}", pool).us}  # fmt: skip
                for name, mod in mods[entry.module].items():
                    if not applies(name, m.kernel):
                        continue
                    binder = binder_for(getattr(mod, entry.function), m.kernel, m.config)
                    row[name] = time_graph(m.kernel, pool, m.config, binder=binder).us
                    if args.hot and name in ("full", "meta"):
                        row[f"{name}_hot"] = time_graph(m.kernel, pool[:1], m.config, binder=binder).us
                if args.hot:
                    row["baseline_hot_us"] = time_graph(f"{scn.op}/baseline/{bname}", pool[:1]).us
                rows.append(row)
                t = {n: row[n] for n in [*mods[entry.module], "full_hot", "meta_hot"] if n in row}
                print(f"{key[:56]:56s} " + " ".join(f"{n} {v:5.2f}" for n, v in t.items())
                      + f" | {bname} {row['baseline_us']:6.2f} (x{row['baseline_us'] / t['full']:.2f})"
                      + (f" hot {row['baseline_hot_us']:.2f}" if args.hot else ""), flush=True)  # fmt: skip
                del pool, st
                torch.cuda.empty_cache()
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
