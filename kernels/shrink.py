"""SGMV shrink sketches: ``v[seg] (+)= scale * x[seg] @ A[w]^T`` (``x[T, K]``, ``A[L, N, K]``, ``v[T, N]``).

``N`` is the rank times the number of projections sharing ``x`` (their A matrices are stacked along N).
Three structures:

The launchers take ``h_outs`` (the projections' widths) like every shrink launcher, and need it not: the
projections' A matrices are stacked into one.

- ``bind_tile_dot``: one program per (segment, row tile, rank tile), ``tl.dot`` over the whole of K.
- ``bind_splitk_dot``: as tile, with K split over SPLIT_K programs that reduce with fp32 atomics; the
  output is zeroed by a separate launch first when the op overwrites.
- ``bind_gemv``: no tensor cores; grid (segments, rank tiles x SPLIT_K). A program walks its segment's
  tokens BLOCK_T at a time; for each token group it loops over its K pieces (every SPLIT_K-th BLOCK_K
  chunk), loads ``x[BLOCK_T, BLOCK_K]`` and ``A[BLOCK_N, BLOCK_K]`` and adds the fp32 broadcast product
  summed over K into ``acc[BLOCK_T, BLOCK_N]``; SPLIT_K > 1 reduces with fp32 atomics like split-K.
  One-token segments (decode, Distinct) waste no MMA rows and read their adapter's A tile once;
  BLOCK_T = 1 drops the token mask.

Tested in the Triton interpreter (fp32, fp16, bf16 with the fp32 cast of ``_common``) on one-token to
multi-hundred-token segments, ranks 8..128 and K not a multiple of any block; the gemv sketch on random
valid configs of Distinct, Uniform, Skewed, Identical and long-segment layouts, P = 1..3, accumulate and
overwrite, scale != 1, fp32 and input-dtype ``v``. Compiled ahead of time for sm_90.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import triton
import triton.language as tl

from ._common import EVICTION, cdiv, dot_cast_fp32, launch_opts, load_segment, locate_tile, row_tile_grid


@triton.jit
def _shrink_tile_kernel(
    # pointers
    x_ptr, a_ptr, v_ptr, seg_indptr_ptr, weight_idx_ptr,
    # dimensions
    K, N,
    # strides (innermost strides are 1: operands are contiguous)
    stride_xt, stride_al, stride_an, stride_vt,
    # scalars
    scale, n_segs,
    # meta-parameters
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, SPLIT_K: tl.constexpr,
    EVEN_K: tl.constexpr, ACCUMULATE: tl.constexpr, ATOMIC: tl.constexpr, CAST_FP32: tl.constexpr,
    EVICT_W: tl.constexpr, FLAT_SEGS: tl.constexpr,
):  # fmt: skip
    seg = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_nk = tl.program_id(2)
    pid_n = pid_nk // SPLIT_K
    pid_k = pid_nk % SPLIT_K
    end, w, row0 = locate_tile(seg_indptr_ptr, weight_idx_ptr, seg, pid_m, n_segs, BLOCK_M, FLAT_SEGS)
    if row0 >= end:
        return
    rm = row0 + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    m_mask = rm < end
    n_mask = rn < N
    x_ptrs = x_ptr + rm[:, None].to(tl.int64) * stride_xt + rk[None, :]
    a_ptrs = a_ptr + w * stride_al + rn[None, :] * stride_an + rk[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(pid_k * BLOCK_K, K, BLOCK_K * SPLIT_K):
        if EVEN_K:
            xt = tl.load(x_ptrs, mask=m_mask[:, None], other=0.0)
            at = tl.load(a_ptrs, mask=n_mask[None, :], other=0.0, eviction_policy=EVICT_W)
        else:
            k_mask = rk < K - (k0 - pid_k * BLOCK_K)
            xt = tl.load(x_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
            at = tl.load(a_ptrs, mask=n_mask[None, :] & k_mask[:, None], other=0.0, eviction_policy=EVICT_W)
        if CAST_FP32:
            xt = xt.to(tl.float32)
            at = at.to(tl.float32)
        acc += tl.dot(xt, at)
        x_ptrs += BLOCK_K * SPLIT_K
        a_ptrs += BLOCK_K * SPLIT_K
    acc = acc * scale
    v_ptrs = v_ptr + rm[:, None].to(tl.int64) * stride_vt + rn[None, :]
    o_mask = m_mask[:, None] & n_mask[None, :]
    if ATOMIC:
        tl.atomic_add(v_ptrs, acc, mask=o_mask)
    else:
        if ACCUMULATE:
            acc += tl.load(v_ptrs, mask=o_mask, other=0.0).to(tl.float32)
        tl.store(v_ptrs, acc.to(v_ptr.dtype.element_ty), mask=o_mask)


def _args(x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
          scale: float) -> tuple:  # fmt: skip
    """Arguments of the shrink kernels in their shared order: pointers, dimensions, strides, scale."""
    strides = (x.stride(0), a.stride(0), a.stride(1), v.stride(0))
    return (x, a, v, seg_indptr, weight_indices, x.shape[1], a.shape[1], *strides, float(scale))


def _atomic(v: torch.Tensor, split_k: int) -> bool:
    """Whether the K splits reduce with fp32 atomics (SPLIT_K > 1); that needs an fp32 intermediate."""
    if split_k > 1 and v.dtype.itemsize != 4:
        raise ValueError("split-K shrink reduces with fp32 atomics: the intermediate v must be fp32")
    return split_k > 1


def _bind_dot(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    max_seg_len: int, scale: float, accumulate: bool, config: Mapping[str, int], split_k: int,
) -> Callable[[], None]:  # fmt: skip
    bm, bn, bk = int(config["BLOCK_M"]), int(config["BLOCK_N"]), int(config["BLOCK_K"])
    K, N = x.shape[1], a.shape[1]
    atomic = _atomic(v, split_k)
    segs, rows, flat = row_tile_grid(x.shape[0], weight_indices.shape[0], max_seg_len, bm)
    grid = (segs, rows, cdiv(N, bn) * split_k)
    zero_first = atomic and not accumulate
    args = (*_args(x, a, v, seg_indptr, weight_indices, scale), weight_indices.shape[0])
    meta = dict(
        FLAT_SEGS=flat,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
        SPLIT_K=split_k,
        EVEN_K=K % (bk * split_k) == 0,
        ACCUMULATE=accumulate,
        ATOMIC=atomic,
        CAST_FP32=dot_cast_fp32(x),
        EVICT_W=EVICTION[int(config["WEIGHT_HINT"])],
        **launch_opts(config),
    )

    def run() -> None:
        if zero_first:
            v.zero_()
        _shrink_tile_kernel[grid](*args, **meta)

    return run


def bind_tile_dot(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    max_seg_len: int, scale: float, accumulate: bool, config: Mapping[str, int],
    h_outs: tuple[int, ...] | None = None,
) -> Callable[[], None]:  # fmt: skip
    """shrink/tile/dot: grid (segments, row tiles (``row_tile_grid``), rank tiles)."""
    return _bind_dot(x, a, v, seg_indptr, weight_indices, max_seg_len, scale, accumulate, config, 1)


def bind_splitk_dot(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    max_seg_len: int, scale: float, accumulate: bool, config: Mapping[str, int],
    h_outs: tuple[int, ...] | None = None,
) -> Callable[[], None]:  # fmt: skip
    """shrink/splitk/dot: grid (segments, row tiles, rank tiles x SPLIT_K); fp32 atomic reduction (zeroing
    ``v`` first when overwriting)."""
    split_k = int(config["SPLIT_K"])
    return _bind_dot(x, a, v, seg_indptr, weight_indices, max_seg_len, scale, accumulate, config, split_k)


@triton.jit
def _shrink_gemv_kernel(
    # pointers
    x_ptr, a_ptr, v_ptr, seg_indptr_ptr, weight_idx_ptr,
    # dimensions
    K, N,
    # strides (innermost strides are 1: operands are contiguous)
    stride_xt, stride_al, stride_an, stride_vt,
    # scalars
    scale,
    # meta-parameters
    BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, SPLIT_K: tl.constexpr,
    EVEN_K: tl.constexpr, EVEN_N: tl.constexpr, ACCUMULATE: tl.constexpr, ATOMIC: tl.constexpr,
    EVICT_W: tl.constexpr,
):  # fmt: skip
    seg = tl.program_id(0)
    pid_nk = tl.program_id(1)
    pid_n = pid_nk // SPLIT_K
    pid_k = pid_nk % SPLIT_K
    start, end, w = load_segment(seg_indptr_ptr, weight_idx_ptr, seg)
    if start >= end:  # the exit waits for the metadata: one round trip (_common)
        return
    rt = tl.arange(0, BLOCK_T)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    n_mask = rn < N
    a_start = a_ptr + w * stride_al + rn[:, None] * stride_an + rk[None, :]  # [BLOCK_N, BLOCK_K]
    for t0 in range(start, end, BLOCK_T):
        rows = t0 + rt
        t_mask = rows < end
        x_ptrs = x_ptr + rows[:, None].to(tl.int64) * stride_xt + rk[None, :]  # [BLOCK_T, BLOCK_K]
        a_ptrs = a_start
        acc = tl.zeros((BLOCK_T, BLOCK_N), dtype=tl.float32)
        for k0 in range(pid_k * BLOCK_K, K, BLOCK_K * SPLIT_K):
            if EVEN_K:
                # with BLOCK_T == 1 the loop bound keeps the one token inside its segment: no mask
                xt = tl.load(x_ptrs) if BLOCK_T == 1 else tl.load(x_ptrs, mask=t_mask[:, None], other=0.0)
                if EVEN_N:
                    at = tl.load(a_ptrs, eviction_policy=EVICT_W)
                else:
                    at = tl.load(a_ptrs, mask=n_mask[:, None], other=0.0, eviction_policy=EVICT_W)
            else:
                k_mask = rk < K - (k0 - pid_k * BLOCK_K)
                xt = tl.load(x_ptrs, mask=t_mask[:, None] & k_mask[None, :], other=0.0)
                a_mask = n_mask[:, None] & k_mask[None, :]
                at = tl.load(a_ptrs, mask=a_mask, other=0.0, eviction_policy=EVICT_W)
            # fp32 broadcast product [BLOCK_T, BLOCK_N, BLOCK_K], reduced over K
            acc += tl.sum(xt.to(tl.float32)[:, None, :] * at.to(tl.float32)[None, :, :], axis=2)
            x_ptrs += BLOCK_K * SPLIT_K
            a_ptrs += BLOCK_K * SPLIT_K
        acc = acc * scale
        v_ptrs = v_ptr + rows[:, None].to(tl.int64) * stride_vt + rn[None, :]
        o_mask = t_mask[:, None] & n_mask[None, :]
        if ATOMIC:
            tl.atomic_add(v_ptrs, acc, mask=o_mask)
        else:
            if ACCUMULATE:
                acc += tl.load(v_ptrs, mask=o_mask, other=0.0).to(tl.float32)
            tl.store(v_ptrs, acc.to(v_ptr.dtype.element_ty), mask=o_mask)


def bind_gemv(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    max_seg_len: int, scale: float, accumulate: bool, config: Mapping[str, int],
    h_outs: tuple[int, ...] | None = None,
) -> Callable[[], None]:  # fmt: skip
    """shrink/gemv/fma: grid (segments, rank tiles x SPLIT_K); broadcast-multiply and sum over K, no MMA."""
    bt, bn, bk = int(config["BLOCK_T"]), int(config["BLOCK_N"]), int(config["BLOCK_K"])
    split_k = int(config["SPLIT_K"])
    K, N = x.shape[1], a.shape[1]
    atomic = _atomic(v, split_k)
    grid = (weight_indices.shape[0], cdiv(N, bn) * split_k)
    zero_first = atomic and not accumulate
    args = _args(x, a, v, seg_indptr, weight_indices, scale)
    meta = dict(
        BLOCK_T=bt,
        BLOCK_N=bn,
        BLOCK_K=bk,
        SPLIT_K=split_k,
        EVEN_K=K % bk == 0,
        EVEN_N=N % bn == 0,
        ACCUMULATE=accumulate,
        ATOMIC=atomic,
        EVICT_W=EVICTION[int(config["WEIGHT_HINT"])],
        **launch_opts(config),
    )

    def run() -> None:
        if zero_first:
            v.zero_()
        _shrink_gemv_kernel[grid](*args, **meta)

    return run
