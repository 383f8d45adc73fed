"""Baseline: SGLang's chunked SGMV LoRA backend (``csgmv``, its default), re-expressed in Triton.

Clean-room reproduction from the documented behaviour (shared/reference/sgmv-kernels.md, 3, and a reading of
SGLang's csgmv backend); no SGLang code. Semantics as ``scenario.py``: shrink ``v (+)= scale * x @ A[w]^T``,
expand ``y (+)= scale * v @ B[w]^T``, fused ``y (+)= scale * (x @ A[w]^T) @ B[w]^T``.

What is reproduced:

- Batch layout (built in ``bind``, as SGLang's ``prepare_lora_batch`` builds it on the host): each token takes
  its segment's adapter; a stable sort by adapter gives the permutation (tokens are not moved: the kernels
  gather and scatter rows through it); each run of one adapter is cut into chunks of at most 16 tokens (the
  server default ``max_lora_chunk_size=16``; BLOCK_M is the chunk size), one kernel segment per chunk.
- shrink: grid ``(cdiv(P*r, BLOCK_N), chunks)``, BLOCK_N 16, BLOCK_K 256, no split-K: each program walks the
  whole of K for its chunk's 16-row tile (rows past the chunk masked) and one 16-column tile of the stacked
  ``A[w]``; Triton's default 4 warps and 3 stages; the fp32 accumulator is rounded to the intermediate's
  dtype and stored (no zeroing launch: SGLang's buffer is ``torch.empty``); no scale in shrink.
- expand: grid ``(cdiv(max h_p, BLOCK_N), P, chunks)``, BLOCK_N 64, BLOCK_K 16; programs past their slice's
  width return; the accumulator is multiplied by the adapter's scaling, rounded to the output dtype, and the
  old output is added in that dtype (SGLang adds into the base layer's output in place).
- fused (the LoRA delta as SGLang runs it): a 16-bit ``[T, P*r]`` buffer (allocated in ``bind``), shrink into
  it, expand from it: two launches.

Where it departs, and why:

- SGLang computes each adapter at its own rank (``lora_ranks``); every adapter of a scenario has the same
  rank, so the rank is a kernel argument here, and the scaling one float (SGLang loads it per adapter).
- the shrink op's semantics include the scale and ``accumulate``: with the shrink alone, the scale is applied
  in its epilogue and the old ``v`` added when accumulating (SGLang's shrink overwrites, unscaled); in fused
  the scale is applied once, in expand, as SGLang does. An expand without ``accumulate`` overwrites ``y``.
- the intermediate is ``v``'s dtype for the ops alone (an fp32 ``v`` is cast to the weights' dtype before
  the expand's dot); SGLang's is always the input dtype, as in fused here.

Tested in the Triton interpreter (fp32, fp16, bf16; one-token to long segments, chunks cut at 16; ranks
8..128; K not a multiple of the blocks; P = 1..3 with different widths; accumulate both ways; inter fp32
and input) against ``reference_loop``; compiled ahead of time for sm_90. Timed on an H200 beside the real
kernels' times: ``bench/baselines_vs_reference.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import triton
import triton.language as tl

from ._common import cdiv, dot_cast_fp32

CHUNK = 16  # max_lora_chunk_size, SGLang's server default; BLOCK_M of both kernels
SHRINK = dict(BLOCK_N=16, BLOCK_K=256, num_warps=4, num_stages=3)
EXPAND = dict(BLOCK_N=64, BLOCK_K=16, num_warps=4, num_stages=3)


@triton.jit
def _csgmv_shrink_kernel(
    # pointers
    x_ptr,
    a_ptr,
    out_ptr,
    seg_ptr,
    widx_ptr,
    perm_ptr,
    # dimensions
    K,
    N,
    # strides (innermost strides are 1: operands are contiguous)
    stride_xt,
    stride_al,
    stride_an,
    stride_ot,
    # scalars
    scale,
    # meta-parameters
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    ACCUMULATE: tl.constexpr,
    CAST_FP32: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_s = tl.program_id(1)
    seg_start = tl.load(seg_ptr + pid_s)
    seg_end = tl.load(seg_ptr + pid_s + 1)
    w = tl.load(widx_ptr + pid_s)
    offs_m = seg_start + tl.arange(0, BLOCK_M)
    row_in = offs_m < seg_end
    rows = tl.load(perm_ptr + offs_m, mask=row_in, other=0)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_in = offs_n < N
    rk = tl.arange(0, BLOCK_K)
    x_ptrs = x_ptr + rows[:, None] * stride_xt + rk[None, :]
    a_ptrs = a_ptr + w * stride_al + offs_n[None, :] * stride_an + rk[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for step in range(0, tl.cdiv(K, BLOCK_K)):
        k_in = rk < K - step * BLOCK_K
        xt = tl.load(x_ptrs, mask=row_in[:, None] & k_in[None, :], other=0.0)
        at = tl.load(a_ptrs, mask=k_in[:, None] & col_in[None, :], other=0.0)
        if CAST_FP32:
            xt = xt.to(tl.float32)
            at = at.to(tl.float32)
        acc += tl.dot(xt, at)
        x_ptrs += BLOCK_K
        a_ptrs += BLOCK_K
    o_ptrs = out_ptr + rows[:, None] * stride_ot + offs_n[None, :]
    o_mask = row_in[:, None] & col_in[None, :]
    acc = acc * scale
    if ACCUMULATE:
        acc += tl.load(o_ptrs, mask=o_mask, other=0.0).to(tl.float32)
    tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=o_mask)


@triton.jit
def _csgmv_expand_kernel(
    # pointers
    v_ptr,
    b_ptr,
    y_ptr,
    seg_ptr,
    widx_ptr,
    perm_ptr,
    proj_off_ptr,
    # dimensions
    R,
    # strides (innermost strides are 1: operands are contiguous)
    stride_vt,
    stride_bl,
    stride_bh,
    stride_yt,
    # scalars
    scale,
    # meta-parameters
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    ACCUMULATE: tl.constexpr,
    CAST_FP32: tl.constexpr,
):
    pid_n = tl.program_id(0)
    slice_id = tl.program_id(1)
    pid_s = tl.program_id(2)
    n_start = tl.load(proj_off_ptr + slice_id)
    n_end = tl.load(proj_off_ptr + slice_id + 1)
    if pid_n * BLOCK_N >= n_end - n_start:
        return
    seg_start = tl.load(seg_ptr + pid_s)
    seg_end = tl.load(seg_ptr + pid_s + 1)
    w = tl.load(widx_ptr + pid_s)
    offs_m = seg_start + tl.arange(0, BLOCK_M)
    row_in = offs_m < seg_end
    rows = tl.load(perm_ptr + offs_m, mask=row_in, other=0)
    cols = n_start + pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_in = cols < n_end
    rk = tl.arange(0, BLOCK_K)
    v_ptrs = v_ptr + rows[:, None] * stride_vt + (slice_id * R + rk)[None, :]
    b_ptrs = b_ptr + w * stride_bl + cols[None, :] * stride_bh + rk[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for step in range(0, tl.cdiv(R, BLOCK_K)):
        k_in = rk < R - step * BLOCK_K
        vt = tl.load(v_ptrs, mask=row_in[:, None] & k_in[None, :], other=0.0).to(b_ptr.dtype.element_ty)
        bt = tl.load(b_ptrs, mask=k_in[:, None] & col_in[None, :], other=0.0)
        if CAST_FP32:
            vt = vt.to(tl.float32)
            bt = bt.to(tl.float32)
        acc += tl.dot(vt, bt)
        v_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    tile = (acc * scale).to(y_ptr.dtype.element_ty)
    y_ptrs = y_ptr + rows[:, None] * stride_yt + cols[None, :]
    y_mask = row_in[:, None] & col_in[None, :]
    if ACCUMULATE:
        # the rounded tile plus the old output, rounded once: a 16-bit add (computed in fp32, which the
        # interpreter needs: its bf16 arithmetic is wrong)
        old = tl.load(y_ptrs, mask=y_mask, other=0.0).to(tl.float32)
        tile = (tile.to(tl.float32) + old).to(y_ptr.dtype.element_ty)
    tl.store(y_ptrs, tile, mask=y_mask)


def chunked_batch(
    seg_lens: list[int], seg_adapters: list[int], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SGLang's batch layout: (chunk offsets ``[C+1]``, chunk adapters ``[C]``, token permutation ``[T]``),
    int32 on ``device``; tokens stably sorted by adapter, each adapter's run cut into chunks of ``CHUNK``."""
    mapping = [a for a, n in zip(seg_adapters, seg_lens, strict=True) for _ in range(n)]
    perm = sorted(range(len(mapping)), key=lambda t: mapping[t])
    offsets, adapters = [0], []
    t = 0
    while t < len(perm):
        a = mapping[perm[t]]
        run = 0
        while t + run < len(perm) and mapping[perm[t + run]] == a:
            run += 1
        for c in range(0, run, CHUNK):
            offsets.append(t + min(run, c + CHUNK))
            adapters.append(a)
        t += run

    def i32(vals: list[int]) -> torch.Tensor:
        return torch.tensor(vals, dtype=torch.int32, device=device)

    return i32(offsets), i32(adapters), i32(perm)


def csgmv_shrink(
    x: torch.Tensor,
    a: torch.Tensor,
    out: torch.Tensor,
    batch: tuple[torch.Tensor, ...],
    scale: float,
    accumulate: bool,
) -> Callable[[], None]:
    """A launcher of the chunked shrink: ``out[t] (+)= scale * x[t] @ A[w(t)]^T``, ``a[L, N, K]``, ``out[T, N]``."""
    seg, widx, perm = batch
    K, N = x.shape[1], a.shape[1]
    grid = (cdiv(N, SHRINK["BLOCK_N"]), widx.numel())
    args = (x, a, out, seg, widx, perm, K, N, x.stride(0), a.stride(0), a.stride(1), out.stride(0), float(scale))
    kw = dict(SHRINK, BLOCK_M=CHUNK, ACCUMULATE=accumulate, CAST_FP32=dot_cast_fp32(x))

    def launch() -> None:
        _csgmv_shrink_kernel[grid](*args, **kw)

    return launch


def csgmv_expand(
    v: torch.Tensor,
    b: torch.Tensor,
    y: torch.Tensor,
    batch: tuple[torch.Tensor, ...],
    proj_offsets: torch.Tensor,
    h_outs: tuple[int, ...],
    scale: float,
    accumulate: bool,
) -> Callable[[], None]:
    """A launcher of the chunked expand: ``y[t, off_p:off_p+h_p] (+)= scale * v[t, p*r:(p+1)*r] @ B[w(t),
    off_p:off_p+h_p]^T`` with ``b[L, sum h_p, r]`` and ``proj_offsets`` the prefix sums of ``h_outs``."""
    seg, widx, perm = batch
    grid = (cdiv(max(h_outs), EXPAND["BLOCK_N"]), len(h_outs), widx.numel())
    args = (v, b, y, seg, widx, perm, proj_offsets, b.shape[2], v.stride(0), b.stride(0), b.stride(1), y.stride(0))
    args += (float(scale),)
    kw = dict(EXPAND, BLOCK_M=CHUNK, ACCUMULATE=accumulate, CAST_FP32=dot_cast_fp32(b))

    def launch() -> None:
        _csgmv_expand_kernel[grid](*args, **kw)

    return launch


def _batch(weight_indices: torch.Tensor, seg_lens: Sequence[int]) -> tuple[torch.Tensor, ...]:
    return chunked_batch(list(seg_lens), weight_indices.tolist(), weight_indices.device)


def bind_shrink(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
) -> Callable[[], None]:  # fmt: skip
    """shrink/baseline/sglang: one launch, no split-K, no zeroing."""
    return csgmv_shrink(x, a, v, _batch(weight_indices, seg_lens), scale, accumulate)


def bind_expand(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
) -> Callable[[], None]:  # fmt: skip
    """expand/baseline/sglang: one launch, grid (column tiles, slices, chunks)."""
    return csgmv_expand(v, b, y, _batch(weight_indices, seg_lens), proj_offsets, h_outs, scale, accumulate)


def bind_fused(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, seg_lens: Sequence[int], h_outs: tuple[int, ...],
    scale: float, accumulate: bool, inter_dtype: torch.dtype,
) -> Callable[[], None]:  # fmt: skip
    """fused/baseline/sglang: shrink into a 16-bit [T, P*r] buffer, expand from it with the scale (SGLang's
    intermediate is always the input dtype: ``inter_dtype`` is not used)."""
    batch = _batch(weight_indices, seg_lens)
    buf = torch.empty((x.shape[0], a.shape[1]), dtype=x.dtype, device=x.device)
    shrink = csgmv_shrink(x, a, buf, batch, 1.0, False)
    expand = csgmv_expand(buf, b, y, batch, proj_offsets, h_outs, scale, accumulate)

    def run() -> None:
        shrink()
        expand()

    return run
