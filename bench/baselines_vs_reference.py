"""Our baselines beside the real open kernels' H200 times (the yardstick table), same timing method.

  python bench/baselines_vs_reference.py --out DIR [--cases N]

For each of the 51 rank-16 decode cases of ``bench/reference/h200_open_kernels.json`` (from
``shared/reference/h200-open-kernels.md``): a CUDA graph of max(100, P) back-to-back calls cycling through P
copies of every input (P = ceil(180 MB / bytes of one copy), at most 1000), replayed 5 times, median
microseconds per call (``timing.time_graph``); inputs x ~ N(0,1), A ~ N(0, 1/h_in), B ~ N(0, 1/r), y ~ N(0,1),
segment s uses adapter s. Timed per case:

- ``vllm`` delta as the reference timed vLLM: an explicit zeroing of an fp32 [1, T, r] tensor, then the
  baseline's ``lora_shrink`` (its own zeroing launch and the kernel) and ``lora_expand``; and the baseline as
  sessions record it (``fused/baseline/vllm``: vLLM's ``add_lora_linear``, the three launches);
- ``vllm`` shrink alone (the op: zeroing + kernel; and the kernel alone) and expand alone;
- ``vllm-tuned`` delta, the same two ways; ``sglang`` delta (two launches, as SGLang runs it).

Each baseline is first checked against the float64 reference on the GPU. Prints, per case, ours / reference,
and a summary per column (geo-mean ratio, cases within the tolerance: 10%, SGLang 15%). Writes DIR/
baselines_vs_reference.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from statistics import geometric_mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
L2_BYTES = 60 * 1024 * 1024

# column -> (reference key, tolerance)
COLUMNS = {
    "vllm_delta": ("vllm_delta", 0.10),
    "vllm_delta_3": ("vllm_delta", 0.10),
    "vllm_shrink": ("vllm_shrink", 0.10),
    "vllm_shrink_kernel": ("vllm_shrink", 0.10),
    "vllm_expand": ("vllm_expand", 0.10),
    "vllm_tuned_delta": ("vllm_tuned_delta", 0.10),
    "vllm_tuned_delta_3": ("vllm_tuned_delta", 0.10),
    "sglang_delta": ("sglang_delta", 0.15),
}
DOC = {
    "vllm_delta": "vLLM default delta, the reference's sequence (extra zero + lora_shrink + lora_expand)",
    "vllm_delta_3": "vLLM default delta as sessions record it (add_lora_linear: zero, shrink, expand)",
    "vllm_shrink": "vLLM lora_shrink alone (its zeroing launch + the kernel)",
    "vllm_shrink_kernel": "vLLM shrink kernel alone (no zeroing launch)",
    "vllm_expand": "vLLM lora_expand alone (add_inputs)",
    "vllm_tuned_delta": "vLLM tuned delta, the reference's sequence",
    "vllm_tuned_delta_3": "vLLM tuned delta as sessions record it",
    "sglang_delta": "SGLang csgmv delta (shrink into bf16, expand)",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cases", type=int, default=0, help="only the first N cases (0: all)")
    args = p.parse_args()
    import torch

    from dop_tui.measure.check import check_kernel
    from dop_tui.measure.launch import bind
    from dop_tui.measure.timing import make_pool, rotation_copies, time_graph
    from dop_tui.operands import make_operands
    from dop_tui.scenario import make_scenario
    from dop_tui.workloads import decode_lens

    cases = json.loads((ROOT / "bench" / "reference" / "h200_open_kernels.json").read_text())["cases"]
    cases = cases[: args.cases] if args.cases else cases
    args.out.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    t0 = time.monotonic()

    def timed(kernel_id: str, scn, extra_zero: bool = False) -> float:
        ops = make_operands(scn, device="cuda", seed=0)
        pool = make_pool(ops, rotation_copies(ops, L2_BYTES, 3.0, max_copies=1000))
        binder = None
        if extra_zero:

            def binder(o):
                z = torch.empty((1, o.scenario.num_tokens, o.scenario.rank), dtype=torch.float32, device="cuda")
                run = bind(kernel_id, o)

                def both() -> None:
                    z.zero_()
                    run()

                return both

        t = time_graph(kernel_id, pool, calls=100, replays=5, graph_ms=200.0, binder=binder)
        del pool, ops
        return t.us

    for i, c in enumerate(cases):
        shape = (c["h_in"], c["h_out"], c["rank"], "bf16", decode_lens(c["workload"], c["T"]))
        fused, shrink, expand = (
            make_scenario(op, *shape, workload=c["workload"]) for op in ("fused", "shrink", "expand")
        )
        # accumulating, the shrink op makes no zeroing launch: the kernel alone
        shrink_acc = make_scenario("shrink", *shape, workload=c["workload"], accumulate=True)
        for kid, scn in (("fused/baseline/vllm", fused), ("fused/baseline/vllm-tuned", fused),
                         ("fused/baseline/sglang", fused), ("shrink/baseline/vllm", shrink),
                         ("expand/baseline/vllm", expand)):  # fmt: skip
            res = check_kernel(kid, scn, device="cuda", seed=i + 1)
            if not res.ok:
                failures.append(f"{kid} {scn.describe()}: {res.error or res.rel_error}")
        ours = {
            "vllm_delta": timed("fused/baseline/vllm", fused, extra_zero=True),
            "vllm_delta_3": timed("fused/baseline/vllm", fused),
            "vllm_shrink": timed("shrink/baseline/vllm", shrink),
            "vllm_shrink_kernel": timed("shrink/baseline/vllm", shrink_acc),
            "vllm_expand": timed("expand/baseline/vllm", expand),
            "vllm_tuned_delta": timed("fused/baseline/vllm-tuned", fused, extra_zero=True),
            "vllm_tuned_delta_3": timed("fused/baseline/vllm-tuned", fused),
            "sglang_delta": timed("fused/baseline/sglang", fused),
        }
        ratio = {k: ours[k] / c[ref] for k, (ref, _) in COLUMNS.items()}
        rows.append({"case": c, "ours_us": ours, "ratio": ratio})
        print(f"[{i + 1}/{len(cases)}] {c['h_in']}->{c['h_out']} T={c['T']} {c['workload']}: "
              + " ".join(f"{k} {ours[k]:.2f}/{c[COLUMNS[k][0]]:.2f}" for k in ours), flush=True)  # fmt: skip

    summary = {}
    for k, (_, tol) in COLUMNS.items():
        r = [row["ratio"][k] for row in rows]
        summary[k] = {"geomean": geometric_mean(r), "min": min(r), "max": max(r), "tolerance": tol,
                      "within": sum(1 for x in r if abs(x - 1) <= tol), "cases": len(r)}  # fmt: skip
    env = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    import triton

    env["triton"] = triton.__version__
    (args.out / "baselines_vs_reference.json").write_text(
        json.dumps(
            {
                "env": env,
                "summary": summary,
                "rows": rows,
                "check_failures": failures,
                "seconds": time.monotonic() - t0,
            },
            indent=1,
        )
    )
    lines = [f"# Baselines beside the real kernels ({env['device']}, torch {env['torch']}, triton {env['triton']})",
             "", "ours / reference, per column: geo-mean, min, max, cases within tolerance", "",
             "| column | what | geo-mean | min | max | within |", "|---|---|---|---|---|---|"]  # fmt: skip
    for k, s in summary.items():
        lines.append(f"| {k} | {DOC[k]} | {s['geomean']:.3f} | {s['min']:.3f} | {s['max']:.3f} | "
                     f"{s['within']}/{s['cases']} (±{s['tolerance']:.0%}) |")  # fmt: skip
    lines += ["", "| h_in->h_out | T | workload | " + " | ".join(COLUMNS) + " |",
              "|---|---|---|" + "---|" * len(COLUMNS)]  # fmt: skip
    for row in rows:
        c = row["case"]
        cells = " | ".join(f"{row['ours_us'][k]:.2f}/{c[ref]:.2f} ({row['ratio'][k]:.2f})"
                           for k, (ref, _) in COLUMNS.items())  # fmt: skip
        lines.append(f"| {c['h_in']}->{c['h_out']} | {c['T']} | {c['workload']} | {cells} |")
    if failures:
        lines += ["", "Check failures:", *[f"- {f}" for f in failures]]
    text = "\n".join(lines) + "\n"
    (args.out / "baselines_vs_reference.md").write_text(text)
    print("\n".join(lines[: 6 + len(summary)]))
    print(f"check failures: {len(failures)}; {time.monotonic() - t0:.0f} s")
    sys.exit(1 if failures or not math.isfinite(sum(s["geomean"] for s in summary.values())) else 0)


if __name__ == "__main__":
    main()
