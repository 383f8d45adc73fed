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
