"""Resolve a sketch or baseline id to its kernel launcher, and adapt a scenario's operands to it.

The launchers in ``kernels/`` take tensors and integers, one signature per op (as the open SGMV APIs do):

- shrink ``(x, a, v, seg_indptr, weight_indices, *, ...)``;
- expand ``(v, b, y, seg_indptr, weight_indices, proj_offsets, *, h_outs, ...)``;
- fused ``(x, a, b, y, seg_indptr, weight_indices, proj_offsets, *, h_outs, inter_dtype, ...)``;

plus ``h_outs`` for shrink too (the slices), ``scale`` and ``accumulate``; a sketch also takes ``max_seg_len``
and its ``config``, a baseline the host copy of the segment lengths ``seg_lens``, from which it builds its
system's own metadata. Each returns a closure that launches the kernel(s). Modules import lazily: triton
loads on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dop_tui.operands import Operands
from dop_tui.space.sketches import BASELINE_BY_ID, SKETCH_BY_ID

Launcher = Callable[..., Callable[[], None]]


def resolve(kernel_id: str) -> Launcher:
    """The launcher of a sketch id (``op/family/name``) or a baseline id (``op/baseline/name``)."""
    spec = SKETCH_BY_ID.get(kernel_id) or BASELINE_BY_ID.get(kernel_id)
    if spec is None:
        raise ValueError(f"unknown kernel {kernel_id!r}")
    return spec.entry.resolve()


def launch_args(kernel_id: str, ops: Operands, config: Mapping[str, int] | None = None) -> tuple[tuple, dict[str, Any]]:
    """The positional tensors and keyword values ``kernel_id``'s launcher takes for ``ops``."""
    s = ops.scenario
    seg = (ops.seg_indptr, ops.weight_indices)
    kw: dict[str, Any] = {"scale": s.scale, "accumulate": s.accumulate}
    if s.op == "shrink":
        tensors: tuple = (ops.x, ops.a, ops.v, *seg)
        kw["h_outs"] = s.h_outs
    elif s.op == "expand":
        tensors = (ops.v, ops.b, ops.y, *seg, ops.proj_offsets)
        kw["h_outs"] = s.h_outs
    else:
        tensors = (ops.x, ops.a, ops.b, ops.y, *seg, ops.proj_offsets)
        kw.update(h_outs=s.h_outs, inter_dtype=ops.v.dtype)
    if kernel_id in BASELINE_BY_ID:
        kw["seg_lens"] = s.seg_lens
    else:
        kw.update(max_seg_len=s.max_seg_len, config=dict(config or {}))
    return tensors, kw


def bind(kernel_id: str, ops: Operands, config: Mapping[str, int] | None = None) -> Callable[[], None]:
    """A closure launching ``kernel_id`` (with ``config``) on ``ops``."""
    tensors, kw = launch_args(kernel_id, ops, config)
    return resolve(kernel_id)(*tensors, **kw)
