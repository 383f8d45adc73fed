"""Helpers shared by the kernel files: interpreter detection, dtype mapping, launch-option checks.

A rule every kernel keeps: a program loads all of its metadata (segment bounds, adapter index, projection
offsets) before its first early exit, so that they share one round trip to memory. ``load_segment`` makes the
segment's end depend on the adapter index: otherwise the compiler sinks the index's load past the exit to its
first use, where it waits for the exit's loads and the weight loads wait for it, two or three dependent round
trips before the first weight byte, as the sm_90 code shows (``tests/aot_compile_all.py`` counts the loads
before each kernel's first exit).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import triton
import triton.language as tl

# The Triton interpreter computes bf16 tl.dot wrongly (triton issue 11584): kernels cast dot operands to
# fp32 under a constexpr flag that is on only when interpreting.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

EVICTION = {0: "", 1: "evict_first", 2: "evict_last"}

TL_DTYPE = {torch.float16: tl.float16, torch.bfloat16: tl.bfloat16, torch.float32: tl.float32}


@triton.jit
def load_segment(seg_indptr_ptr, weight_idx_ptr, seg):
    """``(start, end, w)`` of segment ``seg``, loaded at once; ``end`` is ``start`` when ``w < 0`` (which never
    holds for an adapter index), so an exit on the bounds waits for ``w`` too and ``w`` loads with them."""
    start = tl.load(seg_indptr_ptr + seg)
    end = tl.load(seg_indptr_ptr + seg + 1)
    w = tl.load(weight_idx_ptr + seg).to(tl.int64)
    return start, tl.where(w < 0, start, end), w


@triton.jit
def locate_tile(seg_indptr_ptr, weight_idx_ptr, seg, pid_m, n_segs, BLOCK_M: tl.constexpr, FLAT_SEGS: tl.constexpr):
    """``(end, w, row0)`` of a program's row tile: its segment's end and adapter index, and its first row.
    With ``FLAT_SEGS`` 0 the grid has an axis of segments (``seg``) and one of the longest segment's row tiles
    (``pid_m``): tile ``pid_m`` of segment ``seg``. Otherwise ``pid_m`` counts the row tiles of all ``n_segs``
    segments in order (``FLAT_SEGS``: a power of two >= ``n_segs``, ``row_tile_grid``): every segment's bounds
    and adapter index arrive in one round trip, and the tile lies in the segment ``s`` with ``first[s] <= pid_m
    < first[s] + tiles[s]``, where ``tiles[s] = cdiv(len[s], BLOCK_M)`` and ``first`` is its exclusive prefix
    sum; past the last tile the range is empty (``row0 >= end``)."""
    if FLAT_SEGS == 0:
        start, end, w = load_segment(seg_indptr_ptr, weight_idx_ptr, seg)
        row0 = start + pid_m * BLOCK_M
    else:
        i = tl.arange(0, FLAT_SEGS)
        live = i < n_segs
        lo = tl.load(seg_indptr_ptr + i, mask=live, other=0)
        hi = tl.load(seg_indptr_ptr + i + 1, mask=live, other=0)
        ws = tl.load(weight_idx_ptr + i, mask=live, other=0)
        tiles = (hi - lo + BLOCK_M - 1) // BLOCK_M
        first = tl.cumsum(tiles, 0) - tiles
        own = live & (first <= pid_m) & (pid_m < first + tiles)
        start = tl.sum(tl.where(own, lo, 0), 0)
        w = tl.sum(tl.where(own, ws, 0), 0).to(tl.int64)
        end = tl.where(w < 0, start, tl.sum(tl.where(own, hi, 0), 0))  # ``w`` arrives before the exit too
        row0 = start + (pid_m - tl.sum(tl.where(own, first, 0), 0)) * BLOCK_M
    return end, w, row0


def row_tile_grid(tokens: int, n_segs: int, max_seg_len: int, block_m: int) -> tuple[int, int, int]:
    """``(segment axis, row-tile axis, FLAT_SEGS)`` of a grid over the segments' row tiles (``locate_tile``):
    ``n_segs x cdiv(max_seg_len, block_m)``, or, where that is more programs, the row tiles of all segments in
    order. Those number at most ``cdiv(tokens, block_m) + n_segs - 1`` (each segment leaves less than one tile
    part-empty), so a batch with one long segment and short ones launches no programs that only exit."""
    rows = cdiv(max_seg_len, block_m)
    flat = cdiv(tokens, block_m) + n_segs - 1
    if n_segs > 1 and flat < n_segs * rows:
        return 1, flat, triton.next_power_of_2(n_segs)
    return n_segs, rows, 0


def dot_cast_fp32(t: torch.Tensor) -> bool:
    """Whether dot operands of tensor ``t``'s dtype must be cast to fp32 (bf16 in the interpreter)."""
    return INTERPRET and t.dtype == torch.bfloat16


def launch_opts(config: Mapping[str, int]) -> dict[str, int]:
    """The compiler options of a config (num_warps, num_stages) as launch keyword arguments."""
    return {"num_warps": int(config["num_warps"]), "num_stages": int(config["num_stages"])}


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def col_align(h_outs: tuple[int, ...]) -> int:
    """The largest power of two (at most 16) dividing every projection offset into y's columns."""
    align = 16
    for h in h_outs:
        while h % align:
            align //= 2
    return align
