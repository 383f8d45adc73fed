"""The package's API: the tuned SGMV LoRA kernels behind run-time dispatch.

Tensors (all on one device, contiguous): ``x[T, h_in]``; tokens grouped into contiguous segments,
``seg_indptr[S+1]`` (int32, 0 .. T) and ``weight_indices[S]`` (int32, the adapter of each segment);
``A[L, P*r, h_in]`` (the P projections' A matrices stacked), ``B[L, sum h_p, r]``; ``y[T, sum h_p]`` (the
projections' outputs side by side: projection p at columns ``off_p = h_0 + ... + h_{p-1}``).

- ``add_lora``: ``y[:, off_p:off_p+h_p] += scale * (x @ A[w, p*r:(p+1)*r]^T) @ B[w, off_p:off_p+h_p]^T``;
  one projection (``h_outs`` omitted) or several sharing ``x`` (q,k,v or gate,up). The kernel(s) are the ones
  the session found fastest for the nearest tuned layout: one fused launch, or a shrink then an expand.
- ``shrink``: ``v (+)= scale * x @ A[w]^T`` into ``v[T, P*r]`` (fp32 for the split-K kernels).
- ``expand``: ``y (+)= scale * v @ B[w]^T`` per projection.
- ``segments_from_token_mapping``: vLLM's per-token adapter ids (-1 = none) to a token order and segments.

The overlapped form (as vLLM's ``VLLM_LORA_ENABLE_DUAL_STREAM=1``): launch ``shrink`` on a side stream while
the base layer's GEMM runs on the main stream, then ``expand`` into the GEMM's output once both are done::

    side.wait_stream(main)                        # x is ready
    with torch.cuda.stream(side):
        shrink(v, x, A, seg_indptr, weight_indices, scale)
    out = x @ W.T                                 # main stream, concurrently
    main.wait_stream(side)
    expand(out, v, B, seg_indptr, weight_indices)  # accumulates into the base output

Every call is stream-ordered on the current stream and graph-capturable: no host synchronisation. A call
validates its tensors and picks its kernels once: later calls with the same tensor objects (as serving with
static buffers and CUDA graphs makes them) reuse that launch plan and cost little more than the launches
themselves (``PLAN_CACHE`` plans are kept, for calls of at most ``PLAN_MAX_TOKENS`` tokens; a plan holds its
tensors, ``clear_plans()`` lets them go; resizing a tensor in place is not supported). The only
allocations are ``add_lora``'s fp32 intermediate and the projection offsets, made once per shape and device
on the first call (make it before capturing, or pass ``workspace``). Dispatch reads only shapes,
dtypes and the device's name; ``max_seg_len`` (the longest segment, if the caller knows it) lets the
kernels launch fewer idle programs (default: T, always safe; the kernels that tile rows then launch at most
``cdiv(T, BLOCK_M) + S - 1`` row tiles, not ``S x cdiv(T, BLOCK_M)``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import torch

from . import dispatch

INT32 = torch.int32


@cache
def _launcher(module: str, name: str) -> Any:
    return getattr(importlib.import_module(f".kernels.{module}", __package__), name)


@cache
def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


_offsets: dict[tuple, torch.Tensor] = {}
_workspaces: dict[tuple, torch.Tensor] = {}


def _proj_offsets(h_outs: tuple[int, ...], device: torch.device) -> torch.Tensor:
    key = (h_outs, device)
    if key not in _offsets:
        offs = [0]
        for h in h_outs:
            offs.append(offs[-1] + h)
        _offsets[key] = torch.tensor(offs, dtype=INT32, device=device)
    return _offsets[key]


def _check(name: str, t: Any, ndim: int, device: torch.device, dtypes: tuple[torch.dtype, ...]) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    if t.device != device:
        raise ValueError(f"{name} is on {t.device}, expected {device} (all tensors on one device)")
    if t.dtype not in dtypes:
        raise ValueError(f"{name} has dtype {t.dtype}, expected {' or '.join(map(str, dtypes))}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous (call .contiguous())")


def _check_segments(seg_indptr: Any, weight_indices: Any, device: torch.device) -> int:
    _check("seg_indptr", seg_indptr, 1, device, (INT32,))
    _check("weight_indices", weight_indices, 1, device, (INT32,))
    if seg_indptr.shape[0] != weight_indices.shape[0] + 1 or weight_indices.shape[0] == 0:
        raise ValueError(f"seg_indptr must have one entry more than weight_indices (S+1 and S, S >= 1), got "
                         f"{seg_indptr.shape[0]} and {weight_indices.shape[0]}")  # fmt: skip
    return weight_indices.shape[0]


def _expect(name: str, t: torch.Tensor, dim: int, size: int, what: str) -> None:
    if t.shape[dim] != size:
        raise ValueError(f"{name}.shape[{dim}] is {t.shape[dim]}, expected {size} ({what})")


DTYPES = (torch.float16, torch.bfloat16, torch.float32)
DTYPE_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}


def _prepare(c: dispatch.Choice, *tensors: torch.Tensor, **kw: Any) -> Callable[[], None]:
    return _launcher(c.module, c.launcher)(*tensors, config=c.config, **kw)


PLAN_CACHE = 1024  # launch plans kept, first in first out (a decode step of a 40-layer model makes 160 calls)
PLAN_MAX_TOKENS = 4096  # larger calls are not kept: a plan holds its tensors alive, and long calls gain little
_plans: dict[tuple, Callable[[], None]] = {}


def _remember(key: tuple, run: Callable[[], None], tokens: int) -> Callable[[], None]:
    if tokens <= PLAN_MAX_TOKENS:
        if len(_plans) >= PLAN_CACHE:
            del _plans[next(iter(_plans))]
        _plans[key] = run
    return run


def _run(key: tuple, tokens: int, plan: Callable[[], Callable[[], None]]) -> None:
    """Launch the plan remembered under ``key``, planning (validating, dispatching) it first if need be."""
    run = _plans.get(key)
    if run is None:
        run = _remember(key, plan(), tokens)
    run()


def clear_plans() -> None:
    """Forget every launch plan (and release the tensors they hold)."""
    _plans.clear()


def _shrink_choice(x: torch.Tensor, A: torch.Tensor, v: torch.Tensor, S: int) -> dispatch.Choice:
    key = {"h_in": x.shape[1], "n": A.shape[1], "dtype": DTYPE_NAMES[x.dtype]}
    e = dispatch.nearest("shrink", key, x.shape[0], S, _device_name(x.device))
    if e is None:
        return dispatch.safe("shrink")
    if v.dtype != torch.float32 and e["config"].get("SPLIT_K", 1) > 1:
        return dispatch.safe("shrink")  # split-K reduces with fp32 atomics
    return dispatch.choice(e, f"tuned at T={e['tokens']} S={e['segments']}")


def _expand_choice(y: torch.Tensor, B: torch.Tensor, h_outs: tuple[int, ...], S: int) -> dispatch.Choice:
    key = {"rank": B.shape[2], "h_outs": list(h_outs), "dtype": DTYPE_NAMES[y.dtype]}
    e = dispatch.nearest("expand", key, y.shape[0], S, _device_name(y.device))
    return dispatch.safe("expand") if e is None else dispatch.choice(e, f"tuned at T={e['tokens']} S={e['segments']}")


def _h_outs(h_outs: Sequence[int] | None, width: int) -> tuple[int, ...]:
    outs = (width,) if h_outs is None else tuple(int(h) for h in h_outs)
    if not outs or min(outs) < 1 or sum(outs) != width:
        raise ValueError(f"h_outs {outs} must be positive widths summing to y's {width} columns")
    return outs


def shrink(
    v: torch.Tensor, x: torch.Tensor, A: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    scale: float = 1.0, *, accumulate: bool = False, max_seg_len: int | None = None,
) -> None:  # fmt: skip
    """``v (+)= scale * x @ A[w]^T`` per segment: ``x[T, h_in]``, ``A[L, N, h_in]``, ``v[T, N]``."""
    key = ("shrink", id(v), id(x), id(A), id(seg_indptr), id(weight_indices), x.shape, scale, accumulate, max_seg_len)
    _run(key, x.shape[0], lambda: _plan_shrink(v, x, A, seg_indptr, weight_indices, scale, accumulate, max_seg_len))


def _plan_shrink(
    v: torch.Tensor, x: torch.Tensor, A: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    scale: float, accumulate: bool, max_seg_len: int | None,
) -> Callable[[], None]:  # fmt: skip
    dev = x.device
    _check("x", x, 2, dev, DTYPES)
    _check("A", A, 3, dev, (x.dtype,))
    _check("v", v, 2, dev, (torch.float32, x.dtype))
    S = _check_segments(seg_indptr, weight_indices, dev)
    _expect("A", A, 2, x.shape[1], "x's h_in")
    _expect("v", v, 0, x.shape[0], "x's tokens")
    _expect("v", v, 1, A.shape[1], "A's stacked rank")
    c = _shrink_choice(x, A, v, S)
    return _prepare(c, x, A, v, seg_indptr, weight_indices, max_seg_len=max_seg_len or x.shape[0], scale=scale,
                    accumulate=accumulate)  # fmt: skip


def expand(
    y: torch.Tensor, v: torch.Tensor, B: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    scale: float = 1.0, *, h_outs: Sequence[int] | None = None, accumulate: bool = True,
    max_seg_len: int | None = None,
) -> None:  # fmt: skip
    """``y[:, off_p:off_p+h_p] (+)= scale * v[:, p*r:(p+1)*r] @ B[w, off_p:off_p+h_p]^T`` per segment."""
    outs = None if h_outs is None else tuple(h_outs)
    key = ("expand", id(y), id(v), id(B), id(seg_indptr), id(weight_indices), y.shape, scale, outs, accumulate,
           max_seg_len)  # fmt: skip
    _run(
        key, y.shape[0], lambda: _plan_expand(y, v, B, seg_indptr, weight_indices, scale, outs, accumulate, max_seg_len)
    )


def _plan_expand(
    y: torch.Tensor, v: torch.Tensor, B: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    scale: float, h_outs: Sequence[int] | None, accumulate: bool, max_seg_len: int | None,
) -> Callable[[], None]:  # fmt: skip
    dev = y.device
    _check("y", y, 2, dev, DTYPES)
    _check("B", B, 3, dev, (y.dtype,))
    _check("v", v, 2, dev, (torch.float32, y.dtype))
    S = _check_segments(seg_indptr, weight_indices, dev)
    outs = _h_outs(h_outs, y.shape[1])
    _expect("B", B, 1, y.shape[1], "y's columns")
    _expect("v", v, 0, y.shape[0], "y's tokens")
    _expect("v", v, 1, B.shape[2] * len(outs), "rank x projections")
    c = _expand_choice(y, B, outs, S)
    return _prepare(c, v, B, y, seg_indptr, weight_indices, _proj_offsets(outs, dev), h_outs=outs,
                    max_seg_len=max_seg_len or y.shape[0], scale=scale, accumulate=accumulate)  # fmt: skip


def add_lora(
    y: torch.Tensor, x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, scale: float = 1.0, *, h_outs: Sequence[int] | None = None,
    max_seg_len: int | None = None, workspace: torch.Tensor | None = None,
) -> None:  # fmt: skip
    """``y += scale * (x @ A[w]^T) @ B[w]^T`` per segment and projection (the whole LoRA delta), with the
    kernels the session found fastest at the nearest tuned layout. ``workspace``: an fp32 ``[T, P*r]`` tensor
    for the intermediate (default: one kept per shape and device; pass your own to share none across
    streams)."""
    outs = None if h_outs is None else tuple(h_outs)
    key = ("lora", id(y), id(x), id(A), id(B), id(seg_indptr), id(weight_indices), id(workspace), x.shape, y.shape,
           scale, outs, max_seg_len)  # fmt: skip
    _run(
        key, x.shape[0], lambda: _plan_lora(y, x, A, B, seg_indptr, weight_indices, scale, outs, max_seg_len, workspace)
    )


def _plan_lora(
    y: torch.Tensor, x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, scale: float, h_outs: Sequence[int] | None, max_seg_len: int | None,
    workspace: torch.Tensor | None,
) -> Callable[[], None]:  # fmt: skip
    dev = x.device
    _check("x", x, 2, dev, DTYPES)
    for name, t in (("A", A), ("B", B), ("y", y)):
        _check(name, t, 3 if name != "y" else 2, dev, (x.dtype,))
    S = _check_segments(seg_indptr, weight_indices, dev)
    outs = _h_outs(h_outs, y.shape[1])
    T, rank, P = x.shape[0], B.shape[2], len(outs)
    _expect("A", A, 2, x.shape[1], "x's h_in")
    _expect("A", A, 1, rank * P, "B's rank x projections")
    _expect("B", B, 1, y.shape[1], "y's columns")
    _expect("y", y, 0, T, "x's tokens")
    if B.shape[0] != A.shape[0]:
        raise ValueError(f"A and B hold {A.shape[0]} and {B.shape[0]} adapters: expected the same")
    seg, offs, msl = (seg_indptr, weight_indices), _proj_offsets(outs, dev), max_seg_len or T
    key = {"h_in": x.shape[1], "h_outs": list(outs), "rank": rank, "dtype": DTYPE_NAMES[x.dtype]}
    e = dispatch.nearest("lora", key, T, S, _device_name(dev))
    if e is not None and e["how"] == "fused":
        c = dispatch.choice(e["kernels"][0], "fused")
        return _prepare(c, x, A, B, y, *seg, offs, h_outs=outs, max_seg_len=msl, scale=scale, accumulate=True,
                        inter_dtype=torch.float32)  # fmt: skip
    if workspace is None:
        wkey = (T, rank * P, dev)
        if wkey not in _workspaces:
            _workspaces[wkey] = torch.empty((T, rank * P), dtype=torch.float32, device=dev)
        workspace = _workspaces[wkey]
    _check("workspace", workspace, 2, dev, (torch.float32,))
    _expect("workspace", workspace, 0, T, "x's tokens")
    _expect("workspace", workspace, 1, rank * P, "rank x projections")
    if e is not None:
        first, second = (dispatch.choice(k, "shrink+expand") for k in e["kernels"])
    else:
        first, second = _shrink_choice(x, A, workspace, S), _expand_choice(y, B, outs, S)
    run_shrink = _prepare(first, x, A, workspace, *seg, max_seg_len=msl, scale=scale, accumulate=False)
    run_expand = _prepare(second, workspace, B, y, *seg, offs, h_outs=outs, max_seg_len=msl, scale=1.0,
                          accumulate=True)  # fmt: skip

    def both() -> None:
        run_shrink()
        run_expand()

    return both


def segments_from_token_mapping(
    mapping: Sequence[int] | torch.Tensor, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """vLLM's per-token adapter ids (``-1``: no adapter) to ``(order, seg_indptr, weight_indices)``: the
    tokens that use an adapter, stably sorted by adapter (gather ``x[order]``, compute, scatter the delta
    back to ``y[order]``), and the segments of that order, int32 on ``device``. Runs on the host (vLLM builds
    its mapping there too): pass a list or a CPU tensor."""
    ids = mapping.tolist() if isinstance(mapping, torch.Tensor) else [int(m) for m in mapping]
    for i, m in enumerate(ids):
        if m < -1:
            raise ValueError(f"token {i} maps to adapter {m}: expected -1 (none) or an index >= 0")
    order = sorted((i for i, m in enumerate(ids) if m >= 0), key=lambda i: ids[i])
    if not order:
        raise ValueError("no token of the mapping uses an adapter")
    indptr, adapters = [0], []
    for n, i in enumerate(order):
        if adapters and adapters[-1] == ids[i]:
            indptr[-1] = n + 1
        else:
            adapters.append(ids[i])
            indptr.append(n + 1)
    as_tensor = lambda vals: torch.tensor(vals, dtype=INT32, device=device)  # noqa: E731
    return torch.tensor(order, dtype=torch.int64, device=device), as_tensor(indptr), as_tensor(adapters)
