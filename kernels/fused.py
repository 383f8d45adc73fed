"""Fused LoRA sketches: the whole delta in one launch, without writing the rank-r intermediate to memory.

For segment ``seg`` with adapter ``w`` and projection ``p`` (columns ``off_p:off_p+h_p`` of ``y``):
``y[seg, off_p:off_p+h_p] (+)= scale * round(x[seg] @ A[w, p*r:(p+1)*r]^T) @ B[w, off_p:off_p+h_p]^T``
with ``x[T, K]``, ``A[L, P*r, K]``, ``B[L, sum h_p, r]``, ``y[T, sum h_p]``; ``round`` is the rounding to the
intermediate dtype (``inter_dtype``: fp32 or the input dtype), which is never read or written. Every program
recomputes the shrink of its rows (x and A re-read, mostly from L2) and applies it to its share of one
projection's columns: column tiles ``split, split + N_SPLIT, ...`` of width BLOCK_N.
N_SPLIT trades that redundant shrink work for parallelism. Two structures:

- ``bind_tile_dot``: grid (P x N_SPLIT, row tiles of the longest segment, segments). ``tl.dot`` over K into
  ``t[BLOCK_M, BLOCK_R]`` (BLOCK_R = max(16, next_pow2(r)), rank masked), then ``tl.dot(t, B_tile^T)`` per
  column tile. For a 16-bit input with an fp32 intermediate, ``t`` is split into two input-dtype terms
  (``hi = t.to(dt)``, ``lo = (t - hi).to(dt)``) and the second product is two 16-bit dots: B never leaves its
  dtype (no per-tile conversion, half the shared memory of tf32), and ``hi + lo`` keeps 16 (bf16) or 22 (fp16)
  mantissa bits of the fp32 intermediate, more than tf32's 11 (fp16: |t| must stay below 65504, as it must
  for an fp16 output anyway). fp32 inputs use fp32 dots (tf32 on the GPU).
- ``bind_gemv``: no tensor cores, for one-token segments. Grid (P x N_SPLIT, segments); each program walks its
  segment's tokens BLOCK_T at a time: ``t[BLOCK_T, R]`` by a broadcast multiply and a sum over K chunks
  (R = next_pow2(r)), rounded, scaled, then ``y_tile = sum_R t[:, None, :] * B[None, BLOCK_N, R]`` in fp32.

Tested in the Triton interpreter (fp32, fp16, bf16 with the fp32 cast of ``_common``) against
``reference_loop`` on one-token to 40-token segments (distinct, uniform, skewed, identical layouts), P = 1, 2
and 3 projections of unequal widths not a multiple of any block, ranks 8, 16, 32, 64 and 128 (and a
non-power-of-two 12), K not a multiple of any block, accumulate on and off, scale != 1, fp32 and
input-dtype intermediates; compiled ahead of time for sm_90. Projection offsets that are all multiples of 8 or
16 (real models) are declared so (COL_ALIGN) and give vectorised y accesses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import triton
import triton.language as tl

from ._common import col_align, dot_cast_fp32, launch_opts, load_segment, locate_tile, row_tile_grid


@triton.jit
def _fused_tile_kernel(
    # pointers
    x_ptr, a_ptr, b_ptr, y_ptr, seg_indptr_ptr, weight_idx_ptr, proj_offsets_ptr,
    # dimensions
    K, R,
    # strides (innermost strides are 1: operands are contiguous)
    stride_xt, stride_al, stride_ar, stride_bl, stride_bn, stride_yt,
    # scalars
    scale, n_segs,
    # meta-parameters
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
    N_SPLIT: tl.constexpr, EVEN_K: tl.constexpr, EVEN_N: tl.constexpr, EVEN_R: tl.constexpr,
    COL_ALIGN: tl.constexpr, ACCUMULATE: tl.constexpr, TWO_TERM: tl.constexpr, CAST_FP32: tl.constexpr,
    FLAT_SEGS: tl.constexpr,
):  # fmt: skip
    pid_ps = tl.program_id(0)
    pid_m = tl.program_id(1)
    seg = tl.program_id(2)
    p = pid_ps // N_SPLIT
    split = pid_ps % N_SPLIT
    end, w, row0 = locate_tile(seg_indptr_ptr, weight_idx_ptr, seg, pid_m, n_segs, BLOCK_M, FLAT_SEGS)
    col0 = tl.load(proj_offsets_ptr + p)
    n_cols = tl.load(proj_offsets_ptr + p + 1) - col0
    if COL_ALIGN > 1:  # every projection offset and width is a multiple of COL_ALIGN: vectorised y accesses
        col0 = tl.multiple_of(col0, COL_ALIGN)
        n_cols = tl.multiple_of(n_cols, COL_ALIGN)
    # no rows of this segment, or no column tile of this (narrower) projection left for this split
    if (row0 >= end) | (split * BLOCK_N >= n_cols):
        return
    rm = row0 + tl.arange(0, BLOCK_M)
    rk = tl.arange(0, BLOCK_K)
    rr = tl.arange(0, BLOCK_R)
    rn = tl.arange(0, BLOCK_N)
    m_mask = rm < end
    r_mask = rr < R

    # shrink: t = x[rows] @ A[w, p*r:(p+1)*r]^T, fp32 accumulation, kept on chip (never written to v)
    x_ptrs = x_ptr + rm[:, None].to(tl.int64) * stride_xt + rk[None, :]
    a_ptrs = a_ptr + w * stride_al + (p * R + rr)[None, :] * stride_ar + rk[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        if EVEN_K:
            xt = tl.load(x_ptrs, mask=m_mask[:, None], other=0.0)
            at = tl.load(a_ptrs) if EVEN_R else tl.load(a_ptrs, mask=r_mask[None, :], other=0.0)
        else:
            k_mask = rk < K - k0
            xt = tl.load(x_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
            at = tl.load(a_ptrs, mask=r_mask[None, :] & k_mask[:, None], other=0.0)
        if CAST_FP32:
            xt = xt.to(tl.float32)
            at = at.to(tl.float32)
        acc += tl.dot(xt, at)
        x_ptrs += BLOCK_K
        a_ptrs += BLOCK_K

    # round to the intermediate dtype and to the dot operand dtype (see the module docstring)
    t_hi = acc.to(x_ptr.dtype.element_ty)
    if TWO_TERM:
        t_lo = (acc - t_hi.to(tl.float32)).to(x_ptr.dtype.element_ty)
    if CAST_FP32:
        t_hi = t_hi.to(tl.float32)
        if TWO_TERM:
            t_lo = t_lo.to(tl.float32)

    # expand: this split's column tiles of projection p
    b_ptrs = b_ptr + w * stride_bl + (col0 + rn)[None, :].to(tl.int64) * stride_bn + rr[:, None]
    y_ptrs = y_ptr + rm[:, None].to(tl.int64) * stride_yt + (col0 + rn)[None, :]
    b_ptrs += split * BLOCK_N * stride_bn
    y_ptrs += split * BLOCK_N
    for n0 in range(split * BLOCK_N, n_cols, N_SPLIT * BLOCK_N):
        if EVEN_N:
            bt = tl.load(b_ptrs) if EVEN_R else tl.load(b_ptrs, mask=r_mask[:, None], other=0.0)
            o_mask = m_mask[:, None]
        else:
            n_mask = rn < n_cols - n0
            bt = tl.load(b_ptrs, mask=r_mask[:, None] & n_mask[None, :], other=0.0)
            o_mask = m_mask[:, None] & n_mask[None, :]
        if CAST_FP32:
            bt = bt.to(tl.float32)
        out = tl.dot(t_hi, bt)
        if TWO_TERM:
            out = tl.dot(t_lo, bt, out)
        out = out * scale
        if ACCUMULATE:
            out += tl.load(y_ptrs, mask=o_mask, other=0.0).to(tl.float32)
        tl.store(y_ptrs, out.to(y_ptr.dtype.element_ty), mask=o_mask)
        b_ptrs += N_SPLIT * BLOCK_N * stride_bn
        y_ptrs += N_SPLIT * BLOCK_N


@triton.jit
def _fused_gemv_kernel(
    # pointers
    x_ptr, a_ptr, b_ptr, y_ptr, seg_indptr_ptr, weight_idx_ptr, proj_offsets_ptr,
    # dimensions
    K, R,
    # strides (innermost strides are 1: operands are contiguous)
    stride_xt, stride_al, stride_ar, stride_bl, stride_bn, stride_yt,
    # scalars
    scale,
    # meta-parameters
    BLOCK_T: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
    N_SPLIT: tl.constexpr, EVEN_K: tl.constexpr, EVEN_N: tl.constexpr, EVEN_R: tl.constexpr,
    COL_ALIGN: tl.constexpr, ACCUMULATE: tl.constexpr, ROUND_INTER: tl.constexpr,
):  # fmt: skip
    pid_ps = tl.program_id(0)
    seg = tl.program_id(1)
    p = pid_ps // N_SPLIT
    split = pid_ps % N_SPLIT
    col0 = tl.load(proj_offsets_ptr + p)
    n_cols = tl.load(proj_offsets_ptr + p + 1) - col0
    if COL_ALIGN > 1:  # every projection offset and width is a multiple of COL_ALIGN: vectorised y accesses
        col0 = tl.multiple_of(col0, COL_ALIGN)
        n_cols = tl.multiple_of(n_cols, COL_ALIGN)
    start, end, w = load_segment(seg_indptr_ptr, weight_idx_ptr, seg)
    # a narrower projection (no column tile left for this split) or an empty segment
    if (split * BLOCK_N >= n_cols) | (start >= end):
        return
    rt = tl.arange(0, BLOCK_T)
    rk = tl.arange(0, BLOCK_K)
    rr = tl.arange(0, BLOCK_R)
    rn = tl.arange(0, BLOCK_N)
    r_mask = rr < R
    # operands are loaded straight into 3-D shapes, so the broadcast products need no layout conversion
    # of the weight tiles: A as [1, R, BLOCK_K] and B as [1, BLOCK_N, R], both contiguous along the last axis
    a_base = a_ptr + w * stride_al + (p * R + rr)[None, :, None] * stride_ar + rk[None, None, :]
    ncol = col0 + split * BLOCK_N + rn
    b_base = b_ptr + w * stride_bl + ncol[None, :, None].to(tl.int64) * stride_bn + rr[None, None, :]
    a_mask = r_mask[None, :, None]
    b_mask = r_mask[None, None, :]
    for t0 in range(start, end, BLOCK_T):
        rows = t0 + rt
        t_mask = rows < end
        # shrink: t[BLOCK_T, BLOCK_R] = sum over K of x[:, None, :] * A[None, :, :]
        x_ptrs = x_ptr + rows[:, None, None].to(tl.int64) * stride_xt + rk[None, None, :]
        x_mask = t_mask[:, None, None]
        a_ptrs = a_base
        acc = tl.zeros((BLOCK_T, BLOCK_R), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            if EVEN_K:  # one token per group (BLOCK_T = 1) is always inside the segment: no mask
                xt = tl.load(x_ptrs) if BLOCK_T == 1 else tl.load(x_ptrs, mask=x_mask, other=0.0)
                at = tl.load(a_ptrs) if EVEN_R else tl.load(a_ptrs, mask=a_mask, other=0.0)
            else:
                k_mask = (rk < K - k0)[None, None, :]
                xt = tl.load(x_ptrs, mask=x_mask & k_mask, other=0.0)
                at = tl.load(a_ptrs, mask=a_mask & k_mask, other=0.0)
            acc += tl.sum(xt.to(tl.float32) * at.to(tl.float32), axis=2)
            x_ptrs += BLOCK_K
            a_ptrs += BLOCK_K
        if ROUND_INTER:
            acc = acc.to(x_ptr.dtype.element_ty).to(tl.float32)
        t3 = (acc * scale)[:, None, :]

        # expand: y[rows, tile] (+)= sum over R of t[:, None, :] * B[None, tile, :]
        b_ptrs = b_base
        y_ptrs = y_ptr + rows[:, None].to(tl.int64) * stride_yt + ncol[None, :]
        for n0 in range(split * BLOCK_N, n_cols, N_SPLIT * BLOCK_N):
            if EVEN_N:
                bt = tl.load(b_ptrs) if EVEN_R else tl.load(b_ptrs, mask=b_mask, other=0.0)
                o_mask = t_mask[:, None]
            else:
                n_mask = rn < n_cols - n0
                bt = tl.load(b_ptrs, mask=b_mask & n_mask[None, :, None], other=0.0)
                o_mask = t_mask[:, None] & n_mask[None, :]
            out = tl.sum(t3 * bt.to(tl.float32), axis=2)
            if ACCUMULATE:
                out += tl.load(y_ptrs, mask=o_mask, other=0.0).to(tl.float32)
            tl.store(y_ptrs, out.to(y_ptr.dtype.element_ty), mask=o_mask)
            b_ptrs += N_SPLIT * BLOCK_N * stride_bn
            y_ptrs += N_SPLIT * BLOCK_N


def _args(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, scale: float,
) -> tuple:  # fmt: skip
    """Arguments of the fused kernels in their shared order: pointers, dimensions, strides, scale."""
    pointers = (x, a, b, y, seg_indptr, weight_indices, proj_offsets)
    strides = (x.stride(0), a.stride(0), a.stride(1), b.stride(0), b.stride(1), y.stride(0))
    return (*pointers, x.shape[1], b.shape[2], *strides, float(scale))


def bind_tile_dot(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int,
    scale: float, accumulate: bool, inter_dtype: torch.dtype, config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """fused/tile/dot: grid (P x N_SPLIT, row tiles (``row_tile_grid``), segments); tl.dot twice.
    ``inter_dtype`` is the intermediate's dtype (fp32 or the input dtype: it is rounded to that)."""
    bm, bk, bn, n_split = (int(config[k]) for k in ("BLOCK_M", "BLOCK_K", "BLOCK_N", "N_SPLIT"))
    K, rank = x.shape[1], b.shape[2]
    br = max(16, triton.next_power_of_2(rank))
    segs, rows, flat = row_tile_grid(x.shape[0], weight_indices.shape[0], max_seg_len, bm)
    grid = (len(h_outs) * n_split, rows, segs)
    args = (*_args(x, a, b, y, seg_indptr, weight_indices, proj_offsets, scale), weight_indices.shape[0])
    meta = dict(
        FLAT_SEGS=flat,
        BLOCK_M=bm,
        BLOCK_K=bk,
        BLOCK_N=bn,
        BLOCK_R=br,
        N_SPLIT=n_split,
        EVEN_K=K % bk == 0,
        EVEN_N=all(h % bn == 0 for h in h_outs),
        EVEN_R=rank == br,
        COL_ALIGN=col_align(h_outs),
        ACCUMULATE=accumulate,
        TWO_TERM=inter_dtype == torch.float32 and x.dtype != torch.float32,
        CAST_FP32=dot_cast_fp32(x),
        **launch_opts(config),
    )

    def run() -> None:
        _fused_tile_kernel[grid](*args, **meta)

    return run


def bind_gemv(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int,
    scale: float, accumulate: bool, inter_dtype: torch.dtype, config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """fused/gemv/fma: grid (P x N_SPLIT, segments); each program walks its segment BLOCK_T tokens at a time."""
    bt, bk, bn, n_split = (int(config[k]) for k in ("BLOCK_T", "BLOCK_K", "BLOCK_N", "N_SPLIT"))
    K, rank = x.shape[1], b.shape[2]
    br = triton.next_power_of_2(rank)
    grid = (len(h_outs) * n_split, weight_indices.shape[0])
    args = _args(x, a, b, y, seg_indptr, weight_indices, proj_offsets, scale)
    meta = dict(
        BLOCK_T=bt,
        BLOCK_K=bk,
        BLOCK_N=bn,
        BLOCK_R=br,
        N_SPLIT=n_split,
        EVEN_K=K % bk == 0,
        EVEN_N=all(h % bn == 0 for h in h_outs),
        EVEN_R=rank == br,
        COL_ALIGN=col_align(h_outs),
        ACCUMULATE=accumulate,
        ROUND_INTER=inter_dtype != torch.float32,
        **launch_opts(config),
    )

    def run() -> None:
        _fused_gemv_kernel[grid](*args, **meta)

    return run
