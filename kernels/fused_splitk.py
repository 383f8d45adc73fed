"""Fused LoRA sketch that splits K: one launch, the shrink's reduction shared by cooperating programs.

Same operator as ``fused.py``: ``y[seg, off_p:off_p+h_p] (+)= scale * round(x[seg] @ A[w, p*r:(p+1)*r]^T) @
B[w, off_p:off_p+h_p]^T``. A *block* is one (segment, row tile, projection) and has ``G = SPLIT_K * N_MULT``
programs. Each of them

1. reduces its share of K into an fp32 partial ``t_s[BLOCK_M, BLOCK_R]`` (the first SPLIT_K programs,
   ``K_PER_SPLIT`` columns each in whole BLOCK_K steps; ``tl.dot``, or with USE_DOT=0 a broadcast multiply and
   sum for rows of 1-8 tokens); the other programs only expand (more columns in flight for wide outputs);
2. prefetches its first B tile (and y tile when accumulating), adds ``t_s`` into the block's workspace slot with
   atomics and counts itself in on the block's counter;
3. waits until all G programs are counted in, at most MAX_SPIN polls, then reads ``t = sum_s t_s`` from the
   workspace (bypassing L1). A program whose wait ran out recomputes ``t`` over all of K itself: the result is
   always right, and a grid too large to be resident at once shows up as a slow time, never as a hang or a
   wrong result;
4. expands its own column tiles ``part, part + G, ...`` (BLOCK_N wide) of projection p with the rounded ``t``
   (``hi + lo`` 16-bit terms for an fp32 intermediate, as in ``fused.py``).

With WAIT=0 (``fused/splitk-last/*``: G = SPLIT_K) nobody waits: the program whose count completes the block
reads the sum and expands every column tile of the block, the others end after counting in. No grid limit then
(long prefill batches), at the price of one program per block doing the whole expand.

With FANOUT=1 (``fused/splitk-fanout/*``) a block's programs split the roles: its first SPLIT_K programs (in
launch order) are producers, which add their partial, count in and end; the next EXPANDERS (N_MULT in the
kernel) programs only expand, each waiting (bounded, with the same recompute fallback) for the producers' count.
A program then waits only for programs launched before it, which GPUs dispatch first (what a decoupled
look-back scan relies on too), so the grid needs no residency bound: as many expanders as column tiles, for
wide outputs and long batches. Two counters per block: the producers' (``+SPLIT_K`` a launch, their epoch and
the expanders' target) and the expanders' (``+EXPANDERS`` a launch, their epoch).

The same "last one in" scheme serves the shrink alone (``shrink/splitk-last/*``, ``_shrink_splitlast_kernel``):
a block's SPLIT_K programs add their partials over the projection's whole rank, and the program whose count
completes the block writes its rows of v, so an overwriting split-K shrink needs no zeroing launch before it.

No launch zeroes anything and no program waits for the others to finish reading. Each block's counter only
grows (int64): the e-th launch in which the block has rows finds it in ``[e*G, (e+1)*G)`` when a program starts
(the program itself is not counted yet), so ``e`` is the launch's epoch; it adds into workspace slot ``e % 2``
and waits for the counter to reach ``(e+1)*G``, while its program 0 zeroes slot ``(e+1) % 2``, which the
previous launch used and the next will. The workspace (``[blocks, 2, BLOCK_M, BLOCK_R]`` fp32) and counters
(``[blocks]``) are allocated zeroed by the launcher and owned by its closure: two closures never share them, so
calls on different streams do not race. A CTA barrier orders every thread's atomics before the arrival count
(release, GPU scope); the waiting read is an acquire.

Tested in the Triton interpreter, which runs programs one after another: every program but the last of a block
exhausts its (there tiny) MAX_SPIN and takes the recompute path, the last one reads the complete workspace,
so both paths are checked; layouts, dtypes, P = 1-3 projections, ranks and options as for ``fused.py``.
Compiled ahead of time for sm_90.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import triton
import triton.language as tl

from ._common import INTERPRET, cdiv, col_align, dot_cast_fp32, launch_opts, locate_tile, row_tile_grid

# Polls of the arrival counter before a program gives up waiting and recomputes (each poll is one L2 round
# trip, under a microsecond; a resident block is complete after a few dozen). The interpreter runs programs
# one after another, where waiting never succeeds.
MAX_SPIN = 2 if INTERPRET else 1 << 12


@triton.jit
def _shrink_range(
    x_ptr, a_ptr, rm, m_mask, w, p, R, k_lo, k_hi,
    stride_xt, stride_al, stride_ar,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr, EVEN_K: tl.constexpr,
    EVEN_R: tl.constexpr, USE_DOT: tl.constexpr, CAST_FP32: tl.constexpr,
):  # fmt: skip
    """``x[rm, k_lo:k_hi] @ A[w, p*R:(p+1)*R, k_lo:k_hi]^T`` in fp32, ``[BLOCK_M, BLOCK_R]``; k_lo is a multiple
    of BLOCK_K, and k_hi one or K (EVEN_K: K is a multiple of BLOCK_K)."""
    rk = tl.arange(0, BLOCK_K)
    rr = tl.arange(0, BLOCK_R)
    r_mask = rr < R
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    if USE_DOT:
        x_ptrs = x_ptr + rm[:, None].to(tl.int64) * stride_xt + (k_lo + rk)[None, :]
        a_ptrs = a_ptr + w * stride_al + (p * R + rr)[None, :] * stride_ar + (k_lo + rk)[:, None]
        for k0 in range(k_lo, k_hi, BLOCK_K):
            if EVEN_K:
                xt = tl.load(x_ptrs, mask=m_mask[:, None], other=0.0)
                at = tl.load(a_ptrs) if EVEN_R else tl.load(a_ptrs, mask=r_mask[None, :], other=0.0)
            else:
                k_mask = rk < k_hi - k0
                xt = tl.load(x_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
                at = tl.load(a_ptrs, mask=r_mask[None, :] & k_mask[:, None], other=0.0)
            if CAST_FP32:
                xt = xt.to(tl.float32)
                at = at.to(tl.float32)
            acc += tl.dot(xt, at)
            x_ptrs += BLOCK_K
            a_ptrs += BLOCK_K
    else:
        # 3-D loads, contiguous along K: the broadcast product needs no layout conversion
        x_ptrs = x_ptr + rm[:, None, None].to(tl.int64) * stride_xt + (k_lo + rk)[None, None, :]
        a_ptrs = a_ptr + w * stride_al + (p * R + rr)[None, :, None] * stride_ar + (k_lo + rk)[None, None, :]
        x_mask = m_mask[:, None, None]
        a_mask = r_mask[None, :, None]
        for k0 in range(k_lo, k_hi, BLOCK_K):
            if EVEN_K:
                xt = tl.load(x_ptrs, mask=x_mask, other=0.0)
                at = tl.load(a_ptrs) if EVEN_R else tl.load(a_ptrs, mask=a_mask, other=0.0)
            else:
                k_mask = (rk < k_hi - k0)[None, None, :]
                xt = tl.load(x_ptrs, mask=x_mask & k_mask, other=0.0)
                at = tl.load(a_ptrs, mask=a_mask & k_mask, other=0.0)
            acc += tl.sum(xt.to(tl.float32) * at.to(tl.float32), axis=2)
            x_ptrs += BLOCK_K
            a_ptrs += BLOCK_K
    return acc


@triton.jit
def _output_tile(b_ptrs, y_ptrs, n_mask, m_mask, r_mask, EVEN_R: tl.constexpr, ACCUMULATE: tl.constexpr):
    """One output tile's operands: B ``[BLOCK_N, BLOCK_R]``, y in fp32 when accumulating (else zeros), the mask."""
    if EVEN_R:
        bt = tl.load(b_ptrs, mask=n_mask[:, None], other=0.0)
    else:
        bt = tl.load(b_ptrs, mask=n_mask[:, None] & r_mask[None, :], other=0.0)
    o_mask = m_mask[:, None] & n_mask[None, :]
    if ACCUMULATE:
        yt = tl.load(y_ptrs, mask=o_mask, other=0.0).to(tl.float32)
    else:
        yt = tl.zeros(o_mask.shape, dtype=tl.float32)
    return bt, yt, o_mask


@triton.jit
def _await_sum(
    counter, arrived, target, ws_ptrs, t_mask, x_ptr, a_ptr, rm, m_mask, w, p, R, K,
    stride_xt, stride_al, stride_ar,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr, EVEN_K: tl.constexpr,
    EVEN_R: tl.constexpr, USE_DOT: tl.constexpr, CAST_FP32: tl.constexpr, MAX_SPIN: tl.constexpr,
):  # fmt: skip
    """The block's sum ``t``: poll ``counter`` (``arrived`` so far) until it reaches ``target``, at most MAX_SPIN
    times, then read ``t`` from the workspace (bypassing L1); if the count never came (the programs it waits
    for are not resident, or late), reduce all of K here."""
    spins = 0
    while (arrived < target) & (spins < MAX_SPIN):
        arrived = tl.atomic_add(counter, 0, sem="acquire")
        spins += 1
    if arrived >= target:
        acc = tl.load(ws_ptrs, mask=t_mask, other=0.0, cache_modifier=".cg")
    else:
        acc = _shrink_range(x_ptr, a_ptr, rm, m_mask, w, p, R, 0, K, stride_xt, stride_al, stride_ar,
                            BLOCK_M, BLOCK_K, BLOCK_R, EVEN_K, EVEN_R, USE_DOT, CAST_FP32)  # fmt: skip
    return acc


@triton.jit
def _fused_splitk_kernel(
    # pointers
    x_ptr, a_ptr, b_ptr, y_ptr, seg_indptr_ptr, weight_idx_ptr, proj_offsets_ptr, ws_ptr, count_ptr,
    # dimensions
    K, R, K_PER_SPLIT,
    # strides (innermost strides are 1: operands are contiguous)
    stride_xt, stride_al, stride_ar, stride_bl, stride_bn, stride_yt,
    # scalars
    scale, n_segs,
    # meta-parameters
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
    SPLIT_K: tl.constexpr, N_MULT: tl.constexpr, EVEN_K: tl.constexpr, EVEN_R: tl.constexpr,
    COL_ALIGN: tl.constexpr, ACCUMULATE: tl.constexpr, ROUND_INTER: tl.constexpr, TWO_TERM: tl.constexpr,
    USE_DOT: tl.constexpr, CAST_FP32: tl.constexpr, MAX_SPIN: tl.constexpr, WAIT: tl.constexpr,
    FANOUT: tl.constexpr, FLAT_SEGS: tl.constexpr,
):  # fmt: skip
    pid_ps = tl.program_id(0)
    pid_m = tl.program_id(1)
    seg = tl.program_id(2)
    if FANOUT:  # SPLIT_K producers, then N_MULT expanders
        G: tl.constexpr = SPLIT_K + N_MULT
    else:
        G: tl.constexpr = SPLIT_K * N_MULT
    p = pid_ps // G
    part = pid_ps % G
    end, w, row0 = locate_tile(seg_indptr_ptr, weight_idx_ptr, seg, pid_m, n_segs, BLOCK_M, FLAT_SEGS)
    if row0 >= end:  # the whole block is past its segment: all of its programs return here
        return
    col0 = tl.load(proj_offsets_ptr + p)
    n_cols = tl.load(proj_offsets_ptr + p + 1) - col0
    if COL_ALIGN > 1:  # every projection offset and width is a multiple of COL_ALIGN: vectorised y accesses
        col0 = tl.multiple_of(col0, COL_ALIGN)
        n_cols = tl.multiple_of(n_cols, COL_ALIGN)
    rm = row0 + tl.arange(0, BLOCK_M)
    rr = tl.arange(0, BLOCK_R)
    rn = tl.arange(0, BLOCK_N)
    m_mask = rm < end
    r_mask = rr < R
    blk = (seg * tl.num_programs(1) + pid_m) * (tl.num_programs(0) // G) + p
    # the block's count as this launch found it (its epoch), read first so the load overlaps the shrink: this
    # program is not counted yet and every earlier launch's programs are, whenever it is read
    if FANOUT:  # a producer reads the producers' count, an expander the expanders'
        found = tl.load(count_ptr + 2 * blk + (part >= SPLIT_K).to(tl.int32), cache_modifier=".cg")
    else:
        found = tl.load(count_ptr + blk, cache_modifier=".cg")

    # 1. this program's share of the shrink
    k_lo = tl.minimum(part, SPLIT_K) * K_PER_SPLIT  # programs past SPLIT_K: an empty range
    k_hi = tl.minimum(K, k_lo + K_PER_SPLIT)
    acc = _shrink_range(x_ptr, a_ptr, rm, m_mask, w, p, R, k_lo, k_hi, stride_xt, stride_al, stride_ar,
                        BLOCK_M, BLOCK_K, BLOCK_R, EVEN_K, EVEN_R, USE_DOT, CAST_FP32)  # fmt: skip

    # 2. prefetch the first output tile's operands: B as [BLOCK_N, BLOCK_R], contiguous along the rank
    n_end = n_cols
    if FANOUT:  # expander e = part - SPLIT_K: tiles e, e + N_MULT, ...; the producers expand nothing
        n0 = tl.maximum(part - SPLIT_K, 0) * BLOCK_N
        n_end = tl.where(part >= SPLIT_K, n_cols, 0)
        STEP: tl.constexpr = N_MULT * BLOCK_N
    elif WAIT:  # this program's tiles: part, part + G, ...
        n0 = part * BLOCK_N
        STEP: tl.constexpr = G * BLOCK_N
    else:  # the last program in: all of them
        n0 = 0
        STEP: tl.constexpr = BLOCK_N
    b_ptrs = b_ptr + w * stride_bl + (col0 + n0 + rn)[:, None].to(tl.int64) * stride_bn + rr[None, :]
    y_ptrs = y_ptr + rm[:, None].to(tl.int64) * stride_yt + (col0 + n0 + rn)[None, :]
    if WAIT:
        bt, yt, o_mask = _output_tile(b_ptrs, y_ptrs, rn < n_end - n0, m_mask, r_mask, EVEN_R, ACCUMULATE)

    # 3. reduce the partials across the block's programs (the epoch schemes of the module docstring)
    tile = tl.arange(0, BLOCK_M)[:, None] * BLOCK_R + rr[None, :]
    t_mask = m_mask[:, None] & r_mask[None, :]
    if FANOUT:
        if part < SPLIT_K:  # a producer: add the partial, count in, done
            slot = (found // SPLIT_K) % 2
            if part == 0:  # the slot the previous launch used is the next one's: zero it
                tl.store(ws_ptr + (blk * 2 + 1 - slot) * (BLOCK_M * BLOCK_R) + tile, tl.zeros_like(acc))
            tl.atomic_add(ws_ptr + (blk * 2 + slot) * (BLOCK_M * BLOCK_R) + tile, acc, mask=t_mask, sem="relaxed")
            tl.debug_barrier()  # every thread's partial is in before the count says so
            tl.atomic_add(count_ptr + 2 * blk, 1, sem="acq_rel")
        else:  # an expander: the epoch from the expanders' count, then wait for the producers' count
            epoch = found // N_MULT
            arrived = tl.atomic_add(count_ptr + 2 * blk, 0, sem="acquire")
            ws_ptrs = ws_ptr + (blk * 2 + epoch % 2) * (BLOCK_M * BLOCK_R) + tile
            acc = _await_sum(count_ptr + 2 * blk, arrived, (epoch + 1) * SPLIT_K, ws_ptrs, t_mask, x_ptr, a_ptr, rm,
                             m_mask, w, p, R, K, stride_xt, stride_al, stride_ar, BLOCK_M, BLOCK_K, BLOCK_R, EVEN_K,
                             EVEN_R, USE_DOT, CAST_FP32, MAX_SPIN)  # fmt: skip
            tl.atomic_add(count_ptr + 2 * blk + 1, 1, sem="relaxed")
    else:
        base = (found // G) * G
        slot = (base // G) % 2
        ws_ptrs = ws_ptr + (blk * 2 + slot) * (BLOCK_M * BLOCK_R) + tile
        if part == 0:  # the slot the previous launch used is the next one's: zero it
            tl.store(ws_ptr + (blk * 2 + 1 - slot) * (BLOCK_M * BLOCK_R) + tile, tl.zeros_like(acc))
        if part < SPLIT_K:
            tl.atomic_add(ws_ptrs, acc, mask=t_mask, sem="relaxed")
        tl.debug_barrier()  # every thread's partial is in before the count says so
        arrived = tl.atomic_add(count_ptr + blk, 1, sem="acq_rel") + 1
        if WAIT:
            acc = _await_sum(count_ptr + blk, arrived, base + G, ws_ptrs, t_mask, x_ptr, a_ptr, rm, m_mask, w, p, R, K,
                             stride_xt, stride_al, stride_ar, BLOCK_M, BLOCK_K, BLOCK_R, EVEN_K, EVEN_R, USE_DOT,
                             CAST_FP32, MAX_SPIN)  # fmt: skip
        else:  # only the last program in expands (the others find no columns)
            if arrived >= base + G:
                acc = tl.load(ws_ptrs, mask=t_mask, other=0.0, cache_modifier=".cg")
            n_end = tl.where(arrived >= base + G, n_cols, 0)
            bt, yt, o_mask = _output_tile(b_ptrs, y_ptrs, rn < n_end, m_mask, r_mask, EVEN_R, ACCUMULATE)

    # 4. expand this program's column tiles with the rounded intermediate
    if ROUND_INTER:
        acc = acc.to(x_ptr.dtype.element_ty).to(tl.float32)
    if USE_DOT:
        t_hi = acc.to(x_ptr.dtype.element_ty)
        if TWO_TERM:
            t_lo = (acc - t_hi.to(tl.float32)).to(x_ptr.dtype.element_ty)
        if CAST_FP32:
            t_hi = t_hi.to(tl.float32)
            if TWO_TERM:
                t_lo = t_lo.to(tl.float32)
    for n in range(n0, n_end, STEP):
        if USE_DOT:
            bd = tl.trans(bt.to(tl.float32) if CAST_FP32 else bt)
            out = tl.dot(t_hi, bd)
            if TWO_TERM:
                out = tl.dot(t_lo, bd, out)
        else:
            out = tl.sum(acc[:, None, :] * bt.to(tl.float32)[None, :, :], axis=2)
        out = out * scale
        if ACCUMULATE:
            out += yt
        tl.store(y_ptrs, out.to(y_ptr.dtype.element_ty), mask=o_mask)
        # the next tile of this split
        b_ptrs += STEP * stride_bn
        y_ptrs += STEP
        n_mask = rn < n_end - (n + STEP)  # masked: the last prefetch is past the end
        bt, yt, o_mask = _output_tile(b_ptrs, y_ptrs, n_mask, m_mask, r_mask, EVEN_R, ACCUMULATE)


def _bind(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int,
    scale: float, accumulate: bool, inter_dtype: torch.dtype, config: Mapping[str, int], use_dot: bool,
    mode: str = "wait",
) -> Callable[[], None]:  # fmt: skip
    """``mode``: ``wait`` (SPLIT_K x N_MULT programs per block, all wait), ``last`` (SPLIT_K, the last in expands)
    or ``fanout`` (SPLIT_K producers, then EXPANDERS programs that wait; two counters per block)."""
    bm, bk, bn, split = (int(config[k]) for k in ("BLOCK_M", "BLOCK_K", "BLOCK_N", "SPLIT_K"))
    mult = int(config[{"wait": "N_MULT", "fanout": "EXPANDERS"}[mode]]) if mode != "last" else 1
    K, rank = x.shape[1], b.shape[2]
    br = max(16, triton.next_power_of_2(rank)) if use_dot else triton.next_power_of_2(rank)
    per_block = split + mult if mode == "fanout" else split * mult
    segs, rows, flat = row_tile_grid(x.shape[0], weight_indices.shape[0], max_seg_len, bm)
    grid = (len(h_outs) * per_block, rows, segs)
    blocks = len(h_outs) * grid[1] * grid[2]
    k_per_split = cdiv(cdiv(K, bk), split) * bk
    ws = torch.zeros((blocks, 2, bm, br), dtype=torch.float32, device=x.device)
    counts = torch.zeros(blocks * (2 if mode == "fanout" else 1), dtype=torch.int64, device=x.device)
    pointers = (x, a, b, y, seg_indptr, weight_indices, proj_offsets, ws, counts)
    strides = (x.stride(0), a.stride(0), a.stride(1), b.stride(0), b.stride(1), y.stride(0))
    args = (*pointers, K, rank, k_per_split, *strides, float(scale), weight_indices.shape[0])
    meta = dict(
        FLAT_SEGS=flat,
        BLOCK_M=bm,
        BLOCK_K=bk,
        BLOCK_N=bn,
        BLOCK_R=br,
        SPLIT_K=split,
        N_MULT=mult,
        EVEN_K=K % bk == 0,
        EVEN_R=rank == br,
        COL_ALIGN=col_align(h_outs),
        ACCUMULATE=accumulate,
        ROUND_INTER=inter_dtype != torch.float32,
        TWO_TERM=use_dot and inter_dtype == torch.float32 and x.dtype != torch.float32,
        USE_DOT=use_dot,
        CAST_FP32=dot_cast_fp32(x),
        MAX_SPIN=MAX_SPIN,
        WAIT=mode != "last",
        FANOUT=mode == "fanout",
        **launch_opts(config),
    )

    def run() -> None:
        _fused_splitk_kernel[grid](*args, **meta)

    return run


def bind_splitk_dot(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int,
    scale: float, accumulate: bool, inter_dtype: torch.dtype, config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """fused/splitk/dot: grid (P x SPLIT_K x N_MULT, row tiles (``row_tile_grid``), segments); tl.dot for both
    products, the K reduction shared through the workspace."""
    return _bind(x, a, b, y, seg_indptr, weight_indices, proj_offsets, h_outs=h_outs, max_seg_len=max_seg_len,
                 scale=scale, accumulate=accumulate, inter_dtype=inter_dtype, config=config, use_dot=True)  # fmt: skip


def bind_splitk_fma(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int,
    scale: float, accumulate: bool, inter_dtype: torch.dtype, config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """fused/splitk/fma: as ``bind_splitk_dot`` with broadcast-multiply reductions (rows of 1-8 tokens)."""
    return _bind(x, a, b, y, seg_indptr, weight_indices, proj_offsets, h_outs=h_outs, max_seg_len=max_seg_len,
                 scale=scale, accumulate=accumulate, inter_dtype=inter_dtype, config=config, use_dot=False)  # fmt: skip


def bind_splitlast_dot(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int,
    scale: float, accumulate: bool, inter_dtype: torch.dtype, config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """fused/splitk-last/dot: grid (P x SPLIT_K, row tiles, segments); nobody waits: the last program of a block to
    add its partial expands all of the block's columns (any grid size, no residency needed: long prefill)."""
    return _bind(x, a, b, y, seg_indptr, weight_indices, proj_offsets, h_outs=h_outs, max_seg_len=max_seg_len,
                 scale=scale, accumulate=accumulate, inter_dtype=inter_dtype, config=config, use_dot=True,
                 mode="last")  # fmt: skip


def bind_splitlast_fma(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int,
    scale: float, accumulate: bool, inter_dtype: torch.dtype, config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """fused/splitk-last/fma: as ``bind_splitlast_dot`` with broadcast-multiply reductions."""
    return _bind(x, a, b, y, seg_indptr, weight_indices, proj_offsets, h_outs=h_outs, max_seg_len=max_seg_len,
                 scale=scale, accumulate=accumulate, inter_dtype=inter_dtype, config=config, use_dot=False,
                 mode="last")  # fmt: skip


def bind_fanout_dot(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int,
    scale: float, accumulate: bool, inter_dtype: torch.dtype, config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """fused/splitk-fanout/dot: grid (P x (SPLIT_K + EXPANDERS), row tiles, segments); SPLIT_K producers add their
    partials and end, the EXPANDERS programs after them wait for the sum and share the block's columns."""
    return _bind(x, a, b, y, seg_indptr, weight_indices, proj_offsets, h_outs=h_outs, max_seg_len=max_seg_len,
                 scale=scale, accumulate=accumulate, inter_dtype=inter_dtype, config=config, use_dot=True,
                 mode="fanout")  # fmt: skip


def bind_fanout_fma(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int,
    scale: float, accumulate: bool, inter_dtype: torch.dtype, config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """fused/splitk-fanout/fma: as ``bind_fanout_dot`` with broadcast-multiply reductions (rows of 1-8 tokens)."""
    return _bind(x, a, b, y, seg_indptr, weight_indices, proj_offsets, h_outs=h_outs, max_seg_len=max_seg_len,
                 scale=scale, accumulate=accumulate, inter_dtype=inter_dtype, config=config, use_dot=False,
                 mode="fanout")  # fmt: skip


@triton.jit
def _shrink_splitlast_kernel(
    # pointers
    x_ptr, a_ptr, v_ptr, seg_indptr_ptr, weight_idx_ptr, ws_ptr, count_ptr,
    # dimensions
    K, R, K_PER_SPLIT,
    # strides (innermost strides are 1: operands are contiguous)
    stride_xt, stride_al, stride_ar, stride_vt,
    # scalars
    scale, n_segs,
    # meta-parameters
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr, SPLIT_K: tl.constexpr,
    EVEN_K: tl.constexpr, EVEN_R: tl.constexpr, ACCUMULATE: tl.constexpr, USE_DOT: tl.constexpr,
    CAST_FP32: tl.constexpr, FLAT_SEGS: tl.constexpr,
):  # fmt: skip
    """The shrink alone, ``v[seg, p*R:(p+1)*R] (+)= scale * x[seg] @ A[w, p*R:(p+1)*R]^T``, in one launch: a
    block (segment, row tile, projection) has SPLIT_K programs that add fp32 partials into the block's
    workspace slot (the epoch scheme of the module docstring, so nothing is zeroed by another launch); the one
    whose count completes the block reads the sum and writes v."""
    pid_ps = tl.program_id(0)
    pid_m = tl.program_id(1)
    seg = tl.program_id(2)
    p = pid_ps // SPLIT_K
    part = pid_ps % SPLIT_K
    end, w, row0 = locate_tile(seg_indptr_ptr, weight_idx_ptr, seg, pid_m, n_segs, BLOCK_M, FLAT_SEGS)
    if row0 >= end:  # the whole block is past its segment: all of its programs return here
        return
    blk = (seg * tl.num_programs(1) + pid_m) * (tl.num_programs(0) // SPLIT_K) + p
    found = tl.load(count_ptr + blk, cache_modifier=".cg")  # this launch's epoch: found // SPLIT_K
    rm = row0 + tl.arange(0, BLOCK_M)
    rr = tl.arange(0, BLOCK_R)
    m_mask = rm < end
    t_mask = m_mask[:, None] & (rr < R)[None, :]
    k_lo = part * K_PER_SPLIT
    k_hi = tl.minimum(K, k_lo + K_PER_SPLIT)
    acc = _shrink_range(x_ptr, a_ptr, rm, m_mask, w, p, R, k_lo, k_hi, stride_xt, stride_al, stride_ar,
                        BLOCK_M, BLOCK_K, BLOCK_R, EVEN_K, EVEN_R, USE_DOT, CAST_FP32)  # fmt: skip
    tile = tl.arange(0, BLOCK_M)[:, None] * BLOCK_R + rr[None, :]
    slot = (found // SPLIT_K) % 2
    ws_ptrs = ws_ptr + (blk * 2 + slot) * (BLOCK_M * BLOCK_R) + tile
    if part == 0:  # the slot the previous launch used is the next one's: zero it
        tl.store(ws_ptr + (blk * 2 + 1 - slot) * (BLOCK_M * BLOCK_R) + tile, tl.zeros_like(acc))
    tl.atomic_add(ws_ptrs, acc, mask=t_mask, sem="relaxed")
    tl.debug_barrier()  # every thread's partial is in before the count says so
    arrived = tl.atomic_add(count_ptr + blk, 1, sem="acq_rel") + 1
    if arrived == (found // SPLIT_K + 1) * SPLIT_K:  # the last one in writes the block's rows of v
        out = tl.load(ws_ptrs, mask=t_mask, other=0.0, cache_modifier=".cg") * scale
        v_ptrs = v_ptr + rm[:, None].to(tl.int64) * stride_vt + (p * R + rr)[None, :]
        if ACCUMULATE:
            out += tl.load(v_ptrs, mask=t_mask, other=0.0).to(tl.float32)
        tl.store(v_ptrs, out.to(v_ptr.dtype.element_ty), mask=t_mask)


def _bind_shrink_last(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    h_outs: tuple[int, ...] | None, max_seg_len: int, scale: float, accumulate: bool, config: Mapping[str, int],
    use_dot: bool,
) -> Callable[[], None]:  # fmt: skip
    """Grid (P x SPLIT_K, row tiles of the longest segment, segments), or the segments' row tiles on one axis
    where that launches fewer programs (``row_tile_grid``); a whole projection's rank per program."""
    bm, bk, split = (int(config[k]) for k in ("BLOCK_M", "BLOCK_K", "SPLIT_K"))
    n_proj = len(h_outs) if h_outs else 1
    K, rank = x.shape[1], a.shape[1] // n_proj
    br = max(16, triton.next_power_of_2(rank)) if use_dot else triton.next_power_of_2(rank)
    segs, rows, flat = row_tile_grid(x.shape[0], weight_indices.shape[0], max_seg_len, bm)
    grid = (n_proj * split, rows, segs)
    blocks = n_proj * grid[1] * grid[2]
    ws = torch.zeros((blocks, 2, bm, br), dtype=torch.float32, device=x.device)
    counts = torch.zeros(blocks, dtype=torch.int64, device=x.device)
    args = (x, a, v, seg_indptr, weight_indices, ws, counts, K, rank, cdiv(cdiv(K, bk), split) * bk,
            x.stride(0), a.stride(0), a.stride(1), v.stride(0), float(scale), weight_indices.shape[0])  # fmt: skip
    meta = dict(
        FLAT_SEGS=flat,
        BLOCK_M=bm,
        BLOCK_K=bk,
        BLOCK_R=br,
        SPLIT_K=split,
        EVEN_K=K % bk == 0,
        EVEN_R=rank == br,
        ACCUMULATE=accumulate,
        USE_DOT=use_dot,
        CAST_FP32=dot_cast_fp32(x),
        **launch_opts(config),
    )

    def run() -> None:
        _shrink_splitlast_kernel[grid](*args, **meta)

    return run


def bind_shrink_last_dot(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    max_seg_len: int, scale: float, accumulate: bool, config: Mapping[str, int],
    h_outs: tuple[int, ...] | None = None,
) -> Callable[[], None]:  # fmt: skip
    """shrink/splitk-last/dot: grid (P x SPLIT_K, row tiles, segments); SPLIT_K programs per block add partials
    into a self-cleaning workspace, the last one in writes v: one launch, no zeroing launch; tl.dot."""
    return _bind_shrink_last(x, a, v, seg_indptr, weight_indices, h_outs=h_outs, max_seg_len=max_seg_len,
                             scale=scale, accumulate=accumulate, config=config, use_dot=True)  # fmt: skip


def bind_shrink_last_fma(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    max_seg_len: int, scale: float, accumulate: bool, config: Mapping[str, int],
    h_outs: tuple[int, ...] | None = None,
) -> Callable[[], None]:  # fmt: skip
    """shrink/splitk-last/fma: as ``bind_shrink_last_dot`` with a broadcast-multiply reduction (rows of 1-8)."""
    return _bind_shrink_last(x, a, v, seg_indptr, weight_indices, h_outs=h_outs, max_seg_len=max_seg_len,
                             scale=scale, accumulate=accumulate, config=config, use_dot=False)  # fmt: skip
