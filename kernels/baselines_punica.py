"""Baseline: Punica's fixed SGMV choices (punica-ai/punica HEAD 591b598), re-expressed in Triton.

Clean-room reproduction from the documented behaviour (shared/reference/sgmv-kernels.md, 1.2 and 1.3); no
Punica code. Semantics as ``scenario.py``: shrink ``v (+)= scale * x @ A[w]^T``, expand
``y (+)= scale * v @ B[w]^T``, fused ``y (+)= scale * (x @ A[w]^T) @ B[w]^T``.

What is reproduced:

- shrink, ranks 16..128 (Punica's custom FlashInfer-style kernel): split-K over chunks of 256 of ``h_in``,
  grid ``(num_chunks, num_segments)``, 4 warps, 2 stages, the whole rank in one tile (BLOCK_N is the rank
  padded to a power of two), K consumed 128 at a time (8 k-fragments of 16 per stage); each program walks
  its segment in 64-row steps (``num_warps * 16``), padding rows masked. Punica reduces the chunks in the
  same cooperative launch after ``grid.sync()``; Triton has no grid-wide barrier, so here it is two
  launches: partial sums into an fp32 workspace ``[num_chunks, T, r]`` (allocated in ``bind``), then a
  reduce kernel with one program per segment (as Punica's chunk-0 CTA) that sums the chunks, applies the
  scale and accumulates into or overwrites ``v``. The cliff is kept: when ``num_chunks * num_segments``
  exceeds ``SMs * resident CTAs per SM`` (the SM count of the tensors' GPU; the H200's 132 on a CPU), with
  the residency from Punica's shared-memory footprint ``2 * sizeof(T) * 8 * 16 * 16 * (4 + r/16)`` bytes
  against 228 KiB per SM (and at most 16 CTAs of 128 threads), it falls back to one program per segment
  over the whole of K (no split, one launch).
- shrink, rank < 16 (Punica has no custom kernel there; it uses its cutlass grouped GEMM): a tile
  ``tl.dot`` with cutlass's shrink threadblock, BLOCK_M=16, BLOCK_N=64, BLOCK_K=64, 4 warps, 2 stages,
  one program per (segment, row tile, column tile) over the whole of K. Ranks above 128 (outside the
  custom kernel's instantiations) take the same path.
- expand (cutlass grouped GEMM, ``GemmShape<32,128,16>``, warp 32x64, 2 stages): one program per
  (segment, row tile, column tile), BLOCK_M=32, BLOCK_N=128, BLOCK_K=16, 2 warps, 2 stages.
- fused, as ``add_lora_sgmv_custom_cutlass``: zero the rank-r intermediate, shrink into it (accumulating,
  as Punica's shrink always does), expand from it; launches in sequence in the closure.
- Punica calls its ops once per projection (Llama's q, k, v, ... are separate calls): with P > 1 every
  launch above is repeated per projection (for shrink, projection ``p`` writes columns ``p*r:(p+1)*r``).

Where it departs, and why:

- Punica has no scale: it is applied where our semantics need it (shrink epilogue or reduce; expand
  epilogue for the expand op; in fused, once, in the shrink, like the other kernels).
- Punica always accumulates (``y +=``); ``s.accumulate=False`` overwrites in the same epilogue.
- Punica supports fp16/bf16 only; fp32 runs through the same kernels (tf32 dots on the GPU). Its
  intermediate is the input dtype; here it is ``v``'s dtype (``inter_dtype`` in fused), and an fp32
  intermediate is cast to the weights' dtype before the expand's dot (cutlass needs both operands in one dtype).
- cutlass's grouped GEMM is persistent (512 CTAs walking the problems' tiles); here it is one program per
  tile, with programs beyond a segment's rows returning at once.
- Punica's shrink reads A transposed as ``[L, r, h_in]`` (the custom kernel) or ``[L, h_in, r]``
  (cutlass); ours is always ``[L, P*r, h_in]``, K-contiguous.
- the cooperative limit counts shared memory only (Punica asks the driver, which also counts registers).

Tested in the Triton interpreter (fp32, fp16, bf16; one-token to long segments; ranks 8..128; K not a
multiple of the blocks; P = 1..3 with different widths; accumulate both ways; inter fp32 and input; the
split and the fallback shrink) against ``reference_loop``; compiled ahead of time for sm_90 (no register
spills except the custom shrink at ranks 96 and 128, whose 64x128 fp32 tile spills up to 120 bytes at
16-bit and 280 bytes at fp32, as Punica's own 16x128-per-warp accumulator is just as large).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
import triton
import triton.language as tl

from ._common import cdiv, dot_cast_fp32

# Punica's fixed choices.
CHUNK = 256  # split-K chunk of the custom shrink
CUSTOM_WARPS = 4
CUSTOM_ROWS = 16 * CUSTOM_WARPS  # rows per step of the custom shrink
CUSTOM_BLOCK_K = 8 * 16  # k-fragments per pipeline stage
SMEM_PER_SM = 228 * 1024
MAX_THREADS_PER_SM = 2048
H200_SMS = 132  # the cooperative limit's SM count when the tensors are not on a GPU (the interpreter)
CUTLASS_SHRINK = dict(BLOCK_M=16, BLOCK_N=64, BLOCK_K=64, num_warps=4, num_stages=2)
CUTLASS_EXPAND = dict(BLOCK_M=32, BLOCK_N=128, BLOCK_K=16, num_warps=2, num_stages=2)


@triton.jit
def _punica_shrink_kernel(
    # pointers
    x_ptr,
    a_ptr,
    out_ptr,
    seg_indptr_ptr,
    weight_idx_ptr,
    # dimensions
    K,
    N,
    chunk,
    a_row0,
    out_col0,
    # strides (innermost strides are 1: operands are contiguous)
    stride_xt,
    stride_al,
    stride_an,
    stride_oc,
    stride_ot,
    # scalars
    scale,
    # meta-parameters
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    EVEN_K: tl.constexpr,
    SPLIT: tl.constexpr,
    ACCUMULATE: tl.constexpr,
    CAST_FP32: tl.constexpr,
):
    pid_c = tl.program_id(0)
    seg = tl.program_id(1)
    start = tl.load(seg_indptr_ptr + seg)
    end = tl.load(seg_indptr_ptr + seg + 1)
    w = tl.load(weight_idx_ptr + seg).to(tl.int64)
    k_lo = pid_c * chunk
    k_hi = tl.minimum(k_lo + chunk, K)
    rn = tl.arange(0, BLOCK_N)
    n_mask = rn < N
    a_base = a_ptr + w * stride_al + (a_row0 + rn)[None, :].to(tl.int64) * stride_an
    out_base = out_ptr + pid_c.to(tl.int64) * stride_oc + out_col0 + rn[None, :]
    for m0 in range(start, end, BLOCK_M):
        rm = m0 + tl.arange(0, BLOCK_M)
        m_mask = rm < end
        x_base = x_ptr + rm[:, None].to(tl.int64) * stride_xt
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(k_lo, k_hi, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            if EVEN_K:
                xt = tl.load(x_base + rk[None, :], mask=m_mask[:, None], other=0.0)
                at = tl.load(a_base + rk[:, None], mask=n_mask[None, :], other=0.0)
            else:
                k_mask = rk < K
                xt = tl.load(x_base + rk[None, :], mask=m_mask[:, None] & k_mask[None, :], other=0.0)
                at = tl.load(a_base + rk[:, None], mask=n_mask[None, :] & k_mask[:, None], other=0.0)
            if CAST_FP32:
                xt = xt.to(tl.float32)
                at = at.to(tl.float32)
            acc += tl.dot(xt, at)
        o_ptrs = out_base + rm[:, None].to(tl.int64) * stride_ot
        o_mask = m_mask[:, None] & n_mask[None, :]
        if SPLIT:
            tl.store(o_ptrs, acc, mask=o_mask)
        else:
            acc = acc * scale
            if ACCUMULATE:
                acc += tl.load(o_ptrs, mask=o_mask, other=0.0).to(tl.float32)
            tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=o_mask)


@triton.jit
def _punica_reduce_kernel(
    # pointers
    ws_ptr,
    out_ptr,
    seg_indptr_ptr,
    # dimensions
    N,
    num_chunks,
    out_col0,
    # strides
    stride_wc,
    stride_wt,
    stride_ot,
    # scalars
    scale,
    # meta-parameters
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ACCUMULATE: tl.constexpr,
):
    seg = tl.program_id(0)
    start = tl.load(seg_indptr_ptr + seg)
    end = tl.load(seg_indptr_ptr + seg + 1)
    rn = tl.arange(0, BLOCK_N)
    n_mask = rn < N
    for m0 in range(start, end, BLOCK_M):
        rm = (m0 + tl.arange(0, BLOCK_M)).to(tl.int64)
        mask = (rm < end)[:, None] & n_mask[None, :]
        w_ptrs = ws_ptr + rm[:, None] * stride_wt + rn[None, :]
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for _ in range(0, num_chunks):
            acc += tl.load(w_ptrs, mask=mask, other=0.0)
            w_ptrs += stride_wc
        acc = acc * scale
        o_ptrs = out_ptr + rm[:, None] * stride_ot + out_col0 + rn[None, :]
        if ACCUMULATE:
            acc += tl.load(o_ptrs, mask=mask, other=0.0).to(tl.float32)
        tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _punica_cutlass_kernel(
    # pointers
    in_ptr,
    w_ptr,
    out_ptr,
    seg_indptr_ptr,
    weight_idx_ptr,
    # dimensions
    K,
    N,
    in_col0,
    w_row0,
    out_col0,
    # strides (innermost strides are 1: operands are contiguous)
    stride_it,
    stride_wl,
    stride_wn,
    stride_ot,
    # scalars
    scale,
    # meta-parameters
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    EVEN_K: tl.constexpr,
    ACCUMULATE: tl.constexpr,
    CAST_FP32: tl.constexpr,
):
    """One grouped-GEMM tile: ``out[seg rows, out_col0 + n] (+)= scale * in[rows, in_col0 + k] @
    W[w, w_row0 + n, k]^T`` (cutlass's shrink for small ranks, and its expand)."""
    seg = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_n = tl.program_id(2)
    start = tl.load(seg_indptr_ptr + seg)
    end = tl.load(seg_indptr_ptr + seg + 1)
    row0 = start + pid_m * BLOCK_M
    if row0 >= end:
        return
    w = tl.load(weight_idx_ptr + seg).to(tl.int64)
    rm = row0 + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    m_mask = rm < end
    n_mask = rn < N
    in_ptrs = in_ptr + rm[:, None].to(tl.int64) * stride_it + in_col0 + rk[None, :]
    w_ptrs = w_ptr + w * stride_wl + (w_row0 + rn)[None, :].to(tl.int64) * stride_wn + rk[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        if EVEN_K:
            it = tl.load(in_ptrs, mask=m_mask[:, None], other=0.0)
            wt = tl.load(w_ptrs, mask=n_mask[None, :], other=0.0)
        else:
            k_mask = rk < K - k0
            it = tl.load(in_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
            wt = tl.load(w_ptrs, mask=n_mask[None, :] & k_mask[:, None], other=0.0)
        it = it.to(w_ptr.dtype.element_ty)  # an fp32 intermediate takes the weights' dtype
        if CAST_FP32:
            it = it.to(tl.float32)
            wt = wt.to(tl.float32)
        acc += tl.dot(it, wt)
        in_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    acc = acc * scale
    o_ptrs = out_ptr + rm[:, None].to(tl.int64) * stride_ot + out_col0 + rn[None, :]
    o_mask = m_mask[:, None] & n_mask[None, :]
    if ACCUMULATE:
        acc += tl.load(o_ptrs, mask=o_mask, other=0.0).to(tl.float32)
    tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=o_mask)


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def uses_custom_shrink(rank: int) -> bool:
    """Punica's custom shrink is instantiated for ranks 16..128; other ranks go through cutlass."""
    return 16 <= rank <= 128


def custom_shrink_splits(rank: int, elem_bytes: int, h_in: int, num_segments: int, num_sms: int) -> bool:
    """Whether the custom shrink's cooperative split-K grid fits the GPU's ``num_sms`` at once (else: no
    split)."""
    d_out = cdiv(rank, 16) * 16
    smem = 2 * elem_bytes * 8 * 16 * 16 * (CUSTOM_WARPS + d_out // 16)
    per_sm = min(SMEM_PER_SM // smem, MAX_THREADS_PER_SM // (32 * CUSTOM_WARPS))
    return cdiv(h_in, CHUNK) * num_segments <= num_sms * per_sm


def device_sms(t: torch.Tensor) -> int:
    """The SM count of ``t``'s GPU (``H200_SMS`` for a CPU tensor)."""
    return torch.cuda.get_device_properties(t.device).multi_processor_count if t.is_cuda else H200_SMS


Launch = Callable[[], None]


class _Segments(NamedTuple):
    seg_indptr: torch.Tensor
    weight_indices: torch.Tensor
    max_seg_len: int


def _cutlass_launch(
    segs: _Segments,
    inp: torch.Tensor,
    w: torch.Tensor,
    out: torch.Tensor,
    K: int,
    N: int,
    cols: tuple[int, int, int],
    scale: float,
    accumulate: bool,
    cfg: Mapping[str, int],
) -> Launch:
    """One cutlass-style grouped GEMM: ``out[:, c_out:c_out+N] (+)= scale * inp[:, c_in:c_in+K] @
    w[:, r_w:r_w+N, :K]^T`` per segment, with ``cols = (c_in, r_w, c_out)``."""
    bm, bn, bk = cfg["BLOCK_M"], cfg["BLOCK_N"], cfg["BLOCK_K"]
    grid = (segs.weight_indices.shape[0], cdiv(segs.max_seg_len, bm), cdiv(N, bn))
    args = (inp, w, out, segs.seg_indptr, segs.weight_indices, K, N, *cols)
    args += (inp.stride(0), w.stride(0), w.stride(1), out.stride(0), float(scale))
    kw = dict(
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
        EVEN_K=K % bk == 0,
        ACCUMULATE=accumulate,
        CAST_FP32=dot_cast_fp32(w),
        num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"],
    )

    def launch() -> None:
        _punica_cutlass_kernel[grid](*args, **kw)

    return launch


def _shrink_launches(
    segs: _Segments,
    x: torch.Tensor,
    a: torch.Tensor,
    rank: int,
    p: int,
    out: torch.Tensor,
    out_col0: int,
    scale: float,
    accumulate: bool,
    ws: torch.Tensor | None,
) -> list[Launch]:
    """Punica's shrink of projection ``p`` into ``out[:, out_col0:out_col0+r]``; ``ws`` is the split-K
    workspace ``[num_chunks, T, r]`` (None: the launch must not split)."""
    K, r, S = x.shape[1], rank, segs.weight_indices.shape[0]
    if not uses_custom_shrink(r):
        return [_cutlass_launch(segs, x, a, out, K, r, (0, p * r, out_col0), scale, accumulate, CUTLASS_SHRINK)]
    bn = _next_pow2(r)
    common = dict(
        BLOCK_M=CUSTOM_ROWS,
        BLOCK_N=bn,
        BLOCK_K=CUSTOM_BLOCK_K,
        EVEN_K=K % CUSTOM_BLOCK_K == 0,
        ACCUMULATE=accumulate,
        CAST_FP32=dot_cast_fp32(x),
        num_warps=CUSTOM_WARPS,
        num_stages=2,
    )
    strides = (x.stride(0), a.stride(0), a.stride(1))
    if ws is None:
        args = (x, a, out, segs.seg_indptr, segs.weight_indices, K, r, K, p * r, out_col0, *strides)
        args += (0, out.stride(0), float(scale))
        grid = (1, S)

        def whole() -> None:
            _punica_shrink_kernel[grid](*args, SPLIT=False, **common)

        return [whole]

    num_chunks = ws.shape[0]
    args = (x, a, ws, segs.seg_indptr, segs.weight_indices, K, r, CHUNK, p * r, 0, *strides)
    args += (ws.stride(0), ws.stride(1), 1.0)
    grid = (num_chunks, S)
    red_args = (ws, out, segs.seg_indptr, r, num_chunks, out_col0, ws.stride(0), ws.stride(1), out.stride(0))
    red_args += (float(scale),)
    red_grid = (S,)

    def partials() -> None:
        _punica_shrink_kernel[grid](*args, SPLIT=True, **common)

    def reduce() -> None:
        _punica_reduce_kernel[red_grid](
            *red_args, BLOCK_M=CUSTOM_ROWS, BLOCK_N=bn, ACCUMULATE=accumulate, num_warps=CUSTOM_WARPS
        )

    return [partials, reduce]


def _workspace(x: torch.Tensor, rank: int, num_segments: int) -> torch.Tensor | None:
    """The custom shrink's fp32 partial sums ``[num_chunks, T, r]``, or None when it will not split."""
    T, K = x.shape
    if not uses_custom_shrink(rank):
        return None
    if not custom_shrink_splits(rank, x.element_size(), K, num_segments, device_sms(x)):
        return None
    return torch.empty((cdiv(K, CHUNK), T, rank), dtype=torch.float32, device=x.device)


def _expand_launch(
    segs: _Segments,
    b: torch.Tensor,
    y: torch.Tensor,
    h_outs: tuple[int, ...],
    p: int,
    inp: torch.Tensor,
    in_col0: int,
    scale: float,
    accumulate: bool,
) -> Launch:
    """Punica's expand of projection ``p``: ``y[:, off_p:off_p+h_p] (+)= scale * inp[:, c:c+r] @ B^T``."""
    col0 = sum(h_outs[:p])
    cols = (in_col0, col0, col0)
    return _cutlass_launch(segs, inp, b, y, b.shape[2], h_outs[p], cols, scale, accumulate, CUTLASS_EXPAND)


def _run_all(launches: list[Launch]) -> Callable[[], None]:
    def run() -> None:
        for launch in launches:
            launch()

    return run


def bind_shrink(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
) -> Callable[[], None]:  # fmt: skip
    """shrink/baseline/punica: per projection, the custom split-K shrink (partials + reduce), its no-split
    fallback, or the cutlass tile for small ranks."""
    segs = _Segments(seg_indptr, weight_indices, max(seg_lens))
    rank = a.shape[1] // len(h_outs)
    ws = _workspace(x, rank, len(seg_lens))
    launches: list[Launch] = []
    for p in range(len(h_outs)):
        launches += _shrink_launches(segs, x, a, rank, p, v, p * rank, scale, accumulate, ws)
    return _run_all(launches)


def bind_expand(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
) -> Callable[[], None]:  # fmt: skip
    """expand/baseline/punica: per projection, the cutlass 32x128x16 grouped GEMM."""
    segs = _Segments(seg_indptr, weight_indices, max(seg_lens))
    rank = b.shape[2]
    launches = [_expand_launch(segs, b, y, h_outs, p, v, p * rank, scale, accumulate) for p in range(len(h_outs))]
    return _run_all(launches)


def bind_fused(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, seg_lens: Sequence[int], h_outs: tuple[int, ...],
    scale: float, accumulate: bool, inter_dtype: torch.dtype,
) -> Callable[[], None]:  # fmt: skip
    """fused/baseline/punica (``add_lora_sgmv_custom_cutlass``), per projection: zero the rank-r
    intermediate, shrink into it with the scale, expand from it."""
    segs = _Segments(seg_indptr, weight_indices, max(seg_lens))
    rank = b.shape[2]
    ws = _workspace(x, rank, len(seg_lens))
    tmp = torch.empty((x.shape[0], rank), dtype=inter_dtype, device=x.device)

    def zero() -> None:
        tmp.zero_()

    steps: list[Launch] = []
    for p in range(len(h_outs)):
        steps.append(zero)
        steps += _shrink_launches(segs, x, a, rank, p, tmp, 0, scale, True, ws)
        steps.append(_expand_launch(segs, b, y, h_outs, p, tmp, 0, 1.0, accumulate))
    return _run_all(steps)
