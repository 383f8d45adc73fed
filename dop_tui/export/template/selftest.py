"""Check every exported kernel, and the API, against a float64 torch reference.

  python -m <package>.selftest [--device cuda|cpu]

On a CPU (or ``--device cpu``) the kernels run in the Triton interpreter (``TRITON_INTERPRET=1``, set before
Triton loads); small shapes keep that fast. Each distinct (kernel, config) of the dispatch table and the safe
kernels run on random operands of the entry's rank, projection count and dtype, with segments of 3, 1 and 2
tokens; the output is poisoned (NaN) where the kernel overwrites. Exit code 0 when every check passes.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

TOLERANCE = {torch.float32: 5e-3, torch.float16: 1e-2, torch.bfloat16: 3e-2}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
LENS = (3, 1, 2)


def _operands(rank: int, P: int, dtype: torch.dtype, device: str, h_in: int = 96, h_out: int = 80) -> dict:
    g = torch.Generator(device="cpu").manual_seed(rank * 31 + P)
    T, L = sum(LENS), len(LENS)

    def rnd(*shape: int, std: float) -> torch.Tensor:
        return (torch.randn(*shape, generator=g) * std).to(dtype).to(device)

    indptr = [0]
    for n in LENS:
        indptr.append(indptr[-1] + n)
    h_outs = (h_out,) * P
    return {
        "x": rnd(T, h_in, std=1.0), "A": rnd(L, P * rank, h_in, std=h_in**-0.5),
        "B": rnd(L, P * h_out, rank, std=rank**-0.5), "y": rnd(T, P * h_out, std=1.0),
        "seg": torch.tensor(indptr, dtype=torch.int32, device=device),
        "w": torch.tensor([2, 0, 1], dtype=torch.int32, device=device), "h_outs": h_outs, "rank": rank,
        "offs": torch.tensor([i * h_out for i in range(P + 1)], dtype=torch.int32, device=device),
    }  # fmt: skip


def _ref_shrink(o: dict, scale: float) -> torch.Tensor:
    x, A, seg, w = o["x"].double(), o["A"].double(), o["seg"].tolist(), o["w"].tolist()
    v = torch.zeros(x.shape[0], A.shape[1], dtype=torch.float64, device=x.device)
    for s, a in enumerate(w):
        v[seg[s] : seg[s + 1]] = scale * x[seg[s] : seg[s + 1]] @ A[a].T
    return v


def _ref_expand(o: dict, v: torch.Tensor, scale: float) -> torch.Tensor:
    B, seg, w, r, h = o["B"].double(), o["seg"].tolist(), o["w"].tolist(), o["rank"], o["h_outs"][0]
    y = o["y"].double().clone()
    for s, a in enumerate(w):
        rows = slice(seg[s], seg[s + 1])
        for p in range(len(o["h_outs"])):
            y[rows, p * h : (p + 1) * h] += scale * v.double()[rows, p * r : (p + 1) * r] @ B[a, p * h : (p + 1) * h].T
    return y


def _err(out: torch.Tensor, ref: torch.Tensor) -> float:
    out = out.double()
    if not torch.isfinite(out).all():
        return float("inf")
    return ((out - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def check_kernel(op: str, module: str, launcher: str, config: dict, rank: int, P: int, dtype: torch.dtype,
                 device: str) -> float:  # fmt: skip
    """Relative error of one kernel against the reference (inf if it wrote NaN or raised)."""
    from .api import _launcher

    o = _operands(rank, P, dtype, device)
    fn = _launcher(module, launcher)
    seg = (o["seg"], o["w"])
    scale = 0.5
    if op == "shrink":
        v = torch.full((o["x"].shape[0], P * rank), float("nan"), dtype=torch.float32, device=device)
        fn(o["x"], o["A"], v, *seg, max_seg_len=max(LENS), scale=scale, accumulate=False, config=config)()
        return _err(v, _ref_shrink(o, scale))
    y = o["y"].clone()
    if op == "expand":
        v = _ref_shrink(o, 1.0).float()
        fn(v, o["B"], y, *seg, o["offs"], h_outs=o["h_outs"], max_seg_len=max(LENS), scale=scale, accumulate=True,
           config=config)()  # fmt: skip
        return _err(y, _ref_expand(o, v, scale))
    fn(o["x"], o["A"], o["B"], y, *seg, o["offs"], h_outs=o["h_outs"], max_seg_len=max(LENS), scale=scale,
       accumulate=True, inter_dtype=torch.float32, config=config)()  # fmt: skip
    return _err(y, _ref_expand(o, _ref_shrink(o, 1.0), scale))


def check_api(dtype: torch.dtype, device: str) -> float:
    from .api import add_lora

    o = _operands(16, 2, dtype, device)
    y = o["y"].clone()
    add_lora(y, o["x"], o["A"], o["B"], o["seg"], o["w"], 0.5, h_outs=o["h_outs"])
    return _err(y, _ref_expand(o, _ref_shrink(o, 1.0), 0.5))


def kernels_to_check(table: dict) -> list[tuple]:
    """Distinct (op, module, launcher, config, rank, projections, dtype) of the table and the safe kernels."""
    seen: dict[tuple, None] = {}
    for op in ("shrink", "expand"):
        for e in table["entries"][op]:
            P = len(e["h_outs"]) if op == "expand" else e["projections"]
            seen.setdefault((op, e["module"], e["launcher"], tuple(sorted(e["config"].items())), e["rank"], P,
                             e["dtype"]))  # fmt: skip
    for e in table["entries"]["lora"]:
        for k in e["kernels"]:
            seen.setdefault((k["op"], k["module"], k["launcher"], tuple(sorted(k["config"].items())), e["rank"],
                             len(e["h_outs"]), e["dtype"]))  # fmt: skip
    for op, s in table["safe"].items():
        seen.setdefault((op, s["module"], s["launcher"], tuple(sorted(s["config"].items())), 16, 1, "bf16"))
    return list(seen)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="check every exported kernel against a torch reference")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if args.device == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"  # before triton loads: the kernels run in the interpreter
    if "triton" in sys.modules and args.device == "cpu" and not os.environ.get("TRITON_INTERPRET"):
        raise SystemExit("triton was imported before the interpreter could be switched on")
    from .dispatch import table

    failures = 0
    for op, module, launcher, cfg, rank, P, dtype in kernels_to_check(table()):
        dt = DTYPES[dtype]
        try:
            err = check_kernel(op, module, launcher, dict(cfg), rank, P, dt, args.device)
        except Exception as exc:  # a kernel that raises is a failure to report, not a crash
            err, note = float("inf"), f" ({type(exc).__name__}: {exc})"
        else:
            note = ""
        ok = err <= TOLERANCE[dt]
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {op:6} {module}.{launcher} r={rank} P={P} {dtype} {dict(cfg)}: "
              f"rel. error {err:.2e}{note}")  # fmt: skip
    for dt in (torch.bfloat16, torch.float32):
        err = check_api(dt, args.device)
        ok = err <= TOLERANCE[dt]
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} add_lora (API, 2 projections) {dt}: rel. error {err:.2e}")
    print(f"{'all passed' if not failures else f'{failures} failed'} on {args.device}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
