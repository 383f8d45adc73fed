"""SGMV expand sketches: ``y[seg, o_p:o_p+h_p] (+)= scale * v[seg, p*r:(p+1)*r] @ B[w, o_p:o_p+h_p]^T``.

``v[T, P*r]`` (fp32 or the input dtype), ``B[L, sum h_p, r]``, ``y[T, sum h_p]``; projection ``p`` owns the
rank columns ``p*r:(p+1)*r`` of ``v`` and the rows/columns ``o_p:o_p+h_p`` of ``B``/``y`` (``o`` is
``proj_offsets``, prefix sums of ``h_outs``; projections may differ in width). Products accumulate in
fp32; ``scale`` multiplies the product; ``y`` is read and added to only when the op accumulates.
Five structures, every program returning at once when its column tile lies past its projection's width:

- ``bind_tile_dot``: one program per (segment, row tile, column tile, projection); ``tl.dot`` over the
  rank in BLOCK_K pieces (masked when BLOCK_K does not divide r, BLOCK_K >= 16 even for r = 8). A fp32
  ``v`` is cast to B's 16-bit dtype for the tensor cores; fp32 operands run as tf32.
- ``bind_gemv``: one program per (segment, column tile, projection) loads its B tile
  ``[BLOCK_N, next_pow2(r)]`` once and applies it to the segment's tokens BLOCK_T at a time with a
  broadcast multiply and a sum over the rank in fp32; no tensor cores.
- ``bind_walk``: fewer, fuller programs; grid (cdiv(S, SEGS_PER_PROG), column tiles, P). A program walks
  SEGS_PER_PROG consecutive segments (the last program clips the count to S) and, for each, loads the
  segment's B tile once and walks its rows: BLOCK_M rows per ``tl.dot`` (USE_DOT=1, rank padded to
  max(16, next_pow2(r))) or one token at a time with an fp32 FMA reduction over the rank (USE_DOT=0,
  rank padded to next_pow2(r); BLOCK_M is then unused).
- ``bind_rows_dot``: one program per (segment, row tile, projection, group of COL_TILES column tiles): the row
  tile's v ``[BLOCK_M, max(16, next_pow2(r))]`` is loaded once and multiplied by the group's B tiles in turn,
  each tile's B and y loaded before the previous tile's product (v read once per group instead of once per
  column tile: at rank 64 and thousands of tokens that re-read is as many bytes as y).
- ``bind_cols_dot``: its mirror, one program per (segment, group of ROW_TILES row tiles, column tile, projection):
  the column tile of B ``[max(16, next_pow2(r)), BLOCK_N]`` is loaded once and applied to the group's row tiles
  in turn, each tile's v and y loaded before the previous tile's product (B read once per group instead of once
  per row tile: at rank 64 that re-read is twice v's, and reading v and B is 14-19% of the tile kernel's time).

Tested in the Triton interpreter against ``reference_loop`` (fp32, fp16, bf16, the last with the fp32 dot
cast of ``_common``): random valid configs of every sketch on Distinct, Uniform, Skewed, Identical and
long-segment layouts, ranks 8..128, one to three projections of unequal widths (e.g. 48+80+80, 200+64+120)
none a multiple of every block, accumulate and overwrite, scale != 1, fp32 and input-dtype ``v``;
compiled ahead of time for sm_90 (several configs per sketch, 16- and 32-bit operands).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import triton
import triton.language as tl

from ._common import EVICTION, cdiv, dot_cast_fp32, launch_opts, load_segment, locate_tile, row_tile_grid

DOT_MIN = 16  # tl.dot needs at least 16 along each dimension


@triton.jit
def _load_prior(y_ptrs, mask, ACCUMULATE: tl.constexpr):
    """y's tile to add to when the op accumulates (a kernel may load it early, with its first operands); else a
    placeholder that ``_store_sum`` ignores."""
    prior = 0.0
    if ACCUMULATE:
        prior = tl.load(y_ptrs, mask=mask, other=0.0)
    return prior


@triton.jit
def _store_sum(y_ptrs, acc, prior, mask, scale, ACCUMULATE: tl.constexpr):
    """``y = scale * acc (+ prior)`` under ``mask``, adding in fp32 and storing in y's dtype."""
    acc = acc * scale
    if ACCUMULATE:
        acc += prior.to(tl.float32)
    tl.store(y_ptrs, acc.to(y_ptrs.dtype.element_ty), mask=mask)


@triton.jit
def _write_out(y_ptrs, acc, mask, scale, ACCUMULATE: tl.constexpr):
    """``y (+)= scale * acc`` under ``mask``, y's tile loaded only now."""
    _store_sum(y_ptrs, acc, _load_prior(y_ptrs, mask, ACCUMULATE), mask, scale, ACCUMULATE)


@triton.jit
def _projection(proj_offsets_ptr, p, ALIGN: tl.constexpr):
    """Column offset and width of projection ``p``, hinted as multiples of ALIGN (checked on the host) so
    that y's loads and stores and the column masks vectorise."""
    off = tl.load(proj_offsets_ptr + p)
    width = tl.load(proj_offsets_ptr + p + 1) - off
    return tl.multiple_of(off, ALIGN), tl.multiple_of(width, ALIGN)


@triton.jit
def _dot_operands(vt, bt, CAST_FP32: tl.constexpr):
    """Bring a v tile and a B tile to one dtype for ``tl.dot``: B's, or fp32 in the bf16 interpreter."""
    if CAST_FP32:
        return vt.to(tl.float32), bt.to(tl.float32)
    return vt.to(bt.dtype), bt


@triton.jit
def _expand_tile_kernel(
    # pointers
    v_ptr, b_ptr, y_ptr, seg_indptr_ptr, weight_idx_ptr, proj_offsets_ptr,
    # strides (operands are contiguous: v's row stride is NUM_PROJ * RANK, B's row stride is RANK)
    stride_bl, stride_yt,
    # scalars
    scale, n_segs,
    # meta-parameters (rank and projection count are constexpr: v and B offsets then vectorise)
    RANK: tl.constexpr, NUM_PROJ: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    EVEN_K: tl.constexpr, EVEN_N: tl.constexpr, ACCUMULATE: tl.constexpr, CAST_FP32: tl.constexpr,
    EVICT_W: tl.constexpr, ALIGN: tl.constexpr, FLAT_SEGS: tl.constexpr,
):  # fmt: skip
    seg = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_np = tl.program_id(2)
    pid_n = pid_np // NUM_PROJ
    p = pid_np % NUM_PROJ
    end, w, row0 = locate_tile(seg_indptr_ptr, weight_idx_ptr, seg, pid_m, n_segs, BLOCK_M, FLAT_SEGS)
    off, width = _projection(proj_offsets_ptr, p, ALIGN)
    col0 = pid_n * BLOCK_N
    if (row0 >= end) | (col0 >= width):  # the exit waits for all the metadata: one round trip (_common)
        return
    rm = row0 + tl.arange(0, BLOCK_M)
    rn = col0 + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    m_mask = rm < end
    n_mask = (rn < width) | EVEN_N
    v_cols = p * RANK + rk  # this projection's rank columns of v
    v_ptrs = v_ptr + rm[:, None].to(tl.int64) * (NUM_PROJ * RANK) + v_cols[None, :]  # [BLOCK_M, BLOCK_K]
    b_ptrs = b_ptr + w * stride_bl + (off + rn)[None, :] * RANK + rk[:, None]  # [BLOCK_K, BLOCK_N]
    y_ptrs = y_ptr + rm[:, None].to(tl.int64) * stride_yt + (off + rn)[None, :]
    out_mask = m_mask[:, None] & n_mask[None, :]
    # y's tile is loaded with the first v and B tiles: no round trip between the dot and the store
    prior = _load_prior(y_ptrs, out_mask, ACCUMULATE)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, RANK, BLOCK_K):
        if EVEN_K:
            vt = tl.load(v_ptrs, mask=m_mask[:, None], other=0.0)
            if EVEN_N:
                bt = tl.load(b_ptrs, eviction_policy=EVICT_W)
            else:
                bt = tl.load(b_ptrs, mask=n_mask[None, :], other=0.0, eviction_policy=EVICT_W)
        else:
            k_mask = rk < RANK - k0
            vt = tl.load(v_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
            bt = tl.load(b_ptrs, mask=n_mask[None, :] & k_mask[:, None], other=0.0, eviction_policy=EVICT_W)
        vt, bt = _dot_operands(vt, bt, CAST_FP32)
        acc += tl.dot(vt, bt)
        v_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    _store_sum(y_ptrs, acc, prior, out_mask, scale, ACCUMULATE)


@triton.jit
def _expand_rows_kernel(
    # pointers
    v_ptr, b_ptr, y_ptr, seg_indptr_ptr, weight_idx_ptr, proj_offsets_ptr,
    # strides (operands are contiguous: v's row stride is NUM_PROJ * RANK, B's row stride is RANK)
    stride_bl, stride_yt,
    # scalars
    scale, n_segs,
    # meta-parameters
    RANK: tl.constexpr, NUM_PROJ: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_R: tl.constexpr, COL_TILES: tl.constexpr, EVEN_R: tl.constexpr, ACCUMULATE: tl.constexpr,
    CAST_FP32: tl.constexpr, EVICT_W: tl.constexpr, ALIGN: tl.constexpr, FLAT_SEGS: tl.constexpr,
):  # fmt: skip
    seg = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_gp = tl.program_id(2)
    group = pid_gp // NUM_PROJ
    p = pid_gp % NUM_PROJ
    end, w, row0 = locate_tile(seg_indptr_ptr, weight_idx_ptr, seg, pid_m, n_segs, BLOCK_M, FLAT_SEGS)
    off, width = _projection(proj_offsets_ptr, p, ALIGN)
    col0 = group * (COL_TILES * BLOCK_N)
    if (row0 >= end) | (col0 >= width):  # the exit waits for all the metadata: one round trip (_common)
        return
    rm = row0 + tl.arange(0, BLOCK_M)
    rn = col0 + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_R)
    m_mask = rm < end
    k_mask = (rk < RANK) | EVEN_R
    stop = tl.minimum(width, col0 + COL_TILES * BLOCK_N)  # the end of this program's columns
    n_mask = rn < stop
    v_ptrs = v_ptr + rm[:, None].to(tl.int64) * (NUM_PROJ * RANK) + (p * RANK + rk)[None, :]  # [BLOCK_M, BLOCK_R]
    b_ptrs = b_ptr + w * stride_bl + (off + rn)[None, :] * RANK + rk[:, None]  # [BLOCK_R, BLOCK_N]
    y_ptrs = y_ptr + rm[:, None].to(tl.int64) * stride_yt + (off + rn)[None, :]
    vt = tl.load(v_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
    bt = tl.load(b_ptrs, mask=k_mask[:, None] & n_mask[None, :], other=0.0, eviction_policy=EVICT_W)
    yt = _load_prior(y_ptrs, m_mask[:, None] & n_mask[None, :], ACCUMULATE)
    vt, bt = _dot_operands(vt, bt, CAST_FP32)
    for _ in range(0, tl.cdiv(stop - col0, BLOCK_N)):
        # the next tile's B and y, issued before this tile's product (masked off past the group's last tile)
        nb_ptrs = b_ptrs + BLOCK_N * RANK
        ny_ptrs = y_ptrs + BLOCK_N
        nn_mask = (rn + BLOCK_N) < stop
        nbt = tl.load(nb_ptrs, mask=k_mask[:, None] & nn_mask[None, :], other=0.0, eviction_policy=EVICT_W)
        nyt = _load_prior(ny_ptrs, m_mask[:, None] & nn_mask[None, :], ACCUMULATE)
        _store_sum(y_ptrs, tl.dot(vt, bt), yt, m_mask[:, None] & n_mask[None, :], scale, ACCUMULATE)
        yt = nyt
        bt = _dot_operands(vt, nbt, CAST_FP32)[1]
        b_ptrs, y_ptrs, rn, n_mask = nb_ptrs, ny_ptrs, rn + BLOCK_N, nn_mask


@triton.jit
def _expand_cols_kernel(
    # pointers
    v_ptr, b_ptr, y_ptr, seg_indptr_ptr, weight_idx_ptr, proj_offsets_ptr,
    # strides (operands are contiguous: v's row stride is NUM_PROJ * RANK, B's row stride is RANK)
    stride_bl, stride_yt,
    # scalars
    scale,
    # meta-parameters
    RANK: tl.constexpr, NUM_PROJ: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_R: tl.constexpr, ROW_TILES: tl.constexpr, EVEN_R: tl.constexpr, ACCUMULATE: tl.constexpr,
    CAST_FP32: tl.constexpr, EVICT_W: tl.constexpr, ALIGN: tl.constexpr,
):  # fmt: skip
    seg = tl.program_id(0)
    pid_g = tl.program_id(1)
    pid_np = tl.program_id(2)
    pid_n = pid_np // NUM_PROJ
    p = pid_np % NUM_PROJ
    start, end, w = load_segment(seg_indptr_ptr, weight_idx_ptr, seg)
    off, width = _projection(proj_offsets_ptr, p, ALIGN)
    row0 = start + pid_g * (ROW_TILES * BLOCK_M)
    col0 = pid_n * BLOCK_N
    if (row0 >= end) | (col0 >= width):  # the exit waits for all the metadata: one round trip (_common)
        return
    rm = row0 + tl.arange(0, BLOCK_M)
    rn = col0 + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_R)
    k_mask = (rk < RANK) | EVEN_R
    n_mask = rn < width
    stop = tl.minimum(end, row0 + ROW_TILES * BLOCK_M)  # the end of this program's rows
    m_mask = rm < stop
    v_ptrs = v_ptr + rm[:, None].to(tl.int64) * (NUM_PROJ * RANK) + (p * RANK + rk)[None, :]  # [BLOCK_M, BLOCK_R]
    b_ptrs = b_ptr + w * stride_bl + (off + rn)[None, :] * RANK + rk[:, None]  # [BLOCK_R, BLOCK_N]
    y_ptrs = y_ptr + rm[:, None].to(tl.int64) * stride_yt + (off + rn)[None, :]
    bt = tl.load(b_ptrs, mask=k_mask[:, None] & n_mask[None, :], other=0.0, eviction_policy=EVICT_W)
    vt = tl.load(v_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
    yt = _load_prior(y_ptrs, m_mask[:, None] & n_mask[None, :], ACCUMULATE)
    bt = _dot_operands(vt, bt, CAST_FP32)[1]
    for _ in range(0, tl.cdiv(stop - row0, BLOCK_M)):
        # the next tile's v and y, issued before this tile's product (masked off past the program's last row)
        nv_ptrs = v_ptrs + BLOCK_M * (NUM_PROJ * RANK)
        ny_ptrs = y_ptrs + BLOCK_M * stride_yt
        nm_mask = (rm + BLOCK_M) < stop
        nvt = tl.load(nv_ptrs, mask=nm_mask[:, None] & k_mask[None, :], other=0.0)
        nyt = _load_prior(ny_ptrs, nm_mask[:, None] & n_mask[None, :], ACCUMULATE)
        prod = tl.dot(_dot_operands(vt, bt, CAST_FP32)[0], bt)
        _store_sum(y_ptrs, prod, yt, m_mask[:, None] & n_mask[None, :], scale, ACCUMULATE)
        vt, yt = nvt, nyt
        v_ptrs, y_ptrs, rm, m_mask = nv_ptrs, ny_ptrs, rm + BLOCK_M, nm_mask


@triton.jit
def _expand_gemv_kernel(
    # pointers
    v_ptr, b_ptr, y_ptr, seg_indptr_ptr, weight_idx_ptr, proj_offsets_ptr,
    # strides (operands are contiguous: v's row stride is NUM_PROJ * RANK, B's row stride is RANK)
    stride_bl, stride_yt,
    # scalars
    scale,
    # meta-parameters
    RANK: tl.constexpr, NUM_PROJ: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
    EVEN_R: tl.constexpr, EVEN_N: tl.constexpr, ACCUMULATE: tl.constexpr, EVICT_W: tl.constexpr,
    ALIGN: tl.constexpr,
):  # fmt: skip
    seg = tl.program_id(0)
    pid_np = tl.program_id(1)
    pid_n = pid_np // NUM_PROJ
    p = pid_np % NUM_PROJ
    off, width = _projection(proj_offsets_ptr, p, ALIGN)
    start, end, w = load_segment(seg_indptr_ptr, weight_idx_ptr, seg)
    col0 = pid_n * BLOCK_N
    if (col0 >= width) | (start >= end):  # the exit waits for all the metadata: one round trip (_common)
        return
    rn = col0 + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_R)
    rt = tl.arange(0, BLOCK_T)
    n_mask = (rn < width) | EVEN_N
    k_mask = (rk < RANK) | EVEN_R
    b_ptrs = b_ptr + w * stride_bl + (off + rn)[:, None] * RANK + rk[None, :]  # [BLOCK_N, BLOCK_R]
    if EVEN_R and EVEN_N:
        b = tl.load(b_ptrs, eviction_policy=EVICT_W)
    else:
        b = tl.load(b_ptrs, mask=n_mask[:, None] & k_mask[None, :], other=0.0, eviction_policy=EVICT_W)
    b = b.to(tl.float32)
    v_cols = p * RANK + rk
    for t0 in range(start, end, BLOCK_T):
        rows = t0 + rt
        t_mask = rows < end
        v_ptrs = v_ptr + rows[:, None].to(tl.int64) * (NUM_PROJ * RANK) + v_cols[None, :]  # [BLOCK_T, BLOCK_R]
        if BLOCK_T == 1 and EVEN_R:  # the loop bound keeps the one token inside its segment
            vt = tl.load(v_ptrs)
        else:
            vt = tl.load(v_ptrs, mask=t_mask[:, None] & k_mask[None, :], other=0.0)
        acc = tl.sum(vt.to(tl.float32)[:, None, :] * b[None, :, :], axis=2)  # [BLOCK_T, BLOCK_N]
        y_ptrs = y_ptr + rows[:, None].to(tl.int64) * stride_yt + (off + rn)[None, :]
        _write_out(y_ptrs, acc, t_mask[:, None] & n_mask[None, :], scale, ACCUMULATE)


@triton.jit
def _expand_walk_kernel(
    # pointers
    v_ptr, b_ptr, y_ptr, seg_indptr_ptr, weight_idx_ptr, proj_offsets_ptr,
    # dimensions
    S,
    # strides (operands are contiguous: v's row stride is NUM_PROJ * RANK, B's row stride is RANK)
    stride_bl, stride_yt,
    # scalars
    scale,
    # meta-parameters
    RANK: tl.constexpr, NUM_PROJ: tl.constexpr,
    SEGS_PER_PROG: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
    USE_DOT: tl.constexpr, EVEN_R: tl.constexpr, EVEN_N: tl.constexpr, ACCUMULATE: tl.constexpr,
    CAST_FP32: tl.constexpr, EVICT_W: tl.constexpr, ALIGN: tl.constexpr,
):  # fmt: skip
    pid_s = tl.program_id(0)
    pid_n = tl.program_id(1)
    p = tl.program_id(2)
    off, width = _projection(proj_offsets_ptr, p, ALIGN)
    seg_first = pid_s * SEGS_PER_PROG
    # the first segment's metadata loads with the projection's, so that the loop's loads of it hit L1 (the test
    # on it never holds: one round trip for the metadata, _common)
    first_start, first_end, _first_w = load_segment(seg_indptr_ptr, weight_idx_ptr, seg_first)
    col0 = pid_n * BLOCK_N
    if (col0 >= width) | (first_start > first_end):
        return
    rn = col0 + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_R)
    n_mask = (rn < width) | EVEN_N
    k_mask = (rk < RANK) | EVEN_R
    v_cols = p * RANK + rk
    seg_stop = tl.minimum(seg_first + SEGS_PER_PROG, S)
    for seg in range(seg_first, seg_stop):
        start, end, w = load_segment(seg_indptr_ptr, weight_idx_ptr, seg)
        b_seg = b_ptr + w * stride_bl
        if USE_DOT:
            # B^T tile [BLOCK_R, BLOCK_N], once per segment; BLOCK_M rows of v per tl.dot
            b_ptrs = b_seg + (off + rn)[None, :] * RANK + rk[:, None]
            if EVEN_R and EVEN_N:
                b = tl.load(b_ptrs, eviction_policy=EVICT_W)
            else:
                b_mask = k_mask[:, None] & n_mask[None, :]
                b = tl.load(b_ptrs, mask=b_mask, other=0.0, eviction_policy=EVICT_W)
            rm = tl.arange(0, BLOCK_M)
            for m0 in range(start, end, BLOCK_M):
                rows = m0 + rm
                m_mask = rows < end
                v_ptrs = v_ptr + rows[:, None].to(tl.int64) * (NUM_PROJ * RANK) + v_cols[None, :]
                vt = tl.load(v_ptrs, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
                vt, bt = _dot_operands(vt, b, CAST_FP32)
                acc = tl.dot(vt, bt)
                y_ptrs = y_ptr + rows[:, None].to(tl.int64) * stride_yt + (off + rn)[None, :]
                _write_out(y_ptrs, acc, m_mask[:, None] & n_mask[None, :], scale, ACCUMULATE)
        else:
            # B tile [BLOCK_N, BLOCK_R] in fp32, once per segment; one token per step
            b_ptrs = b_seg + (off + rn)[:, None] * RANK + rk[None, :]
            if EVEN_R and EVEN_N:
                b = tl.load(b_ptrs, eviction_policy=EVICT_W)
            else:
                b_mask = n_mask[:, None] & k_mask[None, :]
                b = tl.load(b_ptrs, mask=b_mask, other=0.0, eviction_policy=EVICT_W)
            b = b.to(tl.float32)
            v_ptrs = v_ptr + start.to(tl.int64) * (NUM_PROJ * RANK) + v_cols  # [BLOCK_R]
            y_ptrs = y_ptr + start.to(tl.int64) * stride_yt + off + rn  # [BLOCK_N]
            for _ in range(start, end):
                vt = tl.load(v_ptrs) if EVEN_R else tl.load(v_ptrs, mask=k_mask, other=0.0)
                acc = tl.sum(b * vt.to(tl.float32)[None, :], axis=1)  # [BLOCK_N]
                _write_out(y_ptrs, acc, n_mask, scale, ACCUMULATE)
                v_ptrs += NUM_PROJ * RANK
                y_ptrs += stride_yt


Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _args(t: Tensors, scale: float, *dims: int) -> tuple:
    """Kernel arguments in the shared order: pointers (v, b, y, seg_indptr, weight_indices, proj_offsets), the
    given dimensions, strides, scale."""
    return (*t, *dims, t[1].stride(0), t[2].stride(0), float(scale))


def _even_n(h_outs: tuple[int, ...], bn: int) -> bool:
    """Whether BLOCK_N divides every projection's width (no column masks needed)."""
    return all(h % bn == 0 for h in h_outs)


def _align(h_outs: tuple[int, ...]) -> int:
    """Largest power of two up to 16 dividing every projection width (hence every column offset)."""
    a = 16
    while any(h % a for h in h_outs):
        a //= 2
    return a


def _whole_rank_meta(b: torch.Tensor, h_outs: tuple[int, ...], accumulate: bool, config: Mapping[str, int]) -> dict:
    """Meta-parameters of the kernels that hold a whole-rank v or B tile (``BLOCK_R``: the rank padded to a power
    of two of at least 16) and walk tiles of the other operand: rows/dot and cols/dot."""
    rank, block_r = b.shape[2], max(DOT_MIN, triton.next_power_of_2(b.shape[2]))
    return dict(
        RANK=rank,
        NUM_PROJ=len(h_outs),
        BLOCK_M=int(config["BLOCK_M"]),
        BLOCK_N=int(config["BLOCK_N"]),
        BLOCK_R=block_r,
        EVEN_R=rank == block_r,
        ACCUMULATE=accumulate,
        CAST_FP32=dot_cast_fp32(b),
        EVICT_W=EVICTION[int(config["WEIGHT_HINT"])],
        ALIGN=_align(h_outs),
        **launch_opts(config),
    )


def bind_tile_dot(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int, scale: float, accumulate: bool,
    config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """expand/tile/dot: grid (segments, row tiles of the longest segment, column tiles x projections), or with
    the segments' row tiles on one axis where that launches fewer programs (``row_tile_grid``)."""
    bm, bn, bk = int(config["BLOCK_M"]), int(config["BLOCK_N"]), int(config["BLOCK_K"])
    rank, P = b.shape[2], len(h_outs)
    segs, rows, flat = row_tile_grid(v.shape[0], weight_indices.shape[0], max_seg_len, bm)
    grid = (segs, rows, cdiv(max(h_outs), bn) * P)
    args = (*_args((v, b, y, seg_indptr, weight_indices, proj_offsets), scale), weight_indices.shape[0])
    meta = dict(
        FLAT_SEGS=flat,
        RANK=rank,
        NUM_PROJ=P,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
        EVEN_K=rank % bk == 0,
        EVEN_N=_even_n(h_outs, bn),
        ACCUMULATE=accumulate,
        CAST_FP32=dot_cast_fp32(b),
        EVICT_W=EVICTION[int(config["WEIGHT_HINT"])],
        ALIGN=_align(h_outs),
        **launch_opts(config),
    )

    def run() -> None:
        _expand_tile_kernel[grid](*args, **meta)

    return run


def bind_rows_dot(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int, scale: float, accumulate: bool,
    config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """expand/rows/dot: grid (segments, row tiles (``row_tile_grid``), groups of COL_TILES column tiles x
    projections); each program loads its rows of v once for the group's column tiles."""
    bm, bn, ct = int(config["BLOCK_M"]), int(config["BLOCK_N"]), int(config["COL_TILES"])
    segs, rows, flat = row_tile_grid(v.shape[0], weight_indices.shape[0], max_seg_len, bm)
    grid = (segs, rows, cdiv(cdiv(max(h_outs), bn), ct) * len(h_outs))
    args = (*_args((v, b, y, seg_indptr, weight_indices, proj_offsets), scale), weight_indices.shape[0])
    meta = dict(_whole_rank_meta(b, h_outs, accumulate, config), COL_TILES=ct, FLAT_SEGS=flat)

    def run() -> None:
        _expand_rows_kernel[grid](*args, **meta)

    return run


def bind_cols_dot(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int, scale: float, accumulate: bool,
    config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """expand/cols/dot: grid (segments, groups of ROW_TILES row tiles of the longest segment, column tiles x
    projections); each program loads its B tile once for the group's row tiles."""
    bm, bn, rt = int(config["BLOCK_M"]), int(config["BLOCK_N"]), int(config["ROW_TILES"])
    grid = (weight_indices.shape[0], cdiv(cdiv(max_seg_len, bm), rt), cdiv(max(h_outs), bn) * len(h_outs))
    args = _args((v, b, y, seg_indptr, weight_indices, proj_offsets), scale)
    meta = dict(_whole_rank_meta(b, h_outs, accumulate, config), ROW_TILES=rt)

    def run() -> None:
        _expand_cols_kernel[grid](*args, **meta)

    return run


def bind_gemv(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int, scale: float, accumulate: bool,
    config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """expand/gemv/fma: grid (segments, column tiles x projections); B tile loaded once per program."""
    bt, bn = int(config["BLOCK_T"]), int(config["BLOCK_N"])
    rank, P = b.shape[2], len(h_outs)
    br = triton.next_power_of_2(rank)
    grid = (weight_indices.shape[0], cdiv(max(h_outs), bn) * P)
    args = _args((v, b, y, seg_indptr, weight_indices, proj_offsets), scale)
    meta = dict(
        RANK=rank,
        NUM_PROJ=P,
        BLOCK_T=bt,
        BLOCK_N=bn,
        BLOCK_R=br,
        EVEN_R=br == rank,
        EVEN_N=_even_n(h_outs, bn),
        ACCUMULATE=accumulate,
        EVICT_W=EVICTION[int(config["WEIGHT_HINT"])],
        ALIGN=_align(h_outs),
        **launch_opts(config),
    )

    def run() -> None:
        _expand_gemv_kernel[grid](*args, **meta)

    return run


def bind_walk(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int, scale: float, accumulate: bool,
    config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """expand/walk/segments: grid (segment groups, column tiles, projections); tl.dot or FMA per USE_DOT."""
    spp, bm, bn = int(config["SEGS_PER_PROG"]), int(config["BLOCK_M"]), int(config["BLOCK_N"])
    use_dot = bool(config["USE_DOT"])
    rank, P, S = b.shape[2], len(h_outs), weight_indices.shape[0]
    br = triton.next_power_of_2(rank)
    if use_dot:
        br = max(DOT_MIN, br)
    grid = (cdiv(S, spp), cdiv(max(h_outs), bn), P)
    args = _args((v, b, y, seg_indptr, weight_indices, proj_offsets), scale, S)
    meta = dict(
        RANK=rank,
        NUM_PROJ=P,
        SEGS_PER_PROG=spp,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_R=br,
        USE_DOT=use_dot,
        EVEN_R=br == rank,
        EVEN_N=_even_n(h_outs, bn),
        ACCUMULATE=accumulate,
        CAST_FP32=dot_cast_fp32(b),
        EVICT_W=EVICTION[int(config["WEIGHT_HINT"])],
        ALIGN=_align(h_outs),
        **launch_opts(config),
    )

    def run() -> None:
        _expand_walk_kernel[grid](*args, **meta)

    return run
