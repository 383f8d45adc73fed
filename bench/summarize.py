"""Markdown tables from the JSON summaries of ``bench/h200_decode.py time``.

python bench/summarize.py bench/results/time_summary_*.json > bench/results/decode_table.md
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

BASELINES = ("vllm", "punica", "torch")


def _geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main(paths: list[str]) -> None:
    rows = [r for p in paths for r in json.loads(Path(p).read_text())]
    print("Microseconds per call on the H200: CUDA graph of max(100, copies) calls over rotated copies > 3x L2,")
    print("median of 7 replays (do_bench with L2 flush in brackets). 'best' is the fastest sketch config found;")
    print("'floor' is bytes / 4.3 TB/s. Speedups are baseline time / best time.\n")
    for op in ("shrink", "expand", "fused"):
        order = {"distinct": 0, "uniform": 1, "skewed": 2, "identical": 3}
        ops_rows = sorted(
            (r for r in rows if r["op"] == op),
            key=lambda r: (r["h_in"], r["h_out"], r["rank"], r["batch"], order.get(r["workload"], 9)),
        )
        if not ops_rows:
            continue
        print(f"## {op}\n")
        print(
            "| h_in->h_out | r | bs | workload | floor | best sketch | best | vllm | punica | torch | "
            "x vllm | x punica | floor/best |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        speed = {b: [] for b in BASELINES}
        for r in ops_rows:
            b = r["best"]
            sk = {k: v for k, v in b.items() if "/baseline/" not in k}
            if not sk:
                continue
            best_id, best = min(sk.items(), key=lambda kv: kv[1]["us"])
            base = {name: b.get(f"{op}/baseline/{name}") for name in BASELINES}
            for name, v in base.items():
                if v:
                    speed[name].append(v["us"] / best["us"])

            def cell(v: dict | None) -> str:
                return f"{v['us']:.2f} ({v['do_bench_us']:.1f})" if v else "-"

            x = {n: (f"{base[n]['us'] / best['us']:.2f}" if base[n] else "-") for n in BASELINES}
            print(
                f"| {r['h_in']}->{r['h_out']} | {r['rank']} | {r['batch']} | {r['workload']} | {r['floor_us']:.2f} | "
                f"{best_id.split('/', 1)[1]} | {cell(best)} | {cell(base['vllm'])} | {cell(base['punica'])} | "
                f"{cell(base['torch'])} | {x['vllm']} | {x['punica']} | {r['floor_us'] / best['us']:.2f} |"
            )
        print()
        print(
            f"{op}: {len(ops_rows)} scenarios; geometric-mean speedup of the best sketch over "
            + ", ".join(f"{n} {_geomean(speed[n]):.2f}x (min {min(speed[n]):.2f})" for n in BASELINES if speed[n])
            + "\n"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
