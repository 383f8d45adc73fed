"""torch baseline: Punica's ``gather+bmm`` in plain torch ops, in the input dtype, graph-capturable.

Each token's adapter weights are gathered (``A[w_t]``, ``B[w_t]``) and applied with one ``bmm``; the
token-to-adapter index is built once in bind. Semantics as ``dop_tui.scenario`` (fp32 accumulation
inside cuBLAS; the intermediate rounded to ``v``'s dtype). Written by us from Punica's benchmark
description; its role is the "no custom kernel" point of every timing table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def _token_adapter(weight_indices: torch.Tensor, seg_lens: Sequence[int]) -> torch.Tensor:
    lens = torch.tensor(list(seg_lens), device=weight_indices.device)
    return torch.repeat_interleave(weight_indices.long(), lens)


def _shrink(x: torch.Tensor, a: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
    return torch.bmm(a[tok], x.unsqueeze(-1)).squeeze(-1)  # [T, P*r]


def _expand(b: torch.Tensor, tok: torch.Tensor, v: torch.Tensor, h_outs: tuple[int, ...]) -> torch.Tensor:
    r = b.shape[2]
    bt = b[tok]  # [T, H, r]
    if len(h_outs) == 1:
        return torch.bmm(bt, v.to(bt.dtype).unsqueeze(-1)).squeeze(-1)
    parts, off = [], 0
    for p, h in enumerate(h_outs):
        vp = v[:, p * r : (p + 1) * r].to(bt.dtype).unsqueeze(-1)
        parts.append(torch.bmm(bt[:, off : off + h], vp).squeeze(-1))
        off += h
    return torch.cat(parts, dim=1)


def _store(out: torch.Tensor, delta: torch.Tensor, scale: float, accumulate: bool) -> None:
    if accumulate:
        out.add_(delta, alpha=scale)
    else:
        torch.mul(delta, scale, out=out) if delta.dtype == out.dtype else out.copy_(delta * scale)


def bind_shrink(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
) -> Callable[[], None]:  # fmt: skip
    """shrink/baseline/torch: ``v (+)= scale * bmm(A[w_t], x_t)``."""
    tok = _token_adapter(weight_indices, seg_lens)
    return lambda: _store(v, _shrink(x, a, tok), scale, accumulate)


def bind_expand(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
) -> Callable[[], None]:  # fmt: skip
    """expand/baseline/torch: ``y (+)= scale * bmm(B[w_t], v_t)`` per projection."""
    tok = _token_adapter(weight_indices, seg_lens)
    return lambda: _store(y, _expand(b, tok, v, h_outs), scale, accumulate)


def bind_fused(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, seg_lens: Sequence[int], h_outs: tuple[int, ...],
    scale: float, accumulate: bool, inter_dtype: torch.dtype,
) -> Callable[[], None]:  # fmt: skip
    """fused/baseline/torch: the shrink rounded to ``inter_dtype``, then the expand."""
    tok = _token_adapter(weight_indices, seg_lens)
    return lambda: _store(y, _expand(b, tok, _shrink(x, a, tok).to(inter_dtype), h_outs), scale, accumulate)
