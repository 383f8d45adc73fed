"""Grid models: what a sketch's launch does with its config on a scenario, as arrays over many configs.

Each sketch names its model (``Sketch.grid``); the cost model's analytic features read them
(``dop_tui.cost.features``). For segment lengths ``l_s``, row tile ``t`` (BLOCK_M for ``tl.dot``, BLOCK_T for
FMA) and ``tiles(t) = sum_s ceil(l_s / t)``, a model returns per config:

- ``launches``: 1, plus the zeroing launch of an overwriting split-K shrink;
- ``programs``: the grid size; ``active``: programs that do work (row tiles past a segment's end and column
  splits past a projection's width return at once);
- ``steps``: serial tile steps of the longest program (K pieces, token groups, column tiles);
- ``bytes``: global traffic counting re-reads across programs (x once per column tile, adapter weights once per
  row tile or token group), fp32 atomic read-modify-writes and the zeroing pass;
- ``rows``: ``tiles(t) * t``, the tile rows launched (past segment ends too);
- ``smem``: the pipelined ``tl.dot`` operand tiles, ``stages * (m + n) * k * b`` (0 for FMA sketches).

The formulas follow the kernels' grids (``kernels/*.py``); a new sketch brings its model here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from dop_tui.scenario import Scenario

DOT_MIN = 16  # tl.dot's smallest tile side


def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


class GridShape:
    """Scenario quantities the grid formulas share; ``lens`` is [1, S] to broadcast against [n, 1] parameters."""

    def __init__(self, scn: Scenario) -> None:
        self.scn = scn
        self.lens = np.asarray(scn.seg_lens, dtype=np.float64)[None, :]
        self.T, self.S, self.maxlen = float(scn.num_tokens), float(scn.num_segments), float(scn.max_seg_len)
        self.K, self.R, self.r, self.P = float(scn.h_in), float(scn.total_rank), float(scn.rank), float(scn.num_proj)
        self.H, self.maxH = float(scn.total_h_out), float(max(scn.h_outs))
        self.h_outs = np.asarray(scn.h_outs, dtype=np.float64)[None, :]
        self.b, self.bv = float(scn.elem_bytes), float(scn.inter_bytes)
        self.c = 2.0 if scn.accumulate else 1.0
        self.dot_rank = float(max(DOT_MIN, next_pow2(scn.rank)))

    def tiles(self, t: np.ndarray) -> np.ndarray:
        """Row tiles over all segments, ``sum_s ceil(l_s / t)``, per item."""
        return np.ceil(self.lens / t[:, None]).sum(axis=1)

    def row_grid(self, t: np.ndarray) -> np.ndarray:
        """Row tiles a row-tiled kernel launches (``kernels/_common.py``: ``row_tile_grid``): ``S * ceil(max len /
        t)``, or where fewer, ``ceil(T / t) + S - 1`` (every segment's tiles in order, the last few empty)."""
        plain = self.S * np.ceil(self.maxlen / t)
        return plain if self.S <= 1 else np.minimum(plain, np.ceil(self.T / t) + self.S - 1)

    @staticmethod
    def groups(sizes: np.ndarray, t: np.ndarray, per: np.ndarray) -> np.ndarray:
        """Programs that walk ``per`` tiles of ``t`` each over every size (segments or projections), per item:
        ``sum_i ceil(ceil(sizes_i / t) / per)``."""
        return np.ceil(np.ceil(sizes / t[:, None]) / per[:, None]).sum(axis=1)

    def col_tiles(self, bn: np.ndarray) -> np.ndarray:
        """Column tiles over all projections, ``sum_p ceil(h_p / bn)``."""
        return np.ceil(self.h_outs / bn[:, None]).sum(axis=1)

    def col_splits(self, bn: np.ndarray, n_split: np.ndarray) -> np.ndarray:
        """Column splits that own at least one tile, ``sum_p min(N_SPLIT, ceil(h_p / bn))``."""
        return np.minimum(n_split[:, None], np.ceil(self.h_outs / bn[:, None])).sum(axis=1)

    def shrink_out(self, split: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bytes of v's writes and the launch count: fp32 atomics (read-modify-write per split) plus a zeroing
        launch when split-K overwrites, else one (or, accumulating, two) passes in v's dtype."""
        atomic = split > 1
        zero = atomic & (not self.scn.accumulate)
        tr = self.T * self.R
        out = np.where(atomic, 4.0 * 2.0 * split * tr + zero * 4.0 * tr, self.bv * self.c * tr)
        return out, 1.0 + zero


Analytic = dict[str, np.ndarray]


def shrink_dot(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    bm, bn, bk, st = p["BLOCK_M"], p["BLOCK_N"], p["BLOCK_K"], p["num_stages"]
    split = p.get("SPLIT_K", np.ones_like(bm))
    nt, tiles = np.ceil(g.R / bn), g.tiles(bm)
    out, launches = g.shrink_out(split)
    return {
        "launches": launches,
        "programs": g.row_grid(bm) * nt * split,
        "active": tiles * nt * split,
        "steps": np.ceil(np.ceil(g.K / bk) / split),
        "bytes": g.b * (g.T * g.K * nt + tiles * g.R * g.K) + out,
        "rows": tiles * bm,
        "smem": st * (bm + bn) * bk * g.b,
    }


def shrink_gemv(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    bt, bn, bk, split = p["BLOCK_T"], p["BLOCK_N"], p["BLOCK_K"], p["SPLIT_K"]
    nt, tiles = np.ceil(g.R / bn), g.tiles(bt)
    out, launches = g.shrink_out(split)
    programs = g.S * nt * split
    return {
        "launches": launches,
        "programs": programs,
        "active": programs,
        "steps": np.ceil(g.maxlen / bt) * np.ceil(np.ceil(g.K / bk) / split),
        "bytes": g.b * (g.T * g.K * nt + tiles * g.R * g.K) + out,
        "rows": tiles * bt,
        "smem": np.zeros_like(bt),
    }


def _shrink_last(g: GridShape, p: Mapping[str, np.ndarray], dot: bool) -> Analytic:
    """Blocks (segment, row tile, projection) of SPLIT_K programs, each reading its K share of x and A and adding
    an fp32 partial of the whole rank into the workspace; the last one in reads the sum back and writes v."""
    bm, bk, sk, st = p["BLOCK_M"], p["BLOCK_K"], p["SPLIT_K"], p["num_stages"]
    tiles = g.tiles(bm)
    rank = g.dot_rank if dot else float(next_pow2(g.scn.rank))
    ws = 4.0 * tiles * bm * g.P * rank * (2.0 * sk + 2.0)  # atomics, the read back, the zeroing
    out = g.bv * g.T * g.R * (2.0 if g.scn.accumulate else 1.0)
    return {
        "launches": np.ones_like(bm),
        "programs": g.P * sk * g.row_grid(bm),
        "active": tiles * g.P * sk,
        "steps": np.ceil(np.ceil(g.K / bk) / sk),
        "bytes": g.b * (g.T * g.K * g.P + tiles * g.R * g.K) + ws + out,
        "rows": tiles * bm,
        "smem": st * (bm + g.dot_rank) * bk * g.b if dot else np.zeros_like(bm),
    }


def shrink_last_dot(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    return _shrink_last(g, p, dot=True)


def shrink_last_fma(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    return _shrink_last(g, p, dot=False)


def _expand_io(g: GridShape, v_reads: np.ndarray, b_reads: np.ndarray) -> np.ndarray:
    """v read once per ``v_reads`` (column tiles or groups of them), B once per ``b_reads`` (row tiles or
    segments), y (read and) written."""
    return g.bv * g.T * g.r * v_reads + g.b * (b_reads * g.H * g.r + g.c * g.T * g.H)


def expand_tile(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    bm, bn, bk, st = p["BLOCK_M"], p["BLOCK_N"], p["BLOCK_K"], p["num_stages"]
    ct, tiles = g.col_tiles(bn), g.tiles(bm)
    return {
        "launches": np.ones_like(bm),
        "programs": g.row_grid(bm) * np.ceil(g.maxH / bn) * g.P,
        "active": tiles * ct,
        "steps": np.ceil(g.r / bk),
        "bytes": _expand_io(g, ct, tiles),
        "rows": tiles * bm,
        "smem": st * (bm + bn) * bk * g.b,
    }


def expand_rows(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    """Programs of COL_TILES column tiles each: v read once per program, B once per row tile."""
    bm, bn, ct, st = p["BLOCK_M"], p["BLOCK_N"], p["COL_TILES"], p["num_stages"]
    tiles = g.tiles(bm)
    groups = g.groups(g.h_outs, bn, ct)
    return {
        "launches": np.ones_like(bm),
        "programs": g.row_grid(bm) * np.ceil(np.ceil(g.maxH / bn) / ct) * g.P,
        "active": tiles * groups,
        "steps": np.minimum(ct, np.ceil(g.maxH / bn)),
        "bytes": _expand_io(g, groups, tiles),
        "rows": tiles * bm,
        "smem": st * (bm + bn) * g.dot_rank * g.b,
    }


def expand_cols(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    """Programs of ROW_TILES row tiles each: B read once per program, v once per column tile."""
    bm, bn, rt, st = p["BLOCK_M"], p["BLOCK_N"], p["ROW_TILES"], p["num_stages"]
    ct, tiles = g.col_tiles(bn), g.tiles(bm)
    groups = g.groups(g.lens, bm, rt)
    return {
        "launches": np.ones_like(bm),
        "programs": g.S * np.ceil(np.ceil(g.maxlen / bm) / rt) * np.ceil(g.maxH / bn) * g.P,
        "active": groups * ct,
        "steps": np.minimum(rt, np.ceil(g.maxlen / bm)),
        "bytes": _expand_io(g, ct, groups),
        "rows": tiles * bm,
        "smem": st * (bm + bn) * g.dot_rank * g.b,
    }


def expand_gemv(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    bt, bn = p["BLOCK_T"], p["BLOCK_N"]
    ct = g.col_tiles(bn)
    return {
        "launches": np.ones_like(bt),
        "programs": g.S * np.ceil(g.maxH / bn) * g.P,
        "active": g.S * ct,
        "steps": np.ceil(g.maxlen / bt),
        "bytes": _expand_io(g, ct, np.full_like(bt, g.S)),
        "rows": g.tiles(bt) * bt,
        "smem": np.zeros_like(bt),
    }


def _walk_steps(g: GridShape, spp: np.ndarray, row_tile: np.ndarray) -> np.ndarray:
    """Row steps of the busiest program: the largest sum of ``ceil(l_s / row_tile)`` over SEGS_PER_PROG
    consecutive segments."""
    per_seg = np.ceil(g.lens / row_tile[:, None])  # [n, S]
    out = np.empty(len(spp))
    for k in np.unique(spp):
        sel = spp == k
        pad = (-per_seg.shape[1]) % int(k)
        grouped = np.pad(per_seg[sel], ((0, 0), (0, pad))).reshape(int(sel.sum()), -1, int(k))
        out[sel] = grouped.sum(axis=2).max(axis=1)
    return out


def expand_walk(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    spp, bm, bn, dot, st = p["SEGS_PER_PROG"], p["BLOCK_M"], p["BLOCK_N"], p["USE_DOT"] > 0, p["num_stages"]
    row_tile = np.where(dot, bm, 1.0)
    ct, groups = g.col_tiles(bn), np.ceil(g.S / spp)
    return {
        "launches": np.ones_like(bm),
        "programs": groups * np.ceil(g.maxH / bn) * g.P,
        "active": groups * ct,
        "steps": _walk_steps(g, spp, row_tile),
        "bytes": _expand_io(g, ct, np.full_like(bm, g.S)),
        "rows": g.tiles(row_tile) * row_tile,
        "smem": np.where(dot, st * (bm + bn) * g.dot_rank * g.b, 0.0),
    }


def _fused_io(g: GridShape, splits: np.ndarray, row_groups: np.ndarray) -> np.ndarray:
    """x once per active column split; A (the split's projection) and B once per row group and split."""
    return g.b * (g.T * g.K * splits + row_groups * (splits * g.r * g.K + g.H * g.r) + g.c * g.T * g.H)


def fused_tile(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    bm, bk, bn, ns, st = p["BLOCK_M"], p["BLOCK_K"], p["BLOCK_N"], p["N_SPLIT"], p["num_stages"]
    splits, tiles = g.col_splits(bn, ns), g.tiles(bm)
    return {
        "launches": np.ones_like(bm),
        "programs": g.P * ns * g.row_grid(bm),
        "active": tiles * splits,
        "steps": np.ceil(g.K / bk) + np.ceil(np.ceil(g.maxH / bn) / ns),
        "bytes": _fused_io(g, splits, tiles),
        "rows": tiles * bm,
        "smem": st * np.maximum((bm + g.dot_rank) * bk, (bm + bn) * g.dot_rank) * g.b,
    }


def fused_gemv(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    bt, bk, bn, ns = p["BLOCK_T"], p["BLOCK_K"], p["BLOCK_N"], p["N_SPLIT"]
    splits, groups = g.col_splits(bn, ns), g.tiles(bt)
    return {
        "launches": np.ones_like(bt),
        "programs": g.P * ns * g.S,
        "active": g.S * splits,
        "steps": np.ceil(g.maxlen / bt) * (np.ceil(g.K / bk) + np.ceil(np.ceil(g.maxH / bn) / ns)),
        "bytes": _fused_io(g, splits, groups),
        "rows": groups * bt,
        "smem": np.zeros_like(bt),
    }


def _fused_splitk(g: GridShape, p: Mapping[str, np.ndarray], dot: bool, mode: str = "wait") -> Analytic:
    """Blocks (segment, row tile, projection) of cooperating programs; SPLIT_K read their K share of x and A and
    add an fp32 partial into the workspace (atomic read-modify-write); the expanders read the sum back and share
    the column tiles. ``wait``: SPLIT_K * N_MULT programs, all expand; ``last``: SPLIT_K programs, the last in
    expands every tile; ``fanout``: SPLIT_K producers, then EXPANDERS programs that expand."""
    bm, bk, bn, sk, st = p["BLOCK_M"], p["BLOCK_K"], p["BLOCK_N"], p["SPLIT_K"], p["num_stages"]
    if mode == "fanout":
        progs, expanders = sk + p["EXPANDERS"], p["EXPANDERS"]
    else:  # the programs of a block, and those that read the sum back and share the columns
        progs = sk * p["N_MULT"] if mode == "wait" else sk
        expanders = progs if mode == "wait" else 1.0
    tiles = g.tiles(bm)
    rank = g.dot_rank if dot else float(next_pow2(g.scn.rank))
    ws = 4.0 * tiles * bm * g.P * rank * (2.0 * sk + expanders + 1.0)  # atomics, reads back, the zeroing
    return {
        "launches": np.ones_like(bm),
        "programs": g.P * progs * g.row_grid(bm),
        "active": tiles * g.P * progs,
        "steps": np.ceil(np.ceil(g.K / bk) / sk) + np.ceil(np.ceil(g.maxH / bn) / expanders),
        "bytes": g.b * (g.T * g.K * g.P + tiles * (g.R * g.K + g.H * g.r) + g.c * g.T * g.H) + ws,
        "rows": tiles * bm,
        "smem": st * np.maximum((bm + g.dot_rank) * bk, (bm + bn) * g.dot_rank) * g.b if dot else np.zeros_like(bm),
    }


def fused_splitk_dot(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    return _fused_splitk(g, p, dot=True)


def fused_splitk_fma(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    return _fused_splitk(g, p, dot=False)


def fused_splitlast_dot(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    return _fused_splitk(g, p, dot=True, mode="last")


def fused_splitlast_fma(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    return _fused_splitk(g, p, dot=False, mode="last")


def fused_fanout_dot(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    return _fused_splitk(g, p, dot=True, mode="fanout")


def fused_fanout_fma(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
    return _fused_splitk(g, p, dot=False, mode="fanout")


def vllm_keys(model: Callable[[GridShape, Mapping[str, np.ndarray]], Analytic]) -> Callable:
    """A grid model read with vLLM's config keys (its kernels tile like our tl.dot sketches; their grids also
    carry programs that return at once, which ``active`` leaves out)."""

    def read(g: GridShape, p: Mapping[str, np.ndarray]) -> Analytic:
        return model(g, {k.upper() if k.startswith(("block", "split")) else k: v for k, v in p.items()})

    return read


GridModel = Callable[[GridShape, Mapping[str, np.ndarray]], Analytic]
