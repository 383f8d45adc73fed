"""The sketch tree: op -> family -> sketch. Each leaf is the one home of a sketch: its launcher (``entry``), its
grid model (``grid``, for the cost model), its parameter domains and its legality rules.

A sketch fixes a kernel's structure (how segments map to programs, split-K or not, tensor-core ``tl.dot``
or an FMA reduction, one launch or two); its parameters are the implementation details. A rule returns
the reason a config is illegal for a scenario on a device, or None. Rules encode hard limits (shared
memory, ``tl.dot``'s 16-element minimum, fp32 atomics) and prune pure waste (a block larger than the
next power of two of the dimension it tiles, a split-K piece with no K to reduce).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dop_tui.scenario import Scenario
from dop_tui.space import grid
from dop_tui.space.device import DeviceSpec
from dop_tui.space.grid import DOT_MIN, GridModel, next_pow2

Rule = Callable[[Scenario, Mapping[str, int], DeviceSpec], "str | None"]

WARPS = (1, 2, 4, 8)
STAGES = (1, 2, 3, 4)
# Cache policy of the adapter-weight loads: 0 default, 1 evict_first (streamed), 2 evict_last (kept in L2).
WEIGHT_HINT = (0, 1, 2)
MAX_FP32_PER_THREAD = 128  # broadcast-reduce tiles beyond this spill registers


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Entry:
    """A launcher ``kernels/<module>.py:<function>``, imported on first use (the space loads without triton, so
    the interpreter can still be switched on). Called as the launcher itself."""

    module: str
    function: str

    def resolve(self) -> Callable[..., Callable[[], None]]:
        return getattr(importlib.import_module(f"dop_tui.kernels.{self.module}"), self.function)

    def __call__(self, *args: Any, **kwargs: Any) -> Callable[[], None]:
        return self.resolve()(*args, **kwargs)


@dataclass(frozen=True)
class Sketch:
    op: str
    family: str
    name: str
    doc: str
    entry: Entry  # the launcher in kernels/
    grid: GridModel  # what its launch does with a config: programs, steps, bytes (the cost model's features)
    params: tuple[tuple[str, tuple[int, ...]], ...]
    rules: tuple[Rule, ...]
    layout_rules: bool = False  # a rule reads every segment's length, not only the longest and the count

    @property
    def id(self) -> str:
        return f"{self.op}/{self.family}/{self.name}"

    @property
    def domains(self) -> dict[str, tuple[int, ...]]:
        return dict(self.params)


# -- rules ---------------------------------------------------------------------------------------------
def _k_dim(s: Scenario) -> int:
    """Reduction length of the op's first product: h_in for shrink and fused, r for expand."""
    return s.rank if s.op == "expand" else s.h_in


def _n_dim(s: Scenario) -> int:
    """Output columns one program tiles: P*r for shrink, the widest projection otherwise."""
    return s.total_rank if s.op == "shrink" else max(s.h_outs)


def cap(param: str, dim: Callable[[Scenario], int], floor: int = 1) -> Rule:
    def rule(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
        limit = max(floor, next_pow2(dim(s)))
        if c[param] > limit:
            return f"{param}={c[param]} exceeds {limit}, the padded size of the dimension it tiles"
        return None

    return rule


def atomics_need_fp32(split: str) -> Rule:
    def rule(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
        if c[split] > 1 and s.inter_dtype != "fp32":
            return f"{split}={c[split]} reduces with fp32 atomics and needs an fp32 intermediate"
        return None

    return rule


def split_has_work(split: str, block: str) -> Rule:
    def rule(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
        steps = cdiv(_k_dim(s), c[block])
        if c[split] > steps:
            return f"{split}={c[split]} exceeds the {steps} {block} steps of K={_k_dim(s)}: some splits idle"
        return None

    return rule


Dim = str | Callable[[Scenario], int]


def _dim(s: Scenario, c: Mapping[str, int], p: Dim) -> int:
    return c[p] if isinstance(p, str) else p(s)


def dot_smem(bm: Dim, bn: Dim, bk: Dim) -> Rule:
    """Pipelined tl.dot keeps ``stages`` copies of both operand tiles in shared memory."""

    def rule(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
        tile = (_dim(s, c, bm) + _dim(s, c, bn)) * _dim(s, c, bk) * s.elem_bytes
        need = max(1, c["num_stages"]) * tile
        if need > d.smem_per_block:
            return f"needs ~{need} B of shared memory, {d.name} allows {d.smem_per_block}"
        return None

    return rule


def fma_registers(*dims: Dim) -> Rule:
    """A broadcast-multiply-reduce tile lives in registers: its size over the threads stays bounded."""

    def rule(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
        size = 1
        for dim in dims:
            size *= _dim(s, c, dim)
        per_thread = size // (32 * c["num_warps"])
        if per_thread > MAX_FP32_PER_THREAD:
            return f"reduction tile of {size} values is {per_thread} per thread (> {MAX_FP32_PER_THREAD})"
        return None

    return rule


def accumulator_registers(bm: Dim, bn: Dim) -> Rule:
    """A tl.dot tile's fp32 accumulator lives in registers: AOT compiles for sm_90 spill past ~64 per thread."""

    def rule(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
        m, n = _dim(s, c, bm), _dim(s, c, bn)
        per_thread = m * n // (32 * c["num_warps"])
        if per_thread > 64:
            return f"{m}x{n} accumulator is {per_thread} fp32 registers per thread (> 64): spills"
        return None

    return rule


def within_column_tiles(param: str) -> Rule:
    """``param`` counts column tiles (or programs sharing them) of the widest projection: no more than there are
    (N_SPLIT and EXPANDERS programs share a projection's tiles, a program walks COL_TILES of them)."""

    def rule(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
        tiles = cdiv(max(s.h_outs), c["BLOCK_N"])
        if c[param] > tiles:
            return f"{param}={c[param]} exceeds the {tiles} column tiles"
        return None

    return rule


def within_row_tiles(param: str) -> Rule:
    """A program walks ``param`` row tiles of one segment: no more than the longest segment has, its length padded
    to a power of two as the caps pad (``space.legality_view`` relies on that)."""

    def rule(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
        tiles = cdiv(next_pow2(s.max_seg_len), c["BLOCK_M"])
        if c[param] > tiles:
            return f"{param}={c[param]} exceeds the {tiles} row tiles of the longest segment (padded)"
        return None

    return rule


def when(param: str, value: int, rule: Rule) -> Rule:
    """Apply ``rule`` only to configs whose ``param`` equals ``value`` (a structural switch)."""

    def guarded(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
        return rule(s, c, d) if c[param] == value else None

    return guarded


def fused_tile_registers(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
    """The fused tile keeps the rank-r intermediate and one output tile in registers (fp32).

    AOT compiles for sm_90 showed spills once ``BLOCK_M * (BLOCK_N + BLOCK_R) / (32 * num_warps)`` passes
    about 64 values per thread.
    """
    per_thread = c["BLOCK_M"] * (c["BLOCK_N"] + _rank_block(s)) // (32 * c["num_warps"])
    if per_thread > 64:
        return f"intermediate and output tiles need {per_thread} fp32 registers per thread (> 64): spills"
    return None


# Registers per thread the one-wave bound assumes. AOT compiles of the split-K fused kernel for sm_90 use 32 to
# 255; a config above it may not have every program resident, and then runs slowly (waits time out), never wrong.
COOP_REGS_PER_THREAD = 128


def columns_for_every_program(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
    """N_MULT adds programs that only expand: pure waste once a block has more programs than column tiles."""
    progs, tiles = c["SPLIT_K"] * c["N_MULT"], cdiv(max(s.h_outs), c["BLOCK_N"])
    if c["N_MULT"] > 1 and progs > tiles:
        return f"SPLIT_K x N_MULT = {progs} programs per block exceed the {tiles} column tiles"
    return None


def one_wave(s: Scenario, c: Mapping[str, int], d: DeviceSpec) -> str | None:
    """A block's SPLIT_K * N_MULT programs wait for each other: every working program must be resident at once,
    so the grid must fit one wave (per SM: 32 programs, 64 warps, the register file at COOP_REGS_PER_THREAD,
    shared memory). Beyond it the kernel stays right but its waits time out into recomputation."""
    nw = c["num_warps"]
    smem = max(1, c["num_stages"] * (c["BLOCK_M"] + _rank_block(s)) * c["BLOCK_K"] * s.elem_bytes)
    per_sm = min(32, 64 // nw, d.regs_per_sm // (32 * nw * COOP_REGS_PER_THREAD), d.smem_per_block // smem)
    working = sum(cdiv(n, c["BLOCK_M"]) for n in s.seg_lens) * s.num_proj * c["SPLIT_K"] * c["N_MULT"]
    if working > per_sm * d.sms:
        return f"{working} cooperating programs exceed one wave of {per_sm * d.sms} on {d.name}"
    return None


def _max_len(s: Scenario) -> int:
    return s.max_seg_len


def _rank_block(s: Scenario) -> int:
    return max(DOT_MIN, next_pow2(s.rank))


def _fma_rank(s: Scenario) -> int:
    return next_pow2(s.rank)


def _segments(s: Scenario) -> int:
    return s.num_segments


# The split-K fused sketches' common rules (tile caps, work for every split, the tiles' shared memory or
# registers); each sketch adds the rules of its own grid.
SPLITK_DOT_RULES: tuple[Rule, ...] = (
    cap("BLOCK_M", _max_len, DOT_MIN),
    cap("BLOCK_K", _k_dim, 32),
    cap("BLOCK_N", _n_dim, 32),
    split_has_work("SPLIT_K", "BLOCK_K"),
    dot_smem("BLOCK_M", _rank_block, "BLOCK_K"),
    dot_smem("BLOCK_M", "BLOCK_N", _rank_block),
    fused_tile_registers,
)
SPLITK_FMA_RULES: tuple[Rule, ...] = (
    cap("BLOCK_M", _max_len),
    cap("BLOCK_K", _k_dim, 64),
    cap("BLOCK_N", _n_dim, 32),
    split_has_work("SPLIT_K", "BLOCK_K"),
    fma_registers("BLOCK_M", _fma_rank, "BLOCK_K"),
    fma_registers("BLOCK_M", "BLOCK_N", _fma_rank),
)


# -- the tree ------------------------------------------------------------------------------------------
SKETCHES: tuple[Sketch, ...] = (
    Sketch(
        "shrink",
        "tile",
        "dot",
        "one program per (segment, row tile, rank tile); tl.dot over the whole K",
        Entry("shrink", "bind_tile_dot"),
        grid.shrink_dot,
        (
            ("BLOCK_M", (16, 32, 64, 128)),
            ("BLOCK_N", (16, 32, 64, 128, 256)),
            ("BLOCK_K", (32, 64, 128, 256)),
            ("WEIGHT_HINT", WEIGHT_HINT),
            ("num_warps", WARPS),
            ("num_stages", STAGES),
        ),
        (
            cap("BLOCK_M", _max_len, DOT_MIN),
            cap("BLOCK_N", _n_dim, DOT_MIN),
            cap("BLOCK_K", _k_dim, 32),
            dot_smem("BLOCK_M", "BLOCK_N", "BLOCK_K"),
            accumulator_registers("BLOCK_M", "BLOCK_N"),
        ),
    ),
    Sketch(
        "shrink",
        "splitk",
        "dot",
        "one program per (segment, row tile, rank tile, K split); tl.dot, fp32 atomic reduction",
        Entry("shrink", "bind_splitk_dot"),
        grid.shrink_dot,
        (
            ("BLOCK_M", (16, 32, 64, 128)),
            ("BLOCK_N", (16, 32, 64, 128, 256)),
            ("BLOCK_K", (32, 64, 128, 256)),
            ("SPLIT_K", (2, 4, 8, 16, 32, 64)),
            ("WEIGHT_HINT", WEIGHT_HINT),
            ("num_warps", WARPS),
            ("num_stages", STAGES),
        ),
        (
            cap("BLOCK_M", _max_len, DOT_MIN),
            cap("BLOCK_N", _n_dim, DOT_MIN),
            cap("BLOCK_K", _k_dim, 32),
            atomics_need_fp32("SPLIT_K"),
            split_has_work("SPLIT_K", "BLOCK_K"),
            dot_smem("BLOCK_M", "BLOCK_N", "BLOCK_K"),
            accumulator_registers("BLOCK_M", "BLOCK_N"),
        ),
    ),
    Sketch(
        "shrink",
        "gemv",
        "fma",
        "one program per (segment, rank tile, K split) walking the segment's tokens BLOCK_T at a time; "
        "no tensor cores, each adapter tile read once per token group",
        Entry("shrink", "bind_gemv"),
        grid.shrink_gemv,
        (
            ("BLOCK_T", (1, 2, 4, 8)),
            ("BLOCK_N", (4, 8, 16, 32, 64)),
            ("BLOCK_K", (64, 128, 256, 512, 1024)),
            ("SPLIT_K", (1, 2, 4, 8, 16, 32)),
            ("WEIGHT_HINT", WEIGHT_HINT),
            ("num_warps", WARPS),
            ("num_stages", (1, 2, 3)),
        ),
        (
            cap("BLOCK_T", _max_len),
            cap("BLOCK_N", _n_dim),
            cap("BLOCK_K", _k_dim, 64),
            atomics_need_fp32("SPLIT_K"),
            split_has_work("SPLIT_K", "BLOCK_K"),
            fma_registers("BLOCK_T", "BLOCK_N", "BLOCK_K"),
        ),
    ),
    Sketch(
        "shrink",
        "splitk-last",
        "dot",
        "one launch, SPLIT_K programs per (segment, row tile, projection) add partial rank-r products over their "
        "share of K into a self-cleaning workspace; the last one in writes v (no zeroing launch); tl.dot",
        Entry("fused_splitk", "bind_shrink_last_dot"),
        grid.shrink_last_dot,
        (
            ("BLOCK_M", (16, 32, 64, 128)),
            ("BLOCK_K", (32, 64, 128, 256)),
            ("SPLIT_K", (2, 4, 8, 16, 32, 64)),
            ("num_warps", WARPS),
            ("num_stages", STAGES),
        ),
        (
            cap("BLOCK_M", _max_len, DOT_MIN),
            cap("BLOCK_K", _k_dim, 32),
            split_has_work("SPLIT_K", "BLOCK_K"),
            dot_smem("BLOCK_M", _rank_block, "BLOCK_K"),
            accumulator_registers("BLOCK_M", _rank_block),
        ),
    ),
    Sketch(
        "shrink",
        "splitk-last",
        "fma",
        "as shrink/splitk-last/dot with a broadcast-multiply reduction: rows of 1 to 8 tokens",
        Entry("fused_splitk", "bind_shrink_last_fma"),
        grid.shrink_last_fma,
        (
            ("BLOCK_M", (1, 2, 4, 8)),
            ("BLOCK_K", (64, 128, 256, 512)),
            ("SPLIT_K", (2, 4, 8, 16, 32, 64)),
            ("num_warps", WARPS),
            ("num_stages", (1, 2)),
        ),
        (
            cap("BLOCK_M", _max_len),
            cap("BLOCK_K", _k_dim, 64),
            split_has_work("SPLIT_K", "BLOCK_K"),
            fma_registers("BLOCK_M", _fma_rank, "BLOCK_K"),
        ),
    ),
    Sketch(
        "expand",
        "tile",
        "dot",
        "one program per (segment, row tile, column tile, projection); tl.dot over the rank",
        Entry("expand", "bind_tile_dot"),
        grid.expand_tile,
        (
            ("BLOCK_M", (16, 32, 64, 128)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("BLOCK_K", (16, 32, 64, 128)),
            ("WEIGHT_HINT", WEIGHT_HINT),
            ("num_warps", WARPS),
            ("num_stages", STAGES),
        ),
        (
            cap("BLOCK_M", _max_len, DOT_MIN),
            cap("BLOCK_N", _n_dim, 32),
            cap("BLOCK_K", _k_dim, DOT_MIN),
            dot_smem("BLOCK_M", "BLOCK_N", "BLOCK_K"),
            accumulator_registers("BLOCK_M", "BLOCK_N"),
        ),
    ),
    Sketch(
        "expand",
        "rows",
        "dot",
        "one program per (segment, row tile, projection, COL_TILES column tiles): its rows of v loaded once, "
        "then the column tiles in turn, each tile's B and y loaded before the previous product; tl.dot",
        Entry("expand", "bind_rows_dot"),
        grid.expand_rows,
        (
            ("BLOCK_M", (16, 32, 64, 128)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("COL_TILES", (2, 4, 8, 16, 32)),
            ("WEIGHT_HINT", WEIGHT_HINT),
            ("num_warps", WARPS),
            ("num_stages", (1, 2)),
        ),
        (
            cap("BLOCK_M", _max_len, DOT_MIN),
            cap("BLOCK_N", _n_dim, 32),
            within_column_tiles("COL_TILES"),
            dot_smem("BLOCK_M", "BLOCK_N", _rank_block),
            fused_tile_registers,
        ),
    ),
    Sketch(
        "expand",
        "cols",
        "dot",
        "one program per (segment, ROW_TILES row tiles, column tile, projection): its column tile of B loaded "
        "once, then the row tiles in turn, each tile's v and y loaded before the previous product; tl.dot",
        Entry("expand", "bind_cols_dot"),
        grid.expand_cols,
        (
            ("BLOCK_M", (16, 32, 64, 128)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("ROW_TILES", (1, 2, 4, 8, 16, 32)),
            ("WEIGHT_HINT", WEIGHT_HINT),
            ("num_warps", WARPS),
            ("num_stages", (1, 2)),
        ),
        (
            cap("BLOCK_M", _max_len, DOT_MIN),
            cap("BLOCK_N", _n_dim, 32),
            within_row_tiles("ROW_TILES"),
            dot_smem("BLOCK_M", "BLOCK_N", _rank_block),
            fused_tile_registers,
        ),
    ),
    Sketch(
        "expand",
        "gemv",
        "fma",
        "one program per (segment, column tile, projection): the B tile is loaded once and applied to "
        "the segment's tokens BLOCK_T at a time; no tensor cores",
        Entry("expand", "bind_gemv"),
        grid.expand_gemv,
        (
            ("BLOCK_T", (1, 2, 4, 8)),
            ("BLOCK_N", (32, 64, 128, 256, 512, 1024)),
            ("WEIGHT_HINT", WEIGHT_HINT),
            ("num_warps", WARPS),
            ("num_stages", (1, 2)),
        ),
        (
            cap("BLOCK_T", _max_len),
            cap("BLOCK_N", _n_dim, 32),
            fma_registers("BLOCK_T", "BLOCK_N", _fma_rank),
        ),
    ),
    Sketch(
        "expand",
        "walk",
        "segments",
        "fewer, fuller programs: each program walks SEGS_PER_PROG consecutive segments for one column "
        "tile, with tl.dot (USE_DOT=1) or an FMA reduction per token (USE_DOT=0)",
        Entry("expand", "bind_walk"),
        grid.expand_walk,
        (
            ("SEGS_PER_PROG", (2, 4, 8, 16, 32)),
            ("BLOCK_M", (16, 32, 64)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("USE_DOT", (0, 1)),
            ("WEIGHT_HINT", WEIGHT_HINT),
            ("num_warps", WARPS),
            ("num_stages", (1, 2, 3)),
        ),
        (
            cap("BLOCK_M", _max_len, DOT_MIN),
            cap("BLOCK_N", _n_dim, 32),
            cap("SEGS_PER_PROG", _segments, 2),
            when("USE_DOT", 0, fma_registers("BLOCK_N", _rank_block)),
            when(
                "USE_DOT",
                0,
                lambda s, c, d: "BLOCK_M is unused without tl.dot: fixed at 16" if c["BLOCK_M"] != 16 else None,
            ),
            when("USE_DOT", 1, dot_smem("BLOCK_M", "BLOCK_N", _rank_block)),
            when("USE_DOT", 1, accumulator_registers("BLOCK_M", "BLOCK_N")),
        ),
    ),
    Sketch(
        "fused",
        "tile",
        "dot",
        "one launch for the LoRA delta: each program computes x_tile @ A^T (rank-r, in registers) for its "
        "row tile and applies it to its share (1/N_SPLIT) of one projection's output columns",
        Entry("fused", "bind_tile_dot"),
        grid.fused_tile,
        (
            ("BLOCK_M", (16, 32, 64)),
            ("BLOCK_K", (32, 64, 128, 256)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("N_SPLIT", (1, 2, 4, 8, 16, 32, 64)),
            ("num_warps", WARPS),
            ("num_stages", STAGES),
        ),
        (
            cap("BLOCK_M", _max_len, DOT_MIN),
            cap("BLOCK_K", _k_dim, 32),
            cap("BLOCK_N", _n_dim, 32),
            within_column_tiles("N_SPLIT"),
            dot_smem("BLOCK_M", _rank_block, "BLOCK_K"),
            dot_smem("BLOCK_M", "BLOCK_N", _rank_block),
            fused_tile_registers,
        ),
    ),
    Sketch(
        "fused",
        "gemv",
        "fma",
        "one launch, no tensor cores: each program reduces its segment's tokens (BLOCK_T at a time) "
        "against A into the rank-r intermediate, then applies it to its share of the output columns",
        Entry("fused", "bind_gemv"),
        grid.fused_gemv,
        (
            ("BLOCK_T", (1, 2, 4, 8)),
            ("BLOCK_K", (64, 128, 256, 512)),
            ("BLOCK_N", (32, 64, 128, 256, 512)),
            ("N_SPLIT", (1, 2, 4, 8, 16, 32, 64)),
            ("num_warps", WARPS),
            ("num_stages", (1, 2)),
        ),
        (
            cap("BLOCK_T", _max_len),
            cap("BLOCK_K", _k_dim, 64),
            cap("BLOCK_N", _n_dim, 32),
            within_column_tiles("N_SPLIT"),
            fma_registers("BLOCK_T", _fma_rank, "BLOCK_K"),
            fma_registers("BLOCK_T", "BLOCK_N", _fma_rank),
        ),
    ),
    Sketch(
        "fused",
        "splitk",
        "dot",
        "one launch, SPLIT_K x N_MULT cooperating programs per (segment, row tile, projection): SPLIT_K of them "
        "add a partial rank-r product over their share of K into a workspace, all wait for the block's sum and "
        "expand their share of the columns; tl.dot",
        Entry("fused_splitk", "bind_splitk_dot"),
        grid.fused_splitk_dot,
        (
            ("BLOCK_M", (16, 32, 64)),
            ("BLOCK_K", (32, 64, 128, 256)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("SPLIT_K", (2, 4, 8, 16, 32, 64)),
            ("N_MULT", (1, 2, 4, 8)),
            ("num_warps", WARPS),
            ("num_stages", STAGES),
        ),
        (
            *SPLITK_DOT_RULES,
            columns_for_every_program,
            one_wave,
        ),
        layout_rules=True,
    ),
    Sketch(
        "fused",
        "splitk",
        "fma",
        "as fused/splitk/dot with broadcast-multiply reductions instead of tl.dot: rows of 1 to 8 tokens "
        "(one-token decode segments) without tensor-core padding",
        Entry("fused_splitk", "bind_splitk_fma"),
        grid.fused_splitk_fma,
        (
            ("BLOCK_M", (1, 2, 4, 8)),
            ("BLOCK_K", (64, 128, 256, 512)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("SPLIT_K", (2, 4, 8, 16, 32, 64)),
            ("N_MULT", (1, 2, 4, 8)),
            ("num_warps", WARPS),
            ("num_stages", (1, 2)),
        ),
        (
            *SPLITK_FMA_RULES,
            columns_for_every_program,
            one_wave,
        ),
        layout_rules=True,
    ),
    Sketch(
        "fused",
        "splitk-fanout",
        "dot",
        "one launch; per (segment, row tile, projection) SPLIT_K producers add partial rank-r products over their "
        "share of K into a workspace and end, then EXPANDERS programs (later in launch order) wait for the sum and "
        "expand their share of the columns: waits only on earlier programs, so no grid limit; tl.dot",
        Entry("fused_splitk", "bind_fanout_dot"),
        grid.fused_fanout_dot,
        (
            ("BLOCK_M", (16, 32, 64, 128)),
            ("BLOCK_K", (32, 64, 128, 256)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("SPLIT_K", (1, 2, 4, 8, 16, 32, 64)),
            ("EXPANDERS", (1, 2, 4, 8, 16, 32, 64, 128)),
            ("num_warps", WARPS),
            ("num_stages", STAGES),
        ),
        (
            *SPLITK_DOT_RULES,
            within_column_tiles("EXPANDERS"),
        ),
    ),
    Sketch(
        "fused",
        "splitk-fanout",
        "fma",
        "as fused/splitk-fanout/dot with broadcast-multiply reductions: rows of 1 to 8 tokens",
        Entry("fused_splitk", "bind_fanout_fma"),
        grid.fused_fanout_fma,
        (
            ("BLOCK_M", (1, 2, 4, 8)),
            ("BLOCK_K", (64, 128, 256, 512)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("SPLIT_K", (1, 2, 4, 8, 16, 32, 64)),
            ("EXPANDERS", (1, 2, 4, 8, 16, 32, 64, 128)),
            ("num_warps", WARPS),
            ("num_stages", (1, 2)),
        ),
        (
            *SPLITK_FMA_RULES,
            within_column_tiles("EXPANDERS"),
        ),
    ),
    Sketch(
        "fused",
        "splitk-last",
        "dot",
        "one launch, SPLIT_K programs per (segment, row tile, projection) add partial rank-r products over their "
        "share of K into a workspace; the last one in expands all of the block's columns; nobody waits, so any "
        "grid size runs (long prefill); tl.dot",
        Entry("fused_splitk", "bind_splitlast_dot"),
        grid.fused_splitlast_dot,
        (
            ("BLOCK_M", (16, 32, 64, 128)),
            ("BLOCK_K", (32, 64, 128, 256)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("SPLIT_K", (2, 4, 8, 16, 32)),
            ("num_warps", WARPS),
            ("num_stages", STAGES),
        ),
        (*SPLITK_DOT_RULES,),
    ),
    Sketch(
        "fused",
        "splitk-last",
        "fma",
        "as fused/splitk-last/dot with broadcast-multiply reductions: rows of 1 to 8 tokens",
        Entry("fused_splitk", "bind_splitlast_fma"),
        grid.fused_splitlast_fma,
        (
            ("BLOCK_M", (1, 2, 4, 8)),
            ("BLOCK_K", (64, 128, 256, 512)),
            ("BLOCK_N", (32, 64, 128, 256)),
            ("SPLIT_K", (2, 4, 8, 16, 32)),
            ("num_warps", WARPS),
            ("num_stages", (1, 2)),
        ),
        (*SPLITK_FMA_RULES,),
    ),
)


# vLLM's own kernels with vLLM's own config keys: what a tuning job finds for them is exported as vLLM's
# tuned-config files (dop export --format vllm).
VLLM_SKETCHES = (
    Sketch(
        "shrink",
        "vllm",
        "triton",
        "vLLM's lora_shrink (token-sorted gather, split-K with fp32 atomics) with a config in vLLM's keys",
        Entry("baselines_vllm", "bind_shrink_sketch"),
        grid.vllm_keys(grid.shrink_dot),
        (
            ("block_m", (16, 32, 64)),
            ("block_n", (16, 32)),
            ("block_k", (32, 64, 128, 256)),
            ("split_k", (1, 2, 4, 8, 16, 32, 64, 128)),
            ("group_size_m", (1, 8)),
            ("num_warps", (4, 8)),
            ("num_stages", (2, 3, 4)),
        ),
        (
            cap("block_n", lambda s: s.rank, DOT_MIN),
            cap("block_k", _k_dim, 32),
            atomics_need_fp32("split_k"),
            split_has_work("split_k", "block_k"),
            dot_smem("block_m", "block_n", "block_k"),
            accumulator_registers("block_m", "block_n"),
        ),
    ),
    Sketch(
        "expand",
        "vllm",
        "triton",
        "vLLM's lora_expand (token-sorted gather, one program per row x column tile and adapter) with a config "
        "in vLLM's keys",
        Entry("baselines_vllm", "bind_expand_sketch"),
        grid.vllm_keys(grid.expand_tile),
        (
            ("block_m", (16, 32, 64)),
            ("block_n", (32, 64, 128, 256)),
            ("block_k", (16, 32)),
            ("num_warps", (4, 8)),
            ("num_stages", (1, 2, 3, 4)),
        ),
        (
            cap("block_n", _n_dim, 32),
            cap("block_k", _k_dim, DOT_MIN),
            dot_smem("block_m", "block_n", "block_k"),
            accumulator_registers("block_m", "block_n"),
        ),
    ),
)
SKETCHES = SKETCHES + VLLM_SKETCHES
SKETCH_BY_ID = {s.id: s for s in SKETCHES}


@dataclass(frozen=True)
class Baseline:
    """A fixed kernel we always compare against; ``entry`` is its launcher."""

    name: str
    op: str
    doc: str
    entry: Entry

    @property
    def id(self) -> str:
        return f"{self.op}/baseline/{self.name}"


BASELINES: tuple[Baseline, ...] = tuple(
    Baseline(name, op, doc, Entry(mod, f"bind_{op}{suffix}"))
    for name, mod, suffix, doc in (
        ("vllm", "baselines_vllm", "", "vLLM's Triton LoRA ops with their default configs (token-sorted gather)"),
        (
            "vllm-tuned",
            "baselines_vllm",
            "_tuned",
            "vLLM's Triton LoRA ops with the tuned configs its nearest-key lookup picks (H100 files)",
        ),
        ("sglang", "baselines_sglang", "", "SGLang's chunked SGMV (csgmv: chunks of 16 tokens, 16-bit intermediate)"),
        (
            "punica",
            "baselines_punica",
            "",
            "Punica's fixed SGMV choices (chunk-256 split-K shrink, 32x128x16 expand)",
        ),
        ("torch", "baselines_torch", "", "torch gather + bmm in the input dtype (no custom kernel)"),
    )
    for op in ("shrink", "expand", "fused")
)
BASELINE_BY_ID = {b.id: b for b in BASELINES}
