"""torch baseline: Punica's ``gather+bmm`` in plain torch ops, in the input dtype, graph-capturable.

Each token's adapter weights are gathered (``A[w_t]``, ``B[w_t]``) and applied with one ``bmm``; the
token-to-adapter index is built once in bind. Semantics as ``dop_tui.scenario`` (fp32 accumulation
inside cuBLAS; the intermediate rounded to ``v``'s dtype). Written by us from Punica's benchmark
description; its role is the "no custom kernel" point of every timing table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from dop_tui.operands import Operands


def _token_adapter(ops: Operands) -> torch.Tensor:
    lens = torch.tensor(ops.scenario.seg_lens, device=ops.x.device)
    return torch.repeat_interleave(ops.weight_indices.long(), lens)


def _shrink(ops: Operands, tok: torch.Tensor) -> torch.Tensor:
    return torch.bmm(ops.a[tok], ops.x.unsqueeze(-1)).squeeze(-1)  # [T, P*r]


def _expand(ops: Operands, tok: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    s = ops.scenario
    r = s.rank
    bt = ops.b[tok]  # [T, H, r]
    if s.num_proj == 1:
        return torch.bmm(bt, v.to(bt.dtype).unsqueeze(-1)).squeeze(-1)
    parts, off = [], 0
    for p, h in enumerate(s.h_outs):
        vp = v[:, p * r : (p + 1) * r].to(bt.dtype).unsqueeze(-1)
        parts.append(torch.bmm(bt[:, off : off + h], vp).squeeze(-1))
        off += h
    return torch.cat(parts, dim=1)


def _store(out: torch.Tensor, delta: torch.Tensor, scale: float, accumulate: bool) -> None:
    if accumulate:
        out.add_(delta, alpha=scale)
    else:
        torch.mul(delta, scale, out=out) if delta.dtype == out.dtype else out.copy_(delta * scale)


def bind_shrink(ops: Operands, config: Mapping[str, int]) -> Callable[[], None]:
    tok, s = _token_adapter(ops), ops.scenario
    return lambda: _store(ops.v, _shrink(ops, tok), s.scale, s.accumulate)


def bind_expand(ops: Operands, config: Mapping[str, int]) -> Callable[[], None]:
    tok, s = _token_adapter(ops), ops.scenario
    return lambda: _store(ops.y, _expand(ops, tok, ops.v), s.scale, s.accumulate)


def bind_fused(ops: Operands, config: Mapping[str, int]) -> Callable[[], None]:
    tok, s = _token_adapter(ops), ops.scenario
    return lambda: _store(ops.y, _expand(ops, tok, _shrink(ops, tok).to(ops.v.dtype)), s.scale, s.accumulate)
