"""What a tuning session achieved against the baselines, per scenario and for the whole LoRA delta.

  python bench/tune_report.py SESSION [--out FILE.md]

Per op: the best timed sketch of each scenario against each timed baseline (speedup = baseline time / best
time) and against the best baseline of the scenario, and how many scenarios are slower than some baseline.
The LoRA delta ``y += (x A^T) B^T`` per fused scenario (``session.summary.lora_delta``): ours is the faster of
the best fused kernel and the best shrink plus the best expand (two launches, timed apart: graph times add
up back to back); each baseline's is its own delta timed as one call (vLLM: zeroing, shrink, expand; SGLang:
shrink into a 16-bit buffer, expand). The headline is the geo-mean over the best baseline per case.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path
from statistics import geometric_mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dop_tui.session.store import load
from dop_tui.session.summary import best_per_scenario, delta_summary, session_delta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session")
    p.add_argument("--out", default="")
    args = p.parse_args()
    s = load(args.session)
    lines = [f"# {s.job.get('name', args.session)}", ""]
    lines.append(f"Session `{args.session}`: device {s.device}, {s.env.get('torch', '?')} / triton "
                 f"{s.env.get('triton', '?')}, {len(s.measurements)} measurements, {len(s.scenarios)} scenarios, "
                 f"ended: {s.finished or 'running or killed'}.")  # fmt: skip
    if "baselines" in s.env:
        lines.append(f"Baselines {s.env['baselines']}.")
    timings = Counter((m.scenario, m.kernel) for m in s.measurements if "/baseline/" in m.kernel and m.status == "ok")
    if timings and max(timings.values()) > 1:
        lines.append(f"Each baseline timed up to {max(timings.values())} times (a resume with `--retime-baselines` "
                     "times them again); the speedups use its fastest time.")  # fmt: skip
    if s.rounds:
        last = s.rounds[-1]
        lines.append(f"{len(s.rounds) - 1} search rounds; {last['budget_used']} search measurements "
                     f"(baselines not counted) in {last['elapsed_s']:.0f} s.")  # fmt: skip
    lines.append("")
    best = best_per_scenario(s)
    names = sorted({n for b in best for n in b.speedup})
    by_op: dict[str, list] = defaultdict(list)
    for b in best:
        by_op[s.scenarios[b.scenario].op].append(b)
    lines += ["## Per scenario (the op alone)", "",
              "| op | scenarios | vs best baseline: geomean | min | " + " | ".join(f"vs {n}" for n in names)
              + " | slower than a baseline | best floor fraction |",
              "|---|---|---|---|" + "---|" * len(names) + "---|---|"]  # fmt: skip
    for op, bs in sorted(by_op.items()):
        vs = [b.vs_best for b in bs if b.vs_best is not None]
        per = [geometric_mean(x) if (x := [b.speedup[n] for b in bs if n in b.speedup]) else None for n in names]
        slower = sum(1 for b in bs if b.vs_best is not None and b.vs_best < 1)
        floor = max((b.measurement.floor_fraction or 0) for b in bs)
        cells = " | ".join(f"{x:.2f}x" if x else "-" for x in per)
        lines.append(f"| {op} | {len(bs)} | **{geometric_mean(vs):.2f}x** | {min(vs):.2f}x | {cells} | {slower} | "
                     f"{floor:.2f} |")  # fmt: skip

    cases = sorted(session_delta(s), key=lambda c: (c.scenario.h_in, c.scenario.num_tokens, c.scenario.workload))
    summary = delta_summary(cases)
    if not cases:
        finish(lines, args.out)
        return
    lines += ["", "## The LoRA delta (shrink then expand, or fused)", ""]
    lines.append(f"{len(cases)} projection x layout x workload cases. Ours = min(best fused, best shrink + best "
                 f"expand); fused won {sum(c.how == 'fused' for c in cases)}. Each baseline's delta is its own, timed "
                 "as one call.")  # fmt: skip
    lines.append("")
    for name, r in summary.items():
        label = "**the best baseline per case**" if name == "best" else name
        lines.append(f"- against {label}: {'**' if name == 'best' else ''}{r.geomean:.2f}x"
                     f"{'**' if name == 'best' else ''} geo-mean (min {r.min:.2f}x, max {r.max:.2f}x)")  # fmt: skip
    # the delta's HBM floor (x read, y read and written, the adapters' weights read once) over its time
    floor_us = {m.scenario: m.floor_us for m in s.measurements if m.floor_us}
    fraction = {c.scenario.key: floor_us[c.scenario.key] / c.ours_us for c in cases if c.scenario.key in floor_us}
    if fraction:
        f = list(fraction.values())
        lines.append(f"- fraction of the HBM floor: {geometric_mean(f):.2f} geo-mean (min {min(f):.2f}, max "
                     f"{max(f):.2f})")  # fmt: skip
    names = [n for n in summary if n != "best"]
    head = "| h_in -> h_out | T | workload | ours us | how | floor | vs best (which) | "
    lines += [
        "",
        head + " | ".join(f"vs {n}" for n in names) + " |",
        "|---|---|---|---|---|---|---|" + "---|" * len(names),
    ]
    for c in cases:
        scn, sp = c.scenario, c.speedup
        cells = " | ".join(f"{sp[n]:.2f}x" if n in sp else "-" for n in names)
        vs = f"{c.vs_best:.2f}x ({c.best_baseline})" if c.vs_best else "-"
        floor = f"{fraction[scn.key]:.2f}" if scn.key in fraction else "-"
        lines.append(f"| {scn.h_in}->{'+'.join(map(str, scn.h_outs))} | {scn.num_tokens} | {scn.workload} | "
                     f"{c.ours_us:.2f} | {c.how} | {floor} | {vs} | {cells} |")  # fmt: skip
    finish(lines, args.out)


def finish(lines: list[str], out: str) -> None:
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        Path(out).write_text(text)


if __name__ == "__main__":
    main()
