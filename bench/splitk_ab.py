"""A/B timing of two versions of the split-K fused kernel on the configs a tuning session found fastest.

  git show REV:kernels/fused_splitk.py > .ab/fused_splitk_old.py
  python bench/splitk_ab.py .ab/fused_splitk_old.py SESSION [SESSION ...] [--top 2] [--out FILE.json]

For every decode scenario of the sessions, the ``--top`` fastest recorded configs of ``fused/splitk/*`` are run
with the old version (the file given) and the working tree's, both checked against the float64 reference and
timed one after the other by the tuner's method (a CUDA graph over copies rotated past L2); the session's
fastest baseline of the scenario is timed again in the same process. Kernels are compiled first, in parallel
worker processes (one Triton cache). Prints per scenario the best of each version and the baseline, and the
geo-mean speedup over the baseline of each version; ``--out`` writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path
from statistics import geometric_mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dop_tui.scenario import Scenario
from dop_tui.session.store import load
from dop_tui.session.summary import baseline_times

OLD_NAME = "dop_tui.kernels._fused_splitk_ab_old"


def module_from_file(path: str, name: str):
    """A kernel file imported as module ``name`` of ``dop_tui.kernels`` (its relative imports resolve)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def binder_for(launcher, kid: str, cfg: dict):
    """A ``time_graph`` binder: ``launcher`` (a ``bind_*`` of some version of the kernel) on the operands."""
    from dop_tui.measure.launch import launch_args

    def bind(ops):
        tensors, kw = launch_args(kid, ops, cfg)
        return launcher(*tensors, **kw)

    return bind


def _binder(version: str, old_path: str, kid: str, cfg: dict):
    """Sketch ``kid`` with ``cfg``: the working tree's launcher, or the old file's."""
    from dop_tui.space.sketches import SKETCH_BY_ID

    entry = SKETCH_BY_ID[kid].entry
    old = version == "old"
    return binder_for(
        getattr(module_from_file(old_path, OLD_NAME), entry.function) if old else entry.resolve(), kid, cfg
    )


def _warm(args: tuple[str, list[tuple[dict, str, str, dict]]]) -> int:
    """Compile (one call each) a share of the (scenario, version, kernel, config) items; returns failures."""
    old_path, items = args
    from dop_tui.operands import make_operands

    bad = 0
    for scn_json, version, kid, cfg in items:
        try:
            ops = make_operands(Scenario.from_json(scn_json), "cuda", seed=0)
            _binder(version, old_path, kid, cfg)(ops)()
        except Exception as exc:  # reported; the timing pass names it again
            bad += 1
            print(f"warm: {kid} {cfg}: {type(exc).__name__}: {exc}"[:300], flush=True)
    return bad


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old")
    p.add_argument("sessions", nargs="+")
    p.add_argument("--top", type=int, default=2)
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--out", default="")
    args = p.parse_args()

    cases = []  # (session, scenario, configs, best baseline id)
    for path in args.sessions:
        s = load(path)
        base = baseline_times(s)
        for key, scn in s.scenarios.items():
            if scn.op != "fused" or not base.get(key) or "prefill" in key:
                continue
            ms = sorted((m for m in s.measurements if m.scenario == key and m.status == "ok" and m.us
                         and m.kernel.startswith("fused/splitk/") and not m.screening), key=lambda m: m.us)  # fmt: skip
            top, seen = [], set()
            for m in ms:
                sig = (m.kernel, tuple(sorted(m.config.items())))
                if sig not in seen:
                    seen.add(sig)
                    top.append((m.kernel, dict(m.config), m.us))
                if len(top) == args.top:
                    break
            if top:
                bname = min(base[key], key=base[key].__getitem__)
                cases.append((Path(path).name, scn, top, f"fused/baseline/{bname}"))
    items = [(scn.to_json(), v, kid, cfg) for _, scn, top, _ in cases for kid, cfg, _ in top for v in ("old", "new")]
    t0 = time.perf_counter()
    shares = [(args.old, items[i :: args.workers]) for i in range(args.workers)]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        bad = sum(pool.map(_warm, shares))
    print(f"{len(cases)} scenarios, {len(items)} kernels compiled in {time.perf_counter() - t0:.0f} s "
          f"({bad} failed)", flush=True)  # fmt: skip

    import torch

    from dop_tui.measure.check import error_against
    from dop_tui.measure.gpu_runner import build_state
    from dop_tui.measure.timing import time_graph
    from dop_tui.reference import TOLERANCE

    rows = []
    for session, scn, top, bkid in cases:
        st, _ = build_state(scn)  # the GPU worker's operands, reference and rotation pool
        pool = st["pool"]
        row = {"session": session, "scenario": scn.key, "baseline": bkid,
               "baseline_us": time_graph(bkid, pool).us, "old": [], "new": []}  # fmt: skip
        for kid, cfg, recorded in top:
            for version in ("old", "new"):
                binder = _binder(version, args.old, kid, cfg)
                err = error_against(kid, st["probe"], cfg, st["start"], st["ref"], binder=binder)
                if not err <= TOLERANCE[scn.dtype]:
                    row[version].append({"kernel": kid, "config": cfg, "status": "wrong", "rel_error": err})
                    continue
                t = time_graph(kid, pool, cfg, binder=binder)
                row[version].append({"kernel": kid, "config": cfg, "us": t.us, "recorded_us": recorded})
        best = {v: min((r["us"] for r in row[v] if "us" in r), default=math.inf) for v in ("old", "new")}
        row.update(best_old_us=best["old"], best_new_us=best["new"])
        rows.append(row)
        print(f"{scn.key[:58]:58s} old {best['old']:6.2f} new {best['new']:6.2f} ({best['old'] / best['new']:.3f}x) "
              f"{bkid.rsplit('/', 1)[1]} {row['baseline_us']:6.2f}", flush=True)  # fmt: skip
        del pool, st
        torch.cuda.empty_cache()
    for session in sorted({r["session"] for r in rows}):
        rs = [r for r in rows if r["session"] == session and math.isfinite(r["best_new_us"])]
        g = {v: geometric_mean([r["baseline_us"] / r[f"best_{v}_us"] for r in rs]) for v in ("old", "new")}
        m = {v: min(r["baseline_us"] / r[f"best_{v}_us"] for r in rs) for v in ("old", "new")}
        print(f"{session}: {len(rs)} scenarios; vs best baseline: old {g['old']:.3f}x (min {m['old']:.2f}x), "
              f"new {g['new']:.3f}x (min {m['new']:.2f}x); new/old {g['new'] / g['old']:.3f}")  # fmt: skip
    for v in ("old", "new"):
        print(f"{v} version wrong on {sum(1 for r in rows for x in r[v] if x.get('status') == 'wrong')} configs")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
