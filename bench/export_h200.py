"""The exported package on a GPU: export, install (no dependencies), self-test, and time its API.

  python bench/export_h200.py --out DIR [--session sessions/h200-7b-decode.json.gz]

1. ``dop export SESSION`` into DIR/pkg; ``pip install --no-deps`` into DIR/site (the package only).
2. ``python -m <pkg>.selftest --device cuda`` in a process where dop_tui cannot be imported.
3. Per LoRA-delta case of the session: ``add_lora`` (dispatch included) timed as the session timed kernels
   (CUDA graph over inputs rotated past 3x L2, median of replays), beside the session's own figure for the
   same kernels (best shrink + best expand, or best fused) and the baselines' delta; with and without the
   ``max_seg_len`` hint.
4. Host time per eager call: ``add_lora`` against calling the same kernels' prepared launch closures (a bare
   launch of the same Triton kernels, two launches for shrink + expand), over 300 calls each.
Writes DIR/export_h200.json and prints a table.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = "lora_h200"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--session", type=Path, default=ROOT / "sessions" / "h200-7b-decode.json.gz")
    args = p.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    pkg, site = out / "pkg", out / "site"
    shutil.rmtree(pkg, ignore_errors=True)
    shutil.rmtree(site, ignore_errors=True)
    run = subprocess.run([sys.executable, "-m", "dop_tui.cli", "export", str(args.session), "-o", str(pkg), "--name",
                          NAME], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    print(run.stdout, run.stderr)
    assert run.returncode == 0
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(site), str(pkg)], capture_output=True, text=True)  # fmt: skip
    print(f"pip install --no-deps: exit {pip.returncode} {pip.stderr[-400:]}")
    assert pip.returncode == 0
    env = {**os.environ, "PYTHONPATH": str(site)}
    test = subprocess.run([sys.executable, "-c", "import sys; sys.modules['dop_tui'] = None\n"
                           f"from {NAME} import selftest; sys.exit(selftest.main(['--device', 'cuda']))"],
                          cwd=site, env=env, capture_output=True, text=True)  # fmt: skip
    print(test.stdout[-3000:], test.stderr[-2000:])
    report: dict = {"selftest_exit": test.returncode, "selftest_tail": test.stdout[-600:]}

    import torch

    sys.path.insert(0, str(site))
    lib = importlib.import_module(NAME)
    from dop_tui.measure.launch import bind
    from dop_tui.measure.timing import make_pool, rotation_copies, time_graph
    from dop_tui.operands import make_operands
    from dop_tui.session.store import load
    from dop_tui.session.summary import best_per_scenario, session_delta

    sess = load(args.session)
    cases = sorted(session_delta(sess), key=lambda c: (c.scenario.h_in, c.scenario.num_tokens, c.scenario.workload))
    best = {b.scenario: b.measurement for b in best_per_scenario(sess)}
    rows = []
    for c in cases:
        s = c.scenario
        ops = make_operands(s, device="cuda", seed=1)
        pool = make_pool(ops, rotation_copies(ops, 60 * 2**20))

        def api(o, hint: bool):
            msl = o.scenario.max_seg_len if hint else None
            return lambda: lib.add_lora(o.y, o.x, o.a, o.b, o.seg_indptr, o.weight_indices, o.scenario.scale,
                                        max_seg_len=msl)  # fmt: skip

        for o in pool[:1]:
            api(o, True)()  # first call: compile, allocate the workspace
        torch.cuda.synchronize()
        g_hint = time_graph("", pool, binder=lambda o: api(o, True)).us
        g_plain = time_graph("", pool, binder=lambda o: api(o, False)).us
        # eager host time: the API against the prepared closures of the same kernels
        parts = [(best[k].kernel, best[k].config, sess.scenarios[k]) for k in c.parts]
        bare_ops = [make_operands(scn, device="cuda", seed=2) for _, _, scn in parts]
        bare = [bind(kid, o, cfg) for (kid, cfg, _), o in zip(parts, bare_ops, strict=True)]
        call = api(ops, True)

        def host_us(fn, n: int = 300) -> float:
            for _ in range(20):
                fn()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            t = (time.perf_counter() - t0) / n * 1e6
            torch.cuda.synchronize()
            return t

        def bare_all(fns: list = bare) -> None:
            for f in fns:
                f()

        api_host = statistics.median(host_us(call) for _ in range(3))
        bare_host = statistics.median(host_us(bare_all) for _ in range(3))
        base = min(c.baselines.values())
        row = {"h_in": s.h_in, "h_out": s.h_outs[0], "T": s.num_tokens, "workload": s.workload, "how": c.how,
               "session_us": c.ours_us, "api_graph_us": g_hint, "api_graph_no_hint_us": g_plain,
               "best_baseline": c.best_baseline, "best_baseline_us": base, "vs_best_api": base / g_hint,
               "vs_best_session": c.vs_best, "api_host_us": api_host, "bare_host_us": bare_host}  # fmt: skip
        rows.append(row)
        print(f"{s.h_in}->{s.h_outs[0]} T={s.num_tokens} {s.workload}: api {g_hint:.2f} us (no hint {g_plain:.2f}) "
              f"session {c.ours_us:.2f}; best baseline {c.best_baseline} {base:.2f} -> {base / g_hint:.2f}x; "
              f"host api {api_host:.1f} us vs bare {bare_host:.1f} us", flush=True)  # fmt: skip
        del pool, ops, bare_ops
    from statistics import geometric_mean

    report["summary"] = {
        "cases": len(rows),
        "vs_best_api_geomean": geometric_mean([r["vs_best_api"] for r in rows]),
        "vs_best_api_min": min(r["vs_best_api"] for r in rows),
        "vs_best_session_geomean": geometric_mean([r["vs_best_session"] for r in rows]),
        "api_over_session_geomean": geometric_mean([r["api_graph_us"] / r["session_us"] for r in rows]),
        "no_hint_over_hint_geomean": geometric_mean([r["api_graph_no_hint_us"] / r["api_graph_us"] for r in rows]),
        "host_overhead_us_median": statistics.median(r["api_host_us"] - r["bare_host_us"] for r in rows),
        "api_host_us_median": statistics.median(r["api_host_us"] for r in rows),
        "bare_host_us_median": statistics.median(r["bare_host_us"] for r in rows),
    }
    report["env"] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    report["rows"] = rows
    (out / "export_h200.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
