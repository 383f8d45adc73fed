"""torch references of the SGMV operators, and the relative-error check used by every correctness gate.

Two references with the same semantics (``scenario.py``): a per-segment loop (Punica's ``lora_loop``) and a
per-token gather + batched matmul (Punica's ``gather+bmm``). Both compute in a chosen dtype; float64 is the
ground truth the kernels are compared with.
"""

from __future__ import annotations

import torch

from dop_tui.operands import Operands

# ||out - ref|| / ||ref|| must stay below this, by input dtype (fp32 dots run as tf32 on the GPU).
TOLERANCE = {"fp32": 5e-3, "fp16": 1e-2, "bf16": 3e-2}


def _round_inter(ops: Operands, v: torch.Tensor) -> torch.Tensor:
    """Round an intermediate the way the kernels store it (fp32 or the input dtype)."""
    return v.to(ops.v.dtype).to(v.dtype)


def reference_loop(ops: Operands, compute: torch.dtype = torch.float64) -> torch.Tensor:
    """Expected output of ``ops.scenario`` by a Python loop over segments and projections."""
    s = ops.scenario
    r = s.rank
    x, a, b = ops.x.to(compute), ops.a.to(compute), ops.b.to(compute)
    v0, y0 = ops.v.to(compute), ops.y.to(compute)
    offs = ops.proj_offsets.tolist()
    out = (v0 if s.op == "shrink" else y0).clone()
    if not s.accumulate:
        out.zero_()
    bounds = s.seg_indptr
    for i, w in enumerate(s.seg_adapters):
        lo, hi = bounds[i], bounds[i + 1]
        if s.op == "shrink":
            out[lo:hi] += s.scale * (x[lo:hi] @ a[w].T)
            continue
        for p in range(s.num_proj):
            cols = slice(offs[p], offs[p + 1])
            if s.op == "expand":
                vin = v0[lo:hi, p * r : (p + 1) * r]
            else:
                vin = _round_inter(ops, x[lo:hi] @ a[w, p * r : (p + 1) * r].T)
            out[lo:hi, cols] += s.scale * (vin @ b[w, cols].T)
    return out


def reference_gather_bmm(ops: Operands, compute: torch.dtype = torch.float64) -> torch.Tensor:
    """Same result as ``reference_loop`` by gathering each token's adapter weights and one bmm."""
    s = ops.scenario
    r, P = s.rank, s.num_proj
    tok_adapter = torch.repeat_interleave(ops.weight_indices.long().cpu(), torch.tensor(s.seg_lens)).to(ops.x.device)
    x, v0, y0 = ops.x.to(compute), ops.v.to(compute), ops.y.to(compute)
    base = v0 if s.op == "shrink" else y0
    if s.op in ("shrink", "fused"):
        a_tok = ops.a.to(compute)[tok_adapter]  # [T, P*r, h_in]
        v = torch.bmm(a_tok, x.unsqueeze(-1)).squeeze(-1)  # [T, P*r]
        if s.op == "shrink":
            delta = s.scale * v
            return base + delta if s.accumulate else delta
        v = _round_inter(ops, v)
    else:
        v = v0
    b_tok = ops.b.to(compute)[tok_adapter]  # [T, H, r]
    offs = ops.proj_offsets.tolist()
    parts = []
    for p in range(P):
        bp = b_tok[:, offs[p] : offs[p + 1]]  # [T, h_p, r]
        parts.append(torch.bmm(bp, v[:, p * r : (p + 1) * r].unsqueeze(-1)).squeeze(-1))
    delta = s.scale * torch.cat(parts, dim=1)
    return base + delta if s.accumulate else delta


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """``||out - ref||_F / ||ref||_F`` in float64 on ``out``'s device (a GPU check never copies its output to the
    host: at prefill sizes that copy took seconds); NaN or Inf anywhere gives ``inf``."""
    o, r = out.double(), ref.to(device=out.device, dtype=torch.float64)
    if not torch.isfinite(o).all():
        return float("inf")
    denom = torch.linalg.vector_norm(r).item()
    num = torch.linalg.vector_norm(o - r).item()
    return num / denom if denom > 0 else num
