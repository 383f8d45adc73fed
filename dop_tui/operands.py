"""Tensors of one SGMV call, with the input checks every kernel relies on.

Layout (see ``scenario.py`` for the maths): ``x[T, h_in]``, ``a[L, P*r, h_in]``, ``b[L, sum h_p, r]``,
``v[T, P*r]`` (dtype fp32 or the input dtype), ``y[T, sum h_p]``, ``seg_indptr[S+1]`` and
``weight_indices[S]`` (int32, on the tensors' device). Host copies of the segment layout are kept so
launchers can size grids without a device sync.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dop_tui.scenario import Scenario

TORCH_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def torch_dtype(name: str) -> torch.dtype:
    if name not in TORCH_DTYPES:
        raise ValueError(f"unsupported dtype {name!r}; expected one of {', '.join(TORCH_DTYPES)}")
    return TORCH_DTYPES[name]


def inter_torch_dtype(scn: Scenario) -> torch.dtype:
    return torch.float32 if scn.inter_dtype == "fp32" else torch_dtype(scn.dtype)


def check_segments(seg_indptr: list[int], weight_indices: list[int], num_tokens: int, num_adapters: int) -> None:
    """Raise ValueError unless ``seg_indptr`` runs 0 -> T strictly increasing and every index is in range."""
    if len(seg_indptr) < 2:
        raise ValueError("empty batch: seg_indptr needs at least two entries")
    if seg_indptr[0] != 0 or seg_indptr[-1] != num_tokens:
        raise ValueError(
            f"segment offsets out of range: seg_indptr must start at 0 and end at T={num_tokens}, "
            f"got {seg_indptr[0]} .. {seg_indptr[-1]}"
        )
    for i in range(len(seg_indptr) - 1):
        if seg_indptr[i + 1] <= seg_indptr[i]:
            raise ValueError(
                f"non-monotone segment offsets: seg_indptr[{i + 1}]={seg_indptr[i + 1]} <= "
                f"seg_indptr[{i}]={seg_indptr[i]}"
            )
    if len(weight_indices) != len(seg_indptr) - 1:
        raise ValueError(f"{len(seg_indptr) - 1} segments but {len(weight_indices)} weight indices")
    for i, w in enumerate(weight_indices):
        if not 0 <= w < num_adapters:
            raise ValueError(f"adapter index out of range: segment {i} uses {w}, expected [0, {num_adapters})")


def _expect(name: str, t: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
    if tuple(t.shape) != shape:
        raise ValueError(f"shape mismatch: {name} has shape {tuple(t.shape)}, expected {shape}")
    if t.dtype != dtype:
        raise ValueError(f"dtype mismatch: {name} is {t.dtype}, expected {dtype}")
    if t.device != device:
        raise ValueError(f"device mismatch: {name} is on {t.device}, expected {device}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous (the kernels assume row-major strides); call .contiguous()")


@dataclass
class Operands:
    """All tensors of one scenario's call. Construction validates them against the scenario."""

    scenario: Scenario
    x: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    v: torch.Tensor
    y: torch.Tensor
    seg_indptr: torch.Tensor
    weight_indices: torch.Tensor
    proj_offsets: torch.Tensor

    def __post_init__(self) -> None:
        s = self.scenario
        dev = self.x.device
        dt = torch_dtype(s.dtype)
        T, R, H, L = s.num_tokens, s.total_rank, s.total_h_out, s.num_adapters
        _expect("x", self.x, (T, s.h_in), dt, dev)
        _expect("a", self.a, (L, R, s.h_in), dt, dev)
        _expect("b", self.b, (L, H, s.rank), dt, dev)
        _expect("v", self.v, (T, R), inter_torch_dtype(s), dev)
        _expect("y", self.y, (T, H), dt, dev)
        for name, t, n in (
            ("seg_indptr", self.seg_indptr, s.num_segments + 1),
            ("weight_indices", self.weight_indices, s.num_segments),
            ("proj_offsets", self.proj_offsets, s.num_proj + 1),
        ):
            _expect(name, t, (n,), torch.int32, dev)
        check_segments(self.seg_indptr.tolist(), self.weight_indices.tolist(), T, L)
        if self.seg_indptr.tolist() != list(s.seg_indptr):
            raise ValueError("seg_indptr does not match the scenario's segment lengths")
        if self.weight_indices.tolist() != list(s.seg_adapters):
            raise ValueError("weight_indices do not match the scenario's segment adapters")
        offsets = [0]
        for h in s.h_outs:
            offsets.append(offsets[-1] + h)
        if self.proj_offsets.tolist() != offsets:
            raise ValueError(f"proj_offsets must be the prefix sums of h_outs, {offsets}")

    @property
    def out(self) -> torch.Tensor:
        """The tensor the op writes: ``v`` for shrink, ``y`` otherwise."""
        return self.v if self.scenario.op == "shrink" else self.y


def make_operands(scn: Scenario, device: str | torch.device = "cpu", seed: int = 0) -> Operands:
    """Random operands for ``scn`` drawn on ``device`` (normal, scaled so outputs stay O(1); never zeros)."""
    device = torch.device(device)
    g = torch.Generator(device=device).manual_seed(seed)
    dt = torch_dtype(scn.dtype)
    T, R, H, L = scn.num_tokens, scn.total_rank, scn.total_h_out, scn.num_adapters

    def rnd(*shape: int, std: float, dtype: torch.dtype = dt) -> torch.Tensor:
        return (torch.randn(*shape, generator=g, device=device) * std).to(dtype)

    offs = [0]
    for h in scn.h_outs:
        offs.append(offs[-1] + h)
    return Operands(
        scenario=scn,
        x=rnd(T, scn.h_in, std=1.0),
        a=rnd(L, R, scn.h_in, std=scn.h_in**-0.5),
        b=rnd(L, H, scn.rank, std=scn.rank**-0.5),
        v=rnd(T, R, std=1.0, dtype=inter_torch_dtype(scn)),
        y=rnd(T, H, std=1.0),
        seg_indptr=torch.tensor(scn.seg_indptr, dtype=torch.int32, device=device),
        weight_indices=torch.tensor(scn.seg_adapters, dtype=torch.int32, device=device),
        proj_offsets=torch.tensor(offs, dtype=torch.int32, device=device),
    )


def clone_operands(ops: Operands) -> Operands:
    """A copy with its own data tensors (same values) and shared segment metadata: one rotation slot."""
    return Operands(
        ops.scenario,
        ops.x.clone(),
        ops.a.clone(),
        ops.b.clone(),
        ops.v.clone(),
        ops.y.clone(),
        ops.seg_indptr,
        ops.weight_indices,
        ops.proj_offsets,
    )


def touched_bytes(ops: Operands) -> int:
    """Bytes of the data tensors the op reads or writes (what a rotation slot occupies)."""
    used = {
        "shrink": (ops.x, ops.a, ops.v),
        "expand": (ops.v, ops.b, ops.y),
        "fused": (ops.x, ops.a, ops.b, ops.y),
    }
    return sum(t.numel() * t.element_size() for t in used[ops.scenario.op])
