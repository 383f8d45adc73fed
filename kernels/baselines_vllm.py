"""Baselines: vLLM's Triton LoRA path (the V1 ``lora_shrink`` / ``lora_expand`` generation), with its default
configs (``vllm``) or with tuned configs (``vllm-tuned``).

Clean-room reproduction from the documented behaviour of vLLM 0.18-0.27, whose device code is unchanged across
those releases (shared/reference/sgmv-kernels.md, 2.2, and a reading of the released ops); no vLLM code.
Semantics as ``scenario.py``: shrink ``v (+)= scale * x @ A[w]^T``, expand ``y (+)= scale * v @ B[w]^T``,
fused ``y (+)= scale * (x @ A[w]^T) @ B[w]^T``, per projection ``p`` of ``P`` (vLLM's *slices*).

What is reproduced:

- Metadata (built in ``bind``, as vLLM builds ``LoRAKernelMeta`` once per forward): the per-token adapter
  mapping expanded from the segments, ``token_indices_sorted_by_lora_ids`` (stable sort; tokens are not
  regrouped, the kernels gather rows through the permutation), the active adapter ids, the token count per
  adapter and their start offsets. The adapter-id array has one slot more than there are adapters, holding -1
  (vLLM sizes it ``max_loras + 1``, and with ``max_loras`` = the adapters in the batch its grid's third axis is
  that length: the extra program returns at once). The row-tile axis is sized by the total token count, so
  programs beyond their adapter's tokens return at once. Offsets are 32-bit, as vLLM's (64-bit only when an
  operand has 2^31 elements or more).
- shrink: grid ``(SPLIT_K * cdiv(M, BLOCK_M) * cdiv(r, BLOCK_N), P, adapters + 1)``, GROUP_SIZE_M swizzle of
  the (row tile, rank tile) pair; exits in vLLM's order (adapter id -1, then row tile past the adapter's tokens).
  The K loop is vLLM's ``mm_k``: ``cdiv(K, BLOCK_K * SPLIT_K)`` steps, split ``i`` taking every SPLIT_K-th
  BLOCK_K block; unless K divides evenly, a block starting past K is skipped (no load, no dot), a whole block
  loads unmasked and only the tail block is masked; the weight tile loads before the activation tile.
  ``tl.dot`` accumulates in fp32, the scale is applied in the epilogue, and the fp32 output takes a relaxed
  ``tl.atomic_add`` when SPLIT_K > 1 (a plain store otherwise). Split programs with no K still reach the
  atomic and add zeros: at K=4096 with the defaults 48 of 64 splits do. Padding rows of a row tile re-load
  real rows (row ``i`` reads token ``i mod rows``) and rank columns past ``r`` re-load real columns, so the
  operand loads need no M/N masks; the store or atomic is masked. The op zeroes its fp32 output first (vLLM's
  ``lora_shrink`` does, every call).
- expand: grid ``(cdiv(M, BLOCK_M) * cdiv(max h_p, BLOCK_N), P, adapters + 1)``; exits in vLLM's order
  (adapter, row tile, column tile past the slice's width); the fp32 intermediate is cast to the weights'
  dtype before the dot (vLLM's CAST_TYPE); the tile is rounded to the output dtype and then, with
  ``add_inputs`` (``s.accumulate``), the old ``y`` is added in that dtype, as vLLM does.
- Configs (``vllm_configs``): the defaults (shrink T < 128: BLOCK_M 32, BLOCK_N 16, BLOCK_K 256, SPLIT_K 64,
  GROUP_SIZE_M 8; T >= 128: BLOCK_K 32, SPLIT_K 8; 4 warps, 2 stages; expand BLOCK_M 64, BLOCK_N 128 (64 when
  P > 1), BLOCK_K 32, 4 warps, 2 stages), or for ``vllm-tuned`` the tuned entry vLLM's nearest-key rule picks
  from ``vllm_tuned_h100.TABLES`` (vLLM's H100 files as they resolved for the yardstick cases; a slice count
  with no entry keeps the defaults).
- fused: vLLM has no fused kernel; its ``add_lora_linear`` allocates an fp32 ``[P, T, r]`` buffer (no launch),
  then ``lora_shrink`` (zeroing launch, shrink with the scale) and ``lora_expand`` with ``add_inputs``: the
  closure makes those three launches.

Where it departs, and why:

- expand multiplies by ``s.scale`` (vLLM's expand has none: its scale lives in shrink), because our expand op's
  semantics include it; fused applies it once, in shrink, as vLLM does.
- shrink with ``accumulate=True`` skips the zeroing and adds atomically onto ``v`` (vLLM always overwrites).
  vLLM needs an fp32 shrink output; with ``inter_dtype="input"`` the shrink accumulates into an fp32 workspace
  ``[T, P*r]`` (allocated in ``bind``, zeroed in the closure) and a small second kernel casts it into ``v``.
- several slices: vLLM passes one weight tensor per slice through a pointer table and reads each slice's
  output offset from a 64-bit tensor with no alignment hint; here the slices are rows of one stacked tensor,
  and the offsets, when multiples of 16, carry a ``tl.multiple_of`` hint (without it the y accesses do not
  vectorise and the kernel spills on sm_90). Both only make the baseline faster.
- no ``-1`` (no-LoRA) tokens exist in our scenarios; the kernels still return early on the -1 id.

Tested in the Triton interpreter (fp32, fp16, bf16; one-token to long segments; ranks 8..128; K not a
multiple of the blocks; P = 1..3 with different widths; accumulate both ways; inter fp32 and input; the
T >= 128 config; tuned configs) against ``reference_loop``; compiled ahead of time for sm_90. Timed on an H200
beside the real ops' times: ``bench/baselines_vs_reference.py``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import torch
import triton
import triton.language as tl

from . import vllm_configs
from ._common import cdiv, dot_cast_fp32
from .vllm_tuned_h100 import TABLES

INT32_LIMIT = 2**31


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
    ACCUMULATE: tl.constexpr,
    IDX64: tl.constexpr,
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
    if lora_id == -1:
        return
    ntok = tl.load(lora_ntok_ptr + lora_idx)
    m0 = pid_m * BLOCK_M
    if m0 >= ntok:
        return
    m_len = tl.minimum(ntok - m0, BLOCK_M)
    first = tl.load(lora_start_ptr + lora_idx)
    # Padding rows re-load real rows of the tile; only the final atomic is masked.
    offs_m = tl.arange(0, BLOCK_M)
    rows = tl.load(sorted_tok_ptr + first + m0 + offs_m % m_len)
    if IDX64:
        rows = rows.to(tl.int64)
        lora_id = lora_id.to(tl.int64)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rn = tl.max_contiguous(tl.multiple_of(offs_n % N, BLOCK_N), BLOCK_N)
    base_k = pid_sk * BLOCK_K
    rk = base_k + tl.arange(0, BLOCK_K)
    x_ptrs = x_ptr + rows[:, None] * stride_xt + rk[None, :]
    a_ptrs = a_ptr + lora_id * stride_al + (slice_id * N + rn)[None, :] * stride_an + rk[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    # vLLM's mm_k: a block starting past K is skipped; whole blocks load unmasked, the tail block masked.
    for step in range(0, tl.cdiv(K, BLOCK_K * SPLIT_K)):
        if EVEN_K:
            at = tl.load(a_ptrs)
            xt = tl.load(x_ptrs)
            if CAST_FP32:
                xt = xt.to(tl.float32)
                at = at.to(tl.float32)
            acc += tl.dot(xt, at)
        else:
            k0 = step * (BLOCK_K * SPLIT_K) + base_k
            if k0 < K:
                if k0 + BLOCK_K <= K:
                    at = tl.load(a_ptrs)
                    xt = tl.load(x_ptrs)
                else:
                    k_in = k0 + tl.arange(0, BLOCK_K) < K
                    at = tl.load(a_ptrs, mask=k_in[:, None], other=0.0)
                    xt = tl.load(x_ptrs, mask=k_in[None, :], other=0.0)
                if CAST_FP32:
                    xt = xt.to(tl.float32)
                    at = at.to(tl.float32)
                acc += tl.dot(xt, at)
        x_ptrs += BLOCK_K * SPLIT_K
        a_ptrs += BLOCK_K * SPLIT_K
    acc = acc * scale
    o_ptrs = out_ptr + slice_id * stride_os + rows[:, None] * stride_ot + offs_n[None, :]
    o_mask = (offs_m < m_len)[:, None] & (offs_n < N)[None, :]
    if SPLIT_K == 1:
        if ACCUMULATE:  # not vLLM's (its shrink overwrites): our shrink op may accumulate
            acc += tl.load(o_ptrs, mask=o_mask, other=0.0).to(tl.float32)
        tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=o_mask)
    else:
        tl.atomic_add(o_ptrs, acc, mask=o_mask, sem="relaxed")


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
    SLICES: tl.constexpr,
    COL_ALIGN: tl.constexpr,
    ACCUMULATE: tl.constexpr,
    IDX64: tl.constexpr,
    CAST_FP32: tl.constexpr,
):
    pid_mn = tl.program_id(0)
    slice_id = tl.program_id(1)
    lora_idx = tl.program_id(2)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    pid_m = pid_mn % num_pid_m
    pid_n = (pid_mn // num_pid_m) % tl.cdiv(MAX_N, BLOCK_N)
    lora_id = tl.load(lora_ids_ptr + lora_idx)
    if lora_id == -1:
        return
    ntok = tl.load(lora_ntok_ptr + lora_idx)
    m0 = pid_m * BLOCK_M
    if m0 >= ntok:
        return
    if SLICES == 1:
        col0 = 0
        N = MAX_N
    else:
        col0 = tl.multiple_of(tl.load(proj_off_ptr + slice_id), COL_ALIGN)
        N = tl.load(proj_off_ptr + slice_id + 1) - col0
    if pid_n * BLOCK_N >= N:
        return
    m_len = tl.minimum(ntok - m0, BLOCK_M)
    first = tl.load(lora_start_ptr + lora_idx)
    offs_m = tl.arange(0, BLOCK_M)
    rows = tl.load(sorted_tok_ptr + first + m0 + offs_m % m_len)
    if IDX64:
        rows = rows.to(tl.int64)
        lora_id = lora_id.to(tl.int64)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rn = tl.max_contiguous(tl.multiple_of(offs_n % N, BLOCK_N), BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    in_ptrs = in_ptr + slice_id * stride_is + rows[:, None] * stride_it + rk[None, :]
    b_ptrs = b_ptr + lora_id * stride_bl + (col0 + rn)[None, :] * stride_bh + rk[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for step in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            bt = tl.load(b_ptrs)
            vt = tl.load(in_ptrs)
        else:
            k0 = step * BLOCK_K
            if k0 + BLOCK_K <= K:
                bt = tl.load(b_ptrs)
                vt = tl.load(in_ptrs)
            else:
                k_in = k0 + rk < K
                bt = tl.load(b_ptrs, mask=k_in[:, None], other=0.0)
                vt = tl.load(in_ptrs, mask=k_in[None, :], other=0.0)
        vt = vt.to(b_ptr.dtype.element_ty)  # vLLM's CAST_TYPE: the intermediate takes the weights' dtype
        if CAST_FP32:
            vt = vt.to(tl.float32)
            bt = bt.to(tl.float32)
        acc += tl.dot(vt, bt)
        in_ptrs += BLOCK_K
        b_ptrs += BLOCK_K
    tile = (acc * scale).to(y_ptr.dtype.element_ty)
    cols = col0 + offs_n
    y_ptrs = y_ptr + rows[:, None] * stride_yt + cols[None, :]
    y_mask = (offs_m < m_len)[:, None] & (cols < col0 + N)[None, :]
    if ACCUMULATE:
        # the rounded tile plus the old output, rounded once: a 16-bit add (computed in fp32, which the
        # interpreter needs: its bf16 arithmetic is wrong)
        old = tl.load(y_ptrs, mask=y_mask, other=0.0).to(tl.float32)
        tile = (tile.to(tl.float32) + old).to(y_ptr.dtype.element_ty)
    tl.store(y_ptrs, tile, mask=y_mask)


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


def lora_meta(
    seg_lens: Sequence[int] | torch.Tensor, weight_indices: torch.Tensor, num_tokens: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """vLLM's per-forward metadata from segments: (token indices sorted by adapter, adapter ids with a trailing
    -1 slot, tokens per adapter, their start offsets), all int32 on ``weight_indices``' device. ``seg_lens`` is
    a host list or a device tensor (then the adapter count is read back: a synchronisation, as vLLM's own
    ``prepare_tensors`` makes once per forward)."""
    dev = weight_indices.device
    lens = torch.as_tensor(seg_lens, dtype=torch.int64, device=dev)
    mapping = torch.repeat_interleave(weight_indices.to(torch.int64), lens, output_size=num_tokens)
    sorted_ids, order = torch.sort(mapping, stable=True)
    ids, ntok = torch.unique_consecutive(sorted_ids, return_counts=True)
    lora_ids = torch.full((ids.numel() + 1,), -1, dtype=torch.int32, device=dev)
    lora_ids[:-1] = ids.to(torch.int32)
    counts = torch.zeros(ids.numel() + 1, dtype=torch.int32, device=dev)
    counts[:-1] = ntok.to(torch.int32)
    start = torch.zeros(ids.numel() + 2, dtype=torch.int32, device=dev)
    start[1:] = torch.cumsum(counts, 0)
    return order.to(torch.int32), lora_ids, counts, start


_LAYOUTS: OrderedDict[tuple, tuple[tuple, tuple]] = OrderedDict()
LAYOUTS_KEPT = 16  # segment layouts whose metadata is kept


def layout_meta(
    segments: Sequence[int] | torch.Tensor, weight_indices: torch.Tensor, num_tokens: int, *, indptr: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``lora_meta`` of these segments (lengths, or ``seg_indptr`` with ``indptr``), each call with tensors of its
    own: the metadata is computed (with its read-back) once while the same unchanged tensors come back, and
    copied for every further call. A timing harness binds one launch per rotated copy of the inputs (hundreds,
    all on one layout) and rotates the metadata with them, as the reference timing of vLLM's ops did; sharing
    one copy instead made the ops 7-10% faster on the H200 (the metadata stays in L2). The last ``LAYOUTS_KEPT``
    layouts are kept, with the tensors they were built from."""
    if isinstance(segments, torch.Tensor):
        seg_key: tuple = (id(segments), segments._version, indptr)
    else:
        seg_key = tuple(int(n) for n in segments)
    key = (id(weight_indices), weight_indices._version, str(weight_indices.device), seg_key, num_tokens)
    hit = _LAYOUTS.get(key)
    if hit is not None:
        _LAYOUTS.move_to_end(key)
        return tuple(t.clone() for t in hit[1])  # type: ignore[return-value]
    lens = (
        segments[1:] - segments[:-1] if indptr else (segments if isinstance(segments, torch.Tensor) else list(segments))
    )
    meta = lora_meta(lens, weight_indices, num_tokens)
    _LAYOUTS[key] = ((weight_indices, segments), meta)
    while len(_LAYOUTS) > LAYOUTS_KEPT:
        _LAYOUTS.popitem(last=False)
    return tuple(t.clone() for t in meta)  # type: ignore[return-value]


def _idx64(*tensors: torch.Tensor) -> bool:
    return any(t.numel() >= INT32_LIMIT for t in tensors)


def vllm_shrink(
    x: torch.Tensor,
    a: torch.Tensor,
    out: torch.Tensor,
    meta: tuple[torch.Tensor, ...],
    num_slices: int,
    scale: float,
    config: Mapping[str, int] | None,
    accumulate: bool = False,
) -> Callable[[], None]:
    """A launcher of vLLM's shrink: ``out[p, t, :] += scale * x[t] @ A[lora(t), p*r:(p+1)*r]^T`` with split-K
    (atomic, so ``out`` is fp32 and zeroed by the caller), or with SPLIT_K = 1 a store (adding the old ``out``
    when ``accumulate``); ``a[L, P*r, K]``, ``out`` viewed as ``[P, T, r]`` through its strides
    (``out.stride(0)`` between slices, ``out.stride(1)`` between tokens)."""
    order, lora_ids, ntok, start = meta
    M, K = x.shape
    N = a.shape[1] // num_slices
    c = vllm_configs.shrink_config(config, M)
    bm, bn, bk, sk = c["block_m"], c["block_n"], c["block_k"], c["split_k"]
    grid = (sk * cdiv(M, bm) * cdiv(N, bn), num_slices, lora_ids.numel())
    args = (x, a, out, order, lora_ids, ntok, start, M, K, N, x.stride(0), a.stride(0), a.stride(1))
    args += (out.stride(0), out.stride(1), float(scale))
    kw = dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, SPLIT_K=sk, GROUP_SIZE_M=c["group_size_m"],
              EVEN_K=K % (bk * sk) == 0, ACCUMULATE=accumulate, IDX64=_idx64(x, a, out), CAST_FP32=dot_cast_fp32(x),
              num_warps=c["num_warps"], num_stages=c["num_stages"])  # fmt: skip

    def launch() -> None:
        _vllm_shrink_kernel[grid](*args, **kw)

    return launch


def vllm_expand(
    inp: torch.Tensor,
    b: torch.Tensor,
    y: torch.Tensor,
    meta: tuple[torch.Tensor, ...],
    proj_offsets: torch.Tensor,
    h_outs: tuple[int, ...],
    scale: float,
    add_inputs: bool,
    config: Mapping[str, int],
) -> Callable[[], None]:
    """A launcher of vLLM's expand: ``y[t, off_p:off_p+h_p] (+)= scale * inp[p, t] @ B[lora(t), off_p:...]^T``
    with ``b[L, sum h_p, r]``, ``inp`` viewed as ``[P, T, r]`` through its strides, and ``proj_offsets`` the
    prefix sums of ``h_outs`` on the device."""
    order, lora_ids, ntok, start = meta
    M, K, P, max_n = y.shape[0], b.shape[2], len(h_outs), max(h_outs)
    c = vllm_configs.expand_config(config, P)
    bm, bn, bk = c["block_m"], c["block_n"], c["block_k"]
    grid = (cdiv(M, bm) * cdiv(max_n, bn), P, lora_ids.numel())
    args = (inp, b, y, order, lora_ids, ntok, start, proj_offsets, M, K, max_n)
    args += (inp.stride(0), inp.stride(1), b.stride(0), b.stride(1), y.stride(0), float(scale))
    # Slice offsets are read on the device: say when they are multiples of 16 (vectorised y accesses).
    col_align = 16 if all(h % 16 == 0 for h in h_outs) else 1
    kw = dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, EVEN_K=K % bk == 0, SLICES=P, COL_ALIGN=col_align,
              ACCUMULATE=add_inputs, IDX64=_idx64(inp, b, y), CAST_FP32=dot_cast_fp32(b),
              num_warps=c["num_warps"], num_stages=c["num_stages"])  # fmt: skip

    def launch() -> None:
        _vllm_expand_kernel[grid](*args, **kw)

    return launch


def _configs(
    tuned: bool, num_adapters: int, h_outs: tuple[int, ...], T: int, h_in: int, rank: int
) -> tuple[dict[str, int] | None, dict[str, int] | None]:
    """(shrink, expand) entries of the tuned table for this call, or (None, None) for the defaults."""
    if not tuned:
        return None, None
    max_loras, P = num_adapters + 1, len(h_outs)
    shrink = vllm_configs.lookup(TABLES["SHRINK"], max_loras, P, T, h_in, rank)
    expand = vllm_configs.lookup(TABLES["EXPAND_TRUE"], max_loras, P, T, rank, max(h_outs))
    return shrink, expand


def _bind_shrink(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, weight_indices: torch.Tensor, seg_lens: Sequence[int],
    h_outs: tuple[int, ...], scale: float, accumulate: bool, tuned: bool,
) -> Callable[[], None]:  # fmt: skip
    T, R = v.shape
    P = len(h_outs)
    meta = layout_meta(seg_lens, weight_indices, T)
    cfg = _configs(tuned, meta[1].numel() - 1, h_outs, T, x.shape[1], R // P)[0]
    if v.dtype == torch.float32:
        shrink = vllm_shrink(x, a, v.view(T, P, R // P).transpose(0, 1), meta, P, scale, cfg, accumulate)
        zero_first = not accumulate

        def run() -> None:
            if zero_first:
                v.zero_()
            shrink()

        return run

    ws = torch.empty((T, R), dtype=torch.float32, device=v.device)
    shrink = vllm_shrink(x, a, ws.view(T, P, R // P).transpose(0, 1), meta, P, scale, cfg)
    numel = T * R
    cast_grid = (cdiv(numel, _CAST_BLOCK),)

    def run_cast() -> None:
        ws.zero_()
        shrink()
        _vllm_cast_kernel[cast_grid](ws, v, numel, BLOCK=_CAST_BLOCK, ACCUMULATE=accumulate, num_warps=4)

    return run_cast


def _bind_expand(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, weight_indices: torch.Tensor, proj_offsets: torch.Tensor,
    seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool, tuned: bool,
) -> Callable[[], None]:  # fmt: skip
    T, rank, P = y.shape[0], b.shape[2], len(h_outs)
    meta = layout_meta(seg_lens, weight_indices, T)
    cfg = _configs(tuned, meta[1].numel() - 1, h_outs, T, 0, rank)[1]
    vs = v.view(T, P, rank).transpose(0, 1)
    return vllm_expand(vs, b, y, meta, proj_offsets, h_outs, scale, accumulate, cfg)


def _bind_fused(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
    tuned: bool,
) -> Callable[[], None]:  # fmt: skip
    T, rank, P = x.shape[0], b.shape[2], len(h_outs)
    meta = layout_meta(seg_lens, weight_indices, T)
    shrink_cfg, expand_cfg = _configs(tuned, meta[1].numel() - 1, h_outs, T, x.shape[1], rank)
    buf = torch.empty((P, T, rank), dtype=torch.float32, device=x.device)
    shrink = vllm_shrink(x, a, buf, meta, P, scale, shrink_cfg)
    expand = vllm_expand(buf, b, y, meta, proj_offsets, h_outs, 1.0, accumulate, expand_cfg)

    def run() -> None:
        buf.zero_()
        shrink()
        expand()

    return run


def bind_shrink(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
) -> Callable[[], None]:  # fmt: skip
    """shrink/baseline/vllm: zero (when overwriting), split-K atomic shrink; fp32 workspace + cast when ``v``
    is 16-bit. Default configs."""
    return _bind_shrink(x, a, v, weight_indices, seg_lens, h_outs, scale, accumulate, tuned=False)


def bind_shrink_sketch(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    max_seg_len: int, scale: float, accumulate: bool, config: Mapping[str, int], h_outs: tuple[int, ...],
) -> Callable[[], None]:  # fmt: skip
    """shrink/vllm/triton: vLLM's shrink with ``config`` in vLLM's own keys (block_m, block_n, block_k, split_k,
    group_size_m, num_warps, num_stages), one slice per projection. The metadata is built from the segments
    here (one read back). Zeroes ``v`` first when overwriting with split-K, as ``lora_shrink`` does."""
    T, P = x.shape[0], len(h_outs)
    meta = layout_meta(seg_indptr, weight_indices, T, indptr=True)
    split = int(config["split_k"])
    if split > 1 and v.dtype != torch.float32:
        raise ValueError("split-K shrink reduces with fp32 atomics: the intermediate v must be fp32")
    shrink = vllm_shrink(x, a, v.view(T, P, v.shape[1] // P).transpose(0, 1), meta, P, scale, config, accumulate)
    zero_first = split > 1 and not accumulate

    def run() -> None:
        if zero_first:
            v.zero_()
        shrink()

    return run


def bind_expand_sketch(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, h_outs: tuple[int, ...], max_seg_len: int, scale: float, accumulate: bool,
    config: Mapping[str, int],
) -> Callable[[], None]:  # fmt: skip
    """expand/vllm/triton: vLLM's expand with ``config`` in vLLM's own keys (block_m, block_n, block_k,
    num_warps, num_stages); ``add_inputs`` is ``accumulate``."""
    T, rank, P = y.shape[0], b.shape[2], len(h_outs)
    meta = layout_meta(seg_indptr, weight_indices, T, indptr=True)
    vs = v.view(T, P, rank).transpose(0, 1)
    return vllm_expand(vs, b, y, meta, proj_offsets, h_outs, scale, accumulate, config)


def bind_expand(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
) -> Callable[[], None]:  # fmt: skip
    """expand/baseline/vllm: one launch, grid (row x column tiles, slices, adapters + 1). Default configs."""
    return _bind_expand(v, b, y, weight_indices, proj_offsets, seg_lens, h_outs, scale, accumulate, tuned=False)


def bind_fused(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, seg_lens: Sequence[int], h_outs: tuple[int, ...],
    scale: float, accumulate: bool, inter_dtype: torch.dtype,
) -> Callable[[], None]:  # fmt: skip
    """fused/baseline/vllm: vLLM's add_lora_linear: zero an fp32 [P, T, r] buffer, shrink, expand."""
    return _bind_fused(x, a, b, y, weight_indices, proj_offsets, seg_lens, h_outs, scale, accumulate, tuned=False)


def bind_shrink_tuned(
    x: torch.Tensor, a: torch.Tensor, v: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor, *,
    seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
) -> Callable[[], None]:  # fmt: skip
    """shrink/baseline/vllm-tuned: as ``bind_shrink`` with the tuned config vLLM would look up."""
    return _bind_shrink(x, a, v, weight_indices, seg_lens, h_outs, scale, accumulate, tuned=True)


def bind_expand_tuned(
    v: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor, weight_indices: torch.Tensor,
    proj_offsets: torch.Tensor, *, seg_lens: Sequence[int], h_outs: tuple[int, ...], scale: float, accumulate: bool,
) -> Callable[[], None]:  # fmt: skip
    """expand/baseline/vllm-tuned: as ``bind_expand`` with the tuned config vLLM would look up."""
    return _bind_expand(v, b, y, weight_indices, proj_offsets, seg_lens, h_outs, scale, accumulate, tuned=True)


def bind_fused_tuned(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, seg_indptr: torch.Tensor,
    weight_indices: torch.Tensor, proj_offsets: torch.Tensor, *, seg_lens: Sequence[int], h_outs: tuple[int, ...],
    scale: float, accumulate: bool, inter_dtype: torch.dtype,
) -> Callable[[], None]:  # fmt: skip
    """fused/baseline/vllm-tuned: as ``bind_fused`` with the tuned configs vLLM would look up."""
    return _bind_fused(x, a, b, y, weight_indices, proj_offsets, seg_lens, h_outs, scale, accumulate, tuned=True)
