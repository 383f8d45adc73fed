"""Test-only kernels that are wrong on purpose, to prove the correctness gate catches them."""

import triton
import triton.language as tl

from dop_tui.kernels._common import cdiv, dot_cast_fp32


@triton.jit
def _shrink_skips_last_tile_kernel(
    x_ptr, a_ptr, v_ptr, seg_indptr_ptr, weight_idx_ptr,
    K, N,
    stride_xt, stride_al, stride_an, stride_vt,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, CAST_FP32: tl.constexpr,
):  # fmt: skip
    seg = tl.program_id(0)
    pid_n = tl.program_id(1)
    if pid_n == tl.num_programs(1) - 1:  # the bug: the last rank tile is never written
        return
    start = tl.load(seg_indptr_ptr + seg)
    end = tl.load(seg_indptr_ptr + seg + 1)
    w = tl.load(weight_idx_ptr + seg).to(tl.int64)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    for row0 in range(start, end, BLOCK_M):
        rm = row0 + tl.arange(0, BLOCK_M)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            xt = tl.load(
                x_ptr + rm[:, None] * stride_xt + k0 + rk[None, :],
                mask=(rm[:, None] < end) & (k0 + rk[None, :] < K),
                other=0.0,
            )
            at = tl.load(
                a_ptr + w * stride_al + rn[None, :] * stride_an + k0 + rk[:, None],
                mask=(rn[None, :] < N) & (k0 + rk[:, None] < K),
                other=0.0,
            )
            if CAST_FP32:
                xt = xt.to(tl.float32)
                at = at.to(tl.float32)
            acc += tl.dot(xt, at)
        tl.store(v_ptr + rm[:, None] * stride_vt + rn[None, :], acc.to(v_ptr.dtype.element_ty),
                 mask=(rm[:, None] < end) & (rn[None, :] < N))  # fmt: skip


def bind_shrink_skips_last_tile(ops, config):
    """Overwriting shrink (scale 1) that leaves the last 16-column rank tile unwritten."""
    s, x, a, v = ops.scenario, ops.x, ops.a, ops.v
    grid = (s.num_segments, cdiv(s.total_rank, 16))

    def run():
        _shrink_skips_last_tile_kernel[grid](
            x, a, v, ops.seg_indptr, ops.weight_indices, s.h_in, s.total_rank,
            x.stride(0), a.stride(0), a.stride(1), v.stride(0),
            BLOCK_M=16, BLOCK_N=16, BLOCK_K=32, CAST_FP32=dot_cast_fp32(x),
        )  # fmt: skip

    return run
