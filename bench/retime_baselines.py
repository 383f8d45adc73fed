"""Re-time every baseline of recorded sessions on this GPU, and write the sessions with the new baselines.

  python bench/retime_baselines.py --out DIR [--reuse FILE] [--deadline S] SESSION [SESSION ...]

The scenarios of all the given sessions are measured once each through ``GpuRunner`` (checked against the
float64 reference, then timed with the CUDA graph over rotated inputs; do_bench's launch-inclusive figure as a
GPU job takes it), with every baseline of ``space.BASELINES`` for the scenario's op. Writes
``DIR/h200-baselines.json.gz`` (all the new baseline measurements) and, once every scenario of a session is
measured, ``DIR/<session name>`` with its baseline measurements replaced by the new ones (the sketch
measurements untouched; ``env["baselines"]`` says when and where the baselines were re-timed). ``--reuse``
takes the baselines of an earlier run's ``h200-baselines.json.gz`` and measures only what it lacks, so a long
re-timing can be split over several calls (``--deadline`` stops between two scenarios).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dop_tui.measure.gpu_runner import GpuRunner
from dop_tui.session.store import Session, load, save
from dop_tui.space import BASELINES


def is_baseline(kernel: str) -> bool:
    return "/baseline/" in kernel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sessions", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--reuse", type=Path, default=None)
    p.add_argument("--deadline", type=float, default=0.0, help="seconds; stop between scenarios after this")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sessions = {path.name: load(path) for path in args.sessions}
    done = load(args.reuse) if args.reuse else Session()
    scenarios = {k: s for sess in sessions.values() for k, s in sess.scenarios.items()}
    todo = [s for k, s in scenarios.items() if k not in done.scenarios]
    print(f"{len(scenarios)} scenarios in {len(sessions)} sessions; {len(todo)} to measure", flush=True)
    t0 = time.monotonic()
    with GpuRunner(do_bench="baselines") as runner:
        for i, scn in enumerate(todo):
            if args.deadline and time.monotonic() - t0 > args.deadline:
                print(f"deadline: stopped after {i} of {len(todo)}", flush=True)
                break
            reqs = [(b.id, {}) for b in BASELINES if b.op == scn.op]
            if i + 1 < len(todo):
                runner.prefetch(todo[i + 1], [(b.id, {}) for b in BASELINES if b.op == todo[i + 1].op])
            res = runner.measure(scn, reqs)
            done.add(scn, res)
            if not done.device and res and res[0].env:
                done.device = res[0].env.get("device", "")
                done.env = dict(res[0].env)
            cells = " ".join(f"{m.kernel.rsplit('/', 1)[1]} {m.us:.2f}" if m.us else f"{m.kernel} {m.status}"
                             for m in res)  # fmt: skip
            print(f"[{i + 1}/{len(todo)}] {scn.describe()}: {cells}", flush=True)
    done.job = {"name": "baselines re-timed", "source": [str(p) for p in args.sessions]}
    done.finished = "done" if all(k in done.scenarios for k in scenarios) else ""
    save(done, args.out / "h200-baselines.json.gz")
    bad = [m for m in done.measurements if m.status != "ok"]
    print(f"{len(done.measurements)} baseline measurements ({len(bad)} not ok) in {time.monotonic() - t0:.0f} s")
    for m in bad:
        print(f"  {m.status}: {m.kernel} {m.scenario} {m.message[:200]}")
    when = f"re-timed by bench/retime_baselines.py on {done.device} ({time.strftime('%Y-%m-%d')})"
    for name, sess in sessions.items():
        if not all(k in done.scenarios for k in sess.scenarios):
            print(f"{name}: not every scenario measured yet; not written")
            continue
        sess.measurements = [m for m in sess.measurements if not is_baseline(m.kernel)]
        sess.measurements += [m for m in done.measurements if m.scenario in sess.scenarios]
        sess.env = {**sess.env, "baselines": when}
        save(sess, args.out / name)
        print(f"{name}: written with {sum(is_baseline(m.kernel) for m in sess.measurements)} baselines")


if __name__ == "__main__":
    main()
