"""Baseline: vLLM's default Triton LoRA path (the V1 ``lora_shrink`` / ``lora_expand`` generation).

Clean-room reproduction from the documented behaviour (shared/reference/sgmv-kernels.md, 2.2); no vLLM code.
Semantics as ``scenario.py``: shrink ``v (+)= scale * x @ A[w]^T``, expand ``y (+)= scale * v @ B[w]^T``,
fused ``y (+)= scale * (x @ A[w]^T) @ B[w]^T``, per projection ``p`` of ``P`` (vLLM's *slices*).

What is reproduced:

- Metadata (built in ``bind``, as vLLM builds ``LoRAKernelMeta`` once per forward): the per-token adapter
  mapping expanded from the segments, ``token_indices_sorted_by_lora_ids`` (stable sort of that mapping;
  tokens are not regrouped, the kernels gather rows through the permutation), the active adapter ids, the
  token count per active adapter and their start offsets (cumsum with a leading 0). Grids are sized by the
  number of *active* adapters and by the total token count ``M = T`` for the row-tile axis, so programs
  whose row tile lies beyond their adapter's token count return at once (vLLM's early exits).
- shrink: grid ``(SPLIT_K * cdiv(M, BLOCK_M) * cdiv(r, BLOCK_N), P, active adapters)``, GROUP_SIZE_M=8
  swizzle of the (row tile, rank tile) pair, ``tl.dot`` with fp32 accumulation, split-K interleaved
  (split ``i`` takes every SPLIT_K-th BLOCK_K block), ``EVEN_K = K % (BLOCK_K * SPLIT_K) == 0``, scale applied
  in shrink, fp32 ``tl.atomic_add`` into an fp32 output zeroed by a ``.zero_()`` launch in the op. Default
  config: T < 128: BLOCK_M=32, BLOCK_N=16, BLOCK_K=256, SPLIT_K=64; T >= 128: BLOCK_K=32, SPLIT_K=8; always
  num_warps=4, num_stages=2. Split programs with no K to reduce still run one fully masked step and add
  zeros (at K=4096 only 16 of 64 splits have work): kept on purpose, it is the weak spot a tuner beats.
  Padding rows of a row tile re-load real rows (row ``i`` of the tile reads token ``i mod rows``) and rank
  columns past ``r`` re-load real columns (``n mod r``), so operand loads need no M/N masks; the store or
  atomic is masked.
- expand: grid ``(cdiv(M, BLOCK_M) * cdiv(max h_p, BLOCK_N), P, active adapters)``, BLOCK_M=64,
  BLOCK_N=128 (64 when P > 1), BLOCK_K=32, num_warps=4, num_stages=2, no split-K; per-slice widths and
  column offsets are read on the device (``proj_offsets``), programs past their slice's width return; an
  intermediate whose dtype differs from B's is cast to B's dtype before the dot (vLLM's CAST_TYPE: an fp32
  ``v`` with 16-bit weights is rounded to 16 bits); ``add_inputs`` is ``s.accumulate``. When every width
  is a multiple of 16 the device-read column offset carries a ``tl.multiple_of`` hint (a compiler hint
  only: without it the y accesses do not vectorise and the kernel spills registers on sm_90).
- fused: vLLM has no fused kernel; its ``add_lora_linear`` is shrink into an fp32 ``[P, T, r]`` buffer then
  expand with ``add_inputs``: here the buffer is allocated in ``bind``, and the closure makes three launches
  (zero, shrink with the scale, expand with scale 1 and ``add_inputs = s.accumulate``).

Where it departs, and why:

- expand multiplies by ``s.scale``: vLLM's expand has no scale (it lives in shrink), but our expand op's
  semantics include it. In fused the scale is applied once, in shrink, as vLLM does.
- shrink with ``accumulate=True`` skips the ``.zero_()`` and adds atomically onto ``v`` (vLLM always
  overwrites). vLLM requires an fp32 shrink output; with ``inter_dtype="input"`` the shrink accumulates into
  an fp32 workspace ``[T, P*r]`` (allocated in ``bind``, zeroed in the closure) and a small second kernel
  casts it into ``v`` (adding the old ``v`` when accumulating).
- fused rounding: our semantics round the intermediate to ``ops.v.dtype``. The buffer stays fp32 (atomics),
  and the expand rounds it when it loads it: to the input dtype through the CAST_TYPE cast (which is what
  storing it in ``ops.v.dtype`` would give when ``inter_dtype="input"``). With ``inter_dtype="fp32"`` and
  16-bit inputs vLLM's cast still rounds to 16 bits before the dot; kept (within tolerance).
- no ``-1`` (no-LoRA) tokens exist in our scenarios; the kernels still return early on a negative id.
- split-K is always > 1 with the default configs, so only the atomic path of vLLM's shrink is written.

Tested in the Triton interpreter (fp32, fp16, bf16; one-token to long segments; ranks 8..128; K not a
multiple of the blocks; P = 1..3 with different widths; accumulate both ways; inter fp32 and input; the
T >= 128 config) against ``reference_loop``; compiled ahead of time for sm_90.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import triton
import triton.language as tl

from dop_tui.kernels._common import cdiv, dot_cast_fp32
from dop_tui.operands import Operands


@triton.jit
def _vllm_shrink_kernel(
    # pointers
    x_ptr,
    a_ptr,
    out_ptr,
    sorted_tok_ptr,
    lora_ids_ptr,
    lora_ntok_ptr,
    lora_start_ptr,
    # dimensions
    M,
    K,
    N,
    # strides (innermost strides are 1: operands are contiguous)
    stride_xt,
    stride_al,
    stride_an,
    stride_os,
    stride_ot,
    # scalars
    scale,
    # meta-parameters
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    SPLIT_K: tl.constexpr,
    GROUP_SIZE_M: tl.constexpr,
    EVEN_K: tl.constexpr,
    CAST_FP32: tl.constexpr,
):
    pid_skmn = tl.program_id(0)
    slice_id = tl.program_id(1)
    lora_idx = tl.program_id(2)
    pid_sk = pid_skmn % SPLIT_K
    pid_mn = pid_skmn // SPLIT_K
    # GROUP_SIZE_M swizzle of (row tile, rank tile): consecutive programs share rank tiles of A in L2.
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_SIZE_M * num_pid_n
    first_m = (pid_mn // per_group) * GROUP_SIZE_M
    group_m = tl.minimum(num_pid_m - first_m, GROUP_SIZE_M)
    pid_m = first_m + (pid_mn % per_group) % group_m
    pid_n = (pid_mn % per_group) // group_m

    lora_id = tl.load(lora_ids_ptr + lora_idx)
    if lora_id < 0:
        return
    ntok = tl.load(lora_ntok_ptr + lora_idx)
    m0 = pid_m * BLOCK_M
    if m0 >= ntok:
        return
    m_len = tl.minimum(ntok - m0, BLOCK_M)
    first = tl.load(lora_start_ptr + lora_idx)
    # Padding rows re-load real rows of the tile; only the final atomic is masked.
    offs_m = tl.arange(0, BLOCK_M)
    rows = tl.load(sorted_tok_ptr + first + m0 + offs_m % m_len).to(tl.int64)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = pid_sk * BLOCK_K + tl.arange(0, BLOCK_K)
    a_rows = (slice_id * N + rn % N).to(tl.int64)
    x_ptrs = x_ptr + rows[:, None] * stride_xt + rk[None, :]
    a_ptrs = a_ptr + lora_id.to(tl.int64) * stride_al + a_rows[None, :] * stride_an + rk[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for step in range(0, tl.cdiv(K, BLOCK_K * SPLIT_K)):
        if EVEN_K:
            xt = tl.load(x_ptrs)
            at = tl.load(a_ptrs)
        else:
            k_left = K - step * (BLOCK_K * SPLIT_K)
            xt = tl.load(x_ptrs, mask=rk[None, :] < k_left, other=0.0)
            at = tl.load(a_ptrs, mask=rk[:, None] < k_left, other=0.0)
        if CAST_FP32:
            xt = xt.to(tl.float32)
            at = at.to(tl.float32)
        acc += tl.dot(xt, at)
        x_ptrs += BLOCK_K * SPLIT_K
        a_ptrs += BLOCK_K * SPLIT_K
    acc = acc * scale
    o_ptrs = out_ptr + slice_id.to(tl.int64) * stride_os + rows[:, None] * stride_ot + rn[None, :]
    o_mask = (offs_m < m_len)[:, None] & (rn < N)[None, :]
    tl.atomic_add(o_ptrs, acc, mask=o_mask)


@triton.jit
def _vllm_expand_kernel(
    # pointers
    in_ptr,
    b_ptr,
    y_ptr,
    sorted_tok_ptr,
    lora_ids_ptr,
    lora_ntok_ptr,
    lora_start_ptr,
    proj_off_ptr,
    # dimensions
    M,
    K,
    MAX_N,
    # strides (innermost strides are 1: operands are contiguous)
    stride_is,
    stride_it,
    stride_bl,
    stride_bh,
    stride_yt,
    # scalars
    scale,
    # meta-parameters
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    EVEN_K: tl.constexpr,
    COL_ALIGN: tl.constexpr,
    ACCUMULATE: tl.constexpr,
    CAST_FP32: tl.constexpr,
):
    pid_mn = tl.program_id(0)
    slice_id = tl.program_id(1)
    lora_idx = tl.program_id(2)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    pid_m = pid_mn % num_pid_m
    pid_n = pid_mn // num_pid_m
    col0 = tl.multiple_of(tl.load(proj_off_ptr + slice_id), COL_ALIGN)
    N = tl.load(proj_off_ptr + slice_id + 1) - col0
    if pid_n * BLOCK_N >= N:
        return
    lora_id = tl.load(lora_ids_ptr + lora_idx)
    if lora_id < 0:
        return
    ntok = tl.load(lora_ntok_ptr + lora_idx)
    m0 = pid_m * BLOCK_M
    if m0 >= ntok:
        return
    m_len = tl.minimum(ntok - m0, BLOCK_M)
    first = tl.load(lora_start_ptr + lora_idx)
    offs_m = tl.arange(0, BLOCK_M)
    rows = tl.load(sorted_tok_ptr + first + m0 + offs_m % m_len).to(tl.int64)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    b_rows = (col0 + rn % N).to(tl.int64)
    in_ptrs = in_ptr + slice_id.to(tl.int64) * stride_is + rows[:, None] * stride_it + rk[None, :]
    b_ptrs = b_ptr + lora_id.to(tl.int64) * stride_bl + b_rows[None, :] * stride_bh + rk[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for step in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            vt = tl.load(in_ptrs)
            bt = tl.load(b_ptrs)
        else:
            k_left = K - step * BLOCK_K
            vt = tl.load(in_ptrs, mask=rk[None, :] < k_left, other=0.0)
            bt = tl.load(b_ptrs, mask=rk[:, None] < k_left, other=0.0)
        vt = vt.to(b_ptr.dtype.element_ty)  # vLLM's CAST_TYPE: the intermediate takes the weights' dtype
        if CAST_FP32:
            vt = vt.to(tl.float32)
            bt = bt.to(tl.float32)
        acc += tl.dot(vt, bt)
        in_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    acc = acc * scale
    y_ptrs = y_ptr + rows[:, None] * stride_yt + (col0 + rn)[None, :]
    y_mask = (offs_m < m_len)[:, None] & (rn < N)[None, :]
    if ACCUMULATE:
        acc += tl.load(y_ptrs, mask=y_mask, other=0.0).to(tl.float32)
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=y_mask)


@triton.jit
def _vllm_cast_kernel(
    # pointers
    src_ptr,
    dst_ptr,
    # dimensions
    numel,
    # meta-parameters
    BLOCK: tl.constexpr,
    ACCUMULATE: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    val = tl.load(src_ptr + offs, mask=mask, other=0.0)
    if ACCUMULATE:
        val += tl.load(dst_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(dst_ptr + offs, val.to(dst_ptr.dtype.element_ty), mask=mask)


_CAST_BLOCK = 1024


def _lora_meta(ops: Operands) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """vLLM's per-forward metadata from our segments: (sorted token indices, active adapter ids, tokens per
    active adapter, their start offsets in the sorted order, number of active adapters)."""
    s = ops.scenario
    dev = ops.x.device
    lens = torch.tensor(s.seg_lens, dtype=torch.int64, device=dev)
    mapping = torch.repeat_interleave(ops.weight_indices, lens, output_size=s.num_tokens)
    sorted_ids, order = torch.sort(mapping, stable=True)
    lora_ids, ntok = torch.unique_consecutive(sorted_ids, return_counts=True)
    start = torch.zeros(lora_ids.numel() + 1, dtype=torch.int32, device=dev)
    start[1:] = torch.cumsum(ntok, 0)
    return order.contiguous(), lora_ids.to(torch.int32), ntok.to(torch.int32), start, s.distinct_adapters


def _shrink_defaults(num_tokens: int) -> dict[str, int]:
    small = num_tokens < 128
    return dict(BLOCK_M=32, BLOCK_N=16, BLOCK_K=256 if small else 32, SPLIT_K=64 if small else 8, GROUP_SIZE_M=8)


def _expand_defaults(num_slices: int) -> dict[str, int]:
    return dict(BLOCK_M=64, BLOCK_N=64 if num_slices > 1 else 128, BLOCK_K=32)


_OPTS = dict(num_warps=4, num_stages=2)


def _shrink_launch(ops: Operands, meta: tuple, out: torch.Tensor, stride_os: int, stride_ot: int) -> Callable:
    """A launcher of vLLM's shrink of ``ops`` into the fp32 ``out`` (slice ``p`` at ``p*stride_os``)."""
    s = ops.scenario
    order, lora_ids, ntok, start, n_active = meta
    cfg = _shrink_defaults(s.num_tokens)
    M, K, N = s.num_tokens, s.h_in, s.rank
    grid = (cfg["SPLIT_K"] * cdiv(M, cfg["BLOCK_M"]) * cdiv(N, cfg["BLOCK_N"]), s.num_proj, n_active)
    x, a = ops.x, ops.a
    args = (x, a, out, order, lora_ids, ntok, start, M, K, N, x.stride(0), a.stride(0), a.stride(1))
    args += (stride_os, stride_ot, float(s.scale))
    kw = dict(cfg, EVEN_K=K % (cfg["BLOCK_K"] * cfg["SPLIT_K"]) == 0, CAST_FP32=dot_cast_fp32(x), **_OPTS)

    def launch() -> None:
        _vllm_shrink_kernel[grid](*args, **kw)

    return launch


def _expand_launch(
    ops: Operands,
    meta: tuple,
    inp: torch.Tensor,
    stride_is: int,
    stride_it: int,
    scale: float,
    accumulate: bool,
) -> Callable:
    """A launcher of vLLM's expand of ``inp`` (slice ``p`` at ``p*stride_is``) into ``ops.y``."""
    s = ops.scenario
    order, lora_ids, ntok, start, n_active = meta
    cfg = _expand_defaults(s.num_proj)
    M, K, max_n = s.num_tokens, s.rank, max(s.h_outs)
    grid = (cdiv(M, cfg["BLOCK_M"]) * cdiv(max_n, cfg["BLOCK_N"]), s.num_proj, n_active)
    b, y = ops.b, ops.y
    args = (inp, b, y, order, lora_ids, ntok, start, ops.proj_offsets, M, K, max_n)
    args += (stride_is, stride_it, b.stride(0), b.stride(1), y.stride(0), float(scale))
    # Slice offsets are read on the device: say when they are multiples of 16 (vectorised y accesses).
    col_align = 16 if all(h % 16 == 0 for h in s.h_outs) else 1
    kw = dict(cfg, EVEN_K=K % cfg["BLOCK_K"] == 0, COL_ALIGN=col_align, ACCUMULATE=accumulate)
    kw.update(CAST_FP32=dot_cast_fp32(b), **_OPTS)

    def launch() -> None:
        _vllm_expand_kernel[grid](*args, **kw)

    return launch


def bind_shrink(ops: Operands, config: Mapping[str, int]) -> Callable[[], None]:
    """shrink/baseline/vllm: zero (when overwriting), split-K atomic shrink; fp32 workspace + cast when
    ``v`` is 16-bit. ``config`` is ignored: the baseline has fixed choices."""
    s = ops.scenario
    meta = _lora_meta(ops)
    v, R = ops.v, s.total_rank
    if v.dtype == torch.float32:
        shrink = _shrink_launch(ops, meta, v, s.rank, v.stride(0))
        zero_first = not s.accumulate

        def run() -> None:
            if zero_first:
                v.zero_()
            shrink()

        return run

    ws = torch.empty((s.num_tokens, R), dtype=torch.float32, device=v.device)
    shrink = _shrink_launch(ops, meta, ws, s.rank, R)
    numel = s.num_tokens * R
    cast_grid = (cdiv(numel, _CAST_BLOCK),)
    accumulate = s.accumulate

    def run_cast() -> None:
        ws.zero_()
        shrink()
        _vllm_cast_kernel[cast_grid](ws, v, numel, BLOCK=_CAST_BLOCK, ACCUMULATE=accumulate, num_warps=4)

    return run_cast


def bind_expand(ops: Operands, config: Mapping[str, int]) -> Callable[[], None]:
    """expand/baseline/vllm: one launch, grid (row x column tiles, slices, active adapters).
    ``config`` is ignored."""
    s = ops.scenario
    meta = _lora_meta(ops)
    return _expand_launch(ops, meta, ops.v, s.rank, ops.v.stride(0), s.scale, s.accumulate)


def bind_fused(ops: Operands, config: Mapping[str, int]) -> Callable[[], None]:
    """fused/baseline/vllm: zero an fp32 [P, T, r] buffer, shrink into it (scaled), expand from it.
    ``config`` is ignored."""
    s = ops.scenario
    meta = _lora_meta(ops)
    T, r = s.num_tokens, s.rank
    buf = torch.empty((s.num_proj, T, r), dtype=torch.float32, device=ops.x.device)
    shrink = _shrink_launch(ops, meta, buf, T * r, r)
    expand = _expand_launch(ops, meta, buf, T * r, r, 1.0, s.accumulate)

    def run() -> None:
        buf.zero_()
        shrink()
        expand()

    return run
