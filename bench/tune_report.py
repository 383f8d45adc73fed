"""What a tuning session achieved against the baselines, per scenario and for the whole LoRA delta.

  python bench/tune_report.py SESSION [--out FILE.md]

Per scenario: the best timed sketch against each timed baseline (speedup = baseline time / best time), and
whether it is ever slower. Per projection, batch layout and workload, the LoRA delta ``y += (x A^T) B^T``:
ours is the faster of the best fused kernel and the best shrink plus the best expand (two launches, timed
apart: graph times add up back to back); vLLM's default is its own shrink + expand path, timed as one call
(``fused/baseline/vllm``: zeroing, shrink, expand), and Punica's likewise. Geometric means over the deltas.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from statistics import geometric_mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dop_tui.session.store import load
from dop_tui.session.summary import best_per_scenario


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
    if s.rounds:
        last = s.rounds[-1]
        lines.append(f"{len(s.rounds) - 1} search rounds; {last['budget_used']} search measurements "
                     f"(baselines not counted) in {last['elapsed_s']:.0f} s.")  # fmt: skip
    lines.append("")
    best = {b.scenario: b for b in best_per_scenario(s)}
    by_op: dict[str, list] = defaultdict(list)
    for key, b in best.items():
        by_op[s.scenarios[key].op].append(b)
    lines += ["## Per scenario", "", "| op | scenarios | vs vllm: geomean | min | vs punica: geomean | min | slower "
              "than a baseline | best floor fraction |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for op, bs in sorted(by_op.items()):
        v = [b.speedup["vllm"] for b in bs if "vllm" in b.speedup]
        pu = [b.speedup["punica"] for b in bs if "punica" in b.speedup]
        slower = sum(1 for b in bs if any(r < 1 for n, r in b.speedup.items() if n in ("vllm", "punica")))
        floor = max((b.measurement.floor_fraction or 0) for b in bs)
        vs = f"{geometric_mean(v):.2f}x | {min(v):.2f}x | {geometric_mean(pu):.2f}x | {min(pu):.2f}x"
        lines.append(f"| {op} | {len(bs)} | {vs} | {slower} | {floor:.2f} |")

    # the LoRA delta per projection: match shrink, expand and fused scenarios by layout and shapes
    index = {}
    for key, scn in s.scenarios.items():
        index[(scn.op, scn.h_in if scn.op != "expand" else None, scn.h_outs if scn.op != "shrink" else None,
               scn.seg_lens, scn.workload)] = key  # fmt: skip
    rows = []
    for key, scn in s.scenarios.items():
        if scn.op != "fused" or key not in best:
            continue
        shrink = index.get(("shrink", scn.h_in, None, scn.seg_lens, scn.workload))
        expand = index.get(("expand", None, scn.h_outs, scn.seg_lens, scn.workload))
        fused = best[key].measurement.us
        ours = fused
        if shrink in best and expand in best:
            ours = min(ours, best[shrink].measurement.us + best[expand].measurement.us)
        sp = best[key].speedup  # baseline time / best fused time
        if "vllm" in sp and "punica" in sp:
            rows.append((scn, ours, sp["vllm"] * fused / ours, sp["punica"] * fused / ours, fused))
    lines += ["", "## The LoRA delta (shrink then expand, or fused)", ""]
    lines.append(
        f"{len(rows)} projection x layout x workload cases. Ours = min(best fused, best shrink + best "
        "expand). vLLM's default = its zero + shrink + expand, timed as one call; Punica's the same way."
    )
    lines.append("")
    lines.append(f"- geomean speedup over vLLM's default: **{geometric_mean([r[2] for r in rows]):.2f}x** "
                 f"(min {min(r[2] for r in rows):.2f}x, max {max(r[2] for r in rows):.2f}x)")  # fmt: skip
    lines.append(f"- geomean speedup over Punica's: **{geometric_mean([r[3] for r in rows]):.2f}x** "
                 f"(min {min(r[3] for r in rows):.2f}x)")  # fmt: skip
    lines.append(f"- cases where the fused kernel beat shrink + expand: {sum(1 for r in rows if r[1] == r[4])} "
                 f"of {len(rows)}")  # fmt: skip
    lines += ["", "| h_in -> h_out | T | workload | ours us | vs vllm | vs punica |", "|---|---|---|---|---|---|"]
    for scn, ours, rv, rp, _ in sorted(rows, key=lambda r: (r[0].h_in, r[0].num_tokens, r[0].workload)):
        lines.append(f"| {scn.h_in}->{scn.h_outs[0]} | {scn.num_tokens} | {scn.workload} | {ours:.2f} | {rv:.2f}x | "
                     f"{rp:.2f}x |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
