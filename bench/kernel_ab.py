"""A/B timing of two versions of our kernels on the configs a tuning session found fastest.

  mkdir -p .ab/REV && git archive REV kernels | tar -x -C .ab/REV
  python bench/kernel_ab.py .ab/REV/kernels SESSION [SESSION ...] [--new .ab/REV2/kernels] [--sketches fused/splitk/]
                            [--top 2] [--prefill] [--out F.json]

For every decode scenario of the sessions (and every prefill one with ``--prefill``), the ``--top`` fastest
recorded configs of the sketches whose ids start with one of ``--sketches`` (default: every sketch of ours) are run
with the old version (the kernel file of the same name in the folder given) and the new one (the working tree's, or
that of the ``--new`` folder), both checked against the float64 reference and timed one after the other by the
tuner's method (a CUDA graph over copies rotated past L2); the session's fastest baseline of the scenario is timed
again in the same process. Kernels are compiled first, in parallel worker processes (one Triton cache). Prints per
scenario the best of each version and the baseline, and per session and op the geo-mean speedup over the baseline
of each version; ``--out`` writes the rows as JSON.
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


def _binder(version: str, dirs: dict[str, str], kid: str, cfg: dict):
    """Sketch ``kid`` with ``cfg`` in ``version`` ("old" or "new"): the launcher of its kernel file in
    ``dirs[version]``, or the working tree's where that is empty."""
    from dop_tui.space.sketches import SKETCH_BY_ID

    entry = SKETCH_BY_ID[kid].entry
    if not dirs[version]:
        return binder_for(entry.resolve(), kid, cfg)
    path = Path(dirs[version]) / f"{entry.module}.py"
    mod = module_from_file(str(path), f"dop_tui.kernels._ab_{version}_{entry.module}")
    return binder_for(getattr(mod, entry.function), kid, cfg)


def _warm(args: tuple[dict[str, str], list[tuple[dict, str, str, dict]]]) -> int:
    """Compile (one call each) a share of the (scenario, version, kernel, config) items; returns failures."""
    dirs, items = args
    from dop_tui.operands import make_operands

    bad = 0
    for scn_json, version, kid, cfg in items:
        try:
            ops = make_operands(Scenario.from_json(scn_json), "cuda", seed=0)
            _binder(version, dirs, kid, cfg)(ops)()
        except Exception as exc:  # reported; the timing pass names it again
            bad += 1
            print(f"warm: {kid} {cfg}: {type(exc).__name__}: {exc}"[:300], flush=True)
    return bad


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", help="a folder with the old version's kernel files")
    p.add_argument("sessions", nargs="+")
    p.add_argument("--new", default="", help="a folder with the new version's kernel files (default: the tree's)")
    p.add_argument("--sketches", action="append", default=[], help="sketch id prefix (any of them; default all)")
    p.add_argument("--top", type=int, default=2)
    p.add_argument("--prefill", action="store_true", help="the prefill scenarios too (slower to time)")
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--out", default="")
    args = p.parse_args()

    from dop_tui.space.sketches import SKETCH_BY_ID

    prefixes = tuple(args.sketches) or ("",)
    cases = []  # (session, scenario, configs, best baseline id)
    for path in args.sessions:
        s = load(path)
        base = baseline_times(s)
        for key, scn in s.scenarios.items():
            if not base.get(key) or ("prefill" in key and not args.prefill):
                continue
            ms = sorted((m for m in s.measurements if m.scenario == key and m.status == "ok" and m.us
                         and m.kernel in SKETCH_BY_ID and m.kernel.startswith(prefixes) and not m.screening),
                        key=lambda m: m.us)  # fmt: skip
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
                cases.append((Path(path).name, scn, top, f"{scn.op}/baseline/{bname}"))
    items = [(scn.to_json(), v, kid, cfg) for _, scn, top, _ in cases for kid, cfg, _ in top for v in ("old", "new")]
    t0 = time.perf_counter()
    dirs = {"old": args.old, "new": args.new}
    shares = [(dirs, items[i :: args.workers]) for i in range(args.workers)]
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
                binder = _binder(version, dirs, kid, cfg)
                try:
                    err = error_against(kid, st["probe"], cfg, st["start"], st["ref"], binder=binder)
                except Exception as exc:  # e.g. a recorded config the version rejects: reported, not fatal
                    row[version].append({"kernel": kid, "config": cfg, "status": "error", "message": str(exc)[:300]})
                    continue
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
    for session, op in sorted({(r["session"], r["baseline"].split("/")[0]) for r in rows}):
        rs = [r for r in rows if r["session"] == session and r["baseline"].startswith(op + "/")
              and math.isfinite(r["best_new_us"]) and math.isfinite(r["best_old_us"])]  # fmt: skip
        if not rs:
            print(f"{session} {op}: no scenario with both versions timed")
            continue
        g = {v: geometric_mean([r["baseline_us"] / r[f"best_{v}_us"] for r in rs]) for v in ("old", "new")}
        m = {v: min(r["baseline_us"] / r[f"best_{v}_us"] for r in rs) for v in ("old", "new")}
        print(f"{session} {op}: {len(rs)} scenarios; vs best baseline: old {g['old']:.3f}x (min {m['old']:.2f}x), "
              f"new {g['new']:.3f}x (min {m['new']:.2f}x); new/old {g['new'] / g['old']:.3f}")  # fmt: skip
    for v in ("old", "new"):
        bad = [x.get("status") for r in rows for x in r[v] if "us" not in x]
        print(f"{v} version wrong on {bad.count('wrong')} configs, failed on {bad.count('error')}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
