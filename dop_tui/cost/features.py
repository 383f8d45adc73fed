"""Features of a (scenario, sketch, config) candidate: one fixed column layout across every sketch of every op.

Columns, in order (``feature_names()``):

- ``sketch=<id>``: one-hot sketch id (baselines are not featurized: the search only scores sketches);
- one column per parameter name in the union of the sketch domains: ``log2(v)`` for parameters whose every
  domain value is a power of two, ``v`` otherwise; ``FILL`` (-1) when the sketch has no such parameter;
- the scenario: tokens T, segments S, longest segment, h_in, total h_out H, total rank R, element bytes b,
  distinct adapters;
- analytic quantities read from the kernels' grid formulas (``kernels/*.py``), for segment lengths ``l_s``,
  row tile ``t`` (BLOCK_M for ``tl.dot``, BLOCK_T for FMA) and ``tiles(t) = sum_s ceil(l_s / t)``:

  - ``launches``: 1, plus the zeroing launch of an overwriting split-K shrink;
  - ``programs``: the grid size; ``active``: programs that do work (row tiles past a segment's end and column
    splits past a projection's width return at once); ``waves = active / SMs``; ``warps_per_sm``;
  - ``steps``: serial tile steps of the longest program (K pieces, token groups, column tiles);
  - ``bytes``: global traffic counting re-reads across programs (x once per column tile, adapter weights once
    per row tile or token group), fp32 atomic read-modify-writes and the zeroing pass; ``reread`` is its
    ratio to the roofline's fewest bytes; ``bytes_per_program = bytes / active``;
  - ``pad_rows``: ``tiles(t) * t - T``, tile rows past segment ends (wasted tensor-core rows for ``tl.dot``,
    idle FMA lanes otherwise); ``row_util = T / (tiles(t) * t)``;
  - ``smem``: the pipelined ``tl.dot`` operand tiles, ``stages * (m + n) * k * b`` (0 for FMA sketches);
  - ``floor_us``: the roofline floor (``dop_tui.measure.roofline``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from dop_tui.measure.roofline import roofline
from dop_tui.scenario import Scenario
from dop_tui.space.device import DeviceSpec
from dop_tui.space.sketches import DOT_MIN, SKETCH_BY_ID, SKETCHES, next_pow2

FILL = -1.0
SCENARIO_FEATURES = ("tokens", "segments", "max_seg_len", "h_in", "total_h_out", "total_rank", "elem_bytes", "adapters")
ANALYTIC_FEATURES = (
    "launches",
    "programs",
    "active",
    "waves",
    "warps_per_sm",
    "steps",
    "bytes",
    "reread",
    "bytes_per_program",
    "pad_rows",
    "row_util",
    "smem",
    "floor_us",
)


def _param_names() -> tuple[str, ...]:
    names: dict[str, None] = {}
    for sk in SKETCHES:
        names.update(dict.fromkeys(n for n, _ in sk.params))
    return tuple(names)


def _is_pow2_param(name: str) -> bool:
    values = {v for sk in SKETCHES for n, dom in sk.params if n == name for v in dom}
    return all(v > 0 and v & (v - 1) == 0 for v in values)


PARAMS = _param_names()
LOG2_PARAMS = frozenset(n for n in PARAMS if _is_pow2_param(n))
SKETCH_IDS = tuple(sk.id for sk in SKETCHES)


def feature_names() -> list[str]:
    """Column names of the feature matrix, fixed for every sketch of every op."""
    params = [f"log2({n})" if n in LOG2_PARAMS else n for n in PARAMS]
    return [f"sketch={s}" for s in SKETCH_IDS] + params + list(SCENARIO_FEATURES) + list(ANALYTIC_FEATURES)


class _Shape:
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


def _shrink_dot(g: _Shape, p: Mapping[str, np.ndarray]) -> Analytic:
    bm, bn, bk, st = p["BLOCK_M"], p["BLOCK_N"], p["BLOCK_K"], p["num_stages"]
    split = p.get("SPLIT_K", np.ones_like(bm))
    nt, tiles = np.ceil(g.R / bn), g.tiles(bm)
    out, launches = g.shrink_out(split)
    return {
        "launches": launches,
        "programs": g.S * np.ceil(g.maxlen / bm) * nt * split,
        "active": tiles * nt * split,
        "steps": np.ceil(np.ceil(g.K / bk) / split),
        "bytes": g.b * (g.T * g.K * nt + tiles * g.R * g.K) + out,
        "rows": tiles * bm,
        "smem": st * (bm + bn) * bk * g.b,
    }


def _shrink_gemv(g: _Shape, p: Mapping[str, np.ndarray]) -> Analytic:
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


def _expand_io(g: _Shape, col_tiles: np.ndarray, b_reads: np.ndarray) -> np.ndarray:
    """v read once per column tile, B once per ``b_reads`` (row tiles or segments), y (read and) written."""
    return g.bv * g.T * g.r * col_tiles + g.b * (b_reads * g.H * g.r + g.c * g.T * g.H)


def _expand_tile(g: _Shape, p: Mapping[str, np.ndarray]) -> Analytic:
    bm, bn, bk, st = p["BLOCK_M"], p["BLOCK_N"], p["BLOCK_K"], p["num_stages"]
    ct, tiles = g.col_tiles(bn), g.tiles(bm)
    return {
        "launches": np.ones_like(bm),
        "programs": g.S * np.ceil(g.maxlen / bm) * np.ceil(g.maxH / bn) * g.P,
        "active": tiles * ct,
        "steps": np.ceil(g.r / bk),
        "bytes": _expand_io(g, ct, tiles),
        "rows": tiles * bm,
        "smem": st * (bm + bn) * bk * g.b,
    }


def _expand_gemv(g: _Shape, p: Mapping[str, np.ndarray]) -> Analytic:
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


def _walk_steps(g: _Shape, spp: np.ndarray, row_tile: np.ndarray) -> np.ndarray:
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


def _expand_walk(g: _Shape, p: Mapping[str, np.ndarray]) -> Analytic:
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


def _fused_io(g: _Shape, splits: np.ndarray, row_groups: np.ndarray) -> np.ndarray:
    """x once per active column split; A (the split's projection) and B once per row group and split."""
    return g.b * (g.T * g.K * splits + row_groups * (splits * g.r * g.K + g.H * g.r) + g.c * g.T * g.H)


def _fused_tile(g: _Shape, p: Mapping[str, np.ndarray]) -> Analytic:
    bm, bk, bn, ns, st = p["BLOCK_M"], p["BLOCK_K"], p["BLOCK_N"], p["N_SPLIT"], p["num_stages"]
    splits, tiles = g.col_splits(bn, ns), g.tiles(bm)
    return {
        "launches": np.ones_like(bm),
        "programs": g.P * ns * np.ceil(g.maxlen / bm) * g.S,
        "active": tiles * splits,
        "steps": np.ceil(g.K / bk) + np.ceil(np.ceil(g.maxH / bn) / ns),
        "bytes": _fused_io(g, splits, tiles),
        "rows": tiles * bm,
        "smem": st * np.maximum((bm + g.dot_rank) * bk, (bm + bn) * g.dot_rank) * g.b,
    }


def _fused_gemv(g: _Shape, p: Mapping[str, np.ndarray]) -> Analytic:
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


def _vllm_keys(model: Callable[[_Shape, Mapping[str, np.ndarray]], Analytic]) -> Callable:
    """A grid model read with vLLM's config keys (its kernels tile like our tl.dot sketches; their grids also
    carry programs that return at once, which ``active`` leaves out)."""

    def read(g: _Shape, p: Mapping[str, np.ndarray]) -> Analytic:
        return model(g, {k.upper() if k.startswith(("block", "split")) else k: v for k, v in p.items()})

    return read


GRID_MODEL: dict[str, Callable[[_Shape, Mapping[str, np.ndarray]], Analytic]] = {
    "shrink/vllm/triton": _vllm_keys(_shrink_dot),
    "expand/vllm/triton": _vllm_keys(_expand_tile),
    "shrink/tile/dot": _shrink_dot,
    "shrink/splitk/dot": _shrink_dot,
    "shrink/gemv/fma": _shrink_gemv,
    "expand/tile/dot": _expand_tile,
    "expand/gemv/fma": _expand_gemv,
    "expand/walk/segments": _expand_walk,
    "fused/tile/dot": _fused_tile,
    "fused/gemv/fma": _fused_gemv,
}


def _scenario_row(scn: Scenario) -> list[float]:
    return [
        scn.num_tokens,
        scn.num_segments,
        scn.max_seg_len,
        scn.h_in,
        scn.total_h_out,
        scn.total_rank,
        scn.elem_bytes,
        scn.distinct_adapters,
    ]


def featurize_many(scn: Scenario, items: Sequence[tuple[str, Mapping[str, int]]], device: DeviceSpec) -> np.ndarray:
    """Feature matrix ``[len(items), len(feature_names())]`` (float64) of ``(sketch id, config)`` items for one
    scenario, computed per sketch on arrays. Unknown ids, baselines, a sketch of another op or a config
    missing one of its sketch's parameters raise ``ValueError``."""
    names = feature_names()
    out = np.full((len(items), len(names)), FILL)
    if not items:
        return out
    g = _Shape(scn)
    roof = roofline(scn, device)
    n_sk, n_par, n_scn = len(SKETCH_IDS), len(PARAMS), len(SCENARIO_FEATURES)
    out[:, :n_sk] = 0.0
    out[:, n_sk + n_par : n_sk + n_par + n_scn] = _scenario_row(scn)
    by_sketch: dict[str, list[int]] = {}
    for i, (kernel, _) in enumerate(items):
        by_sketch.setdefault(kernel, []).append(i)
    for kernel, rows in by_sketch.items():
        sk = SKETCH_BY_ID.get(kernel)
        if sk is None:
            raise ValueError(f"cannot featurize {kernel!r}: only sketches are scored (known: {', '.join(SKETCH_IDS)})")
        if sk.op != scn.op:
            raise ValueError(f"sketch {kernel} implements {sk.op}, the scenario is {scn.op}")
        idx = np.asarray(rows)
        try:
            params = {n: np.array([float(items[i][1][n]) for i in rows]) for n in sk.domains}
        except KeyError as exc:
            raise ValueError(f"config of {kernel} lacks parameter {exc.args[0]!r}") from None
        out[idx, SKETCH_IDS.index(kernel)] = 1.0
        for n, v in params.items():
            out[idx, n_sk + PARAMS.index(n)] = np.log2(v) if n in LOG2_PARAMS else v
        a = GRID_MODEL[kernel](g, params)
        warps = params["num_warps"]
        analytic = {
            "launches": a["launches"],
            "programs": a["programs"],
            "active": a["active"],
            "waves": a["active"] / device.sms,
            "warps_per_sm": a["active"] * warps / device.sms,
            "steps": a["steps"],
            "bytes": a["bytes"],
            "reread": a["bytes"] / roof.bytes,
            "bytes_per_program": a["bytes"] / a["active"],
            "pad_rows": a["rows"] - g.T,
            "row_util": g.T / a["rows"],
            "smem": a["smem"],
            "floor_us": np.full(len(rows), roof.floor_s * 1e6),
        }
        base = n_sk + n_par + n_scn
        for j, name in enumerate(ANALYTIC_FEATURES):
            out[idx, base + j] = analytic[name]
    return out


def featurize(scn: Scenario, kernel: str, config: Mapping[str, int], device: DeviceSpec) -> np.ndarray:
    """Feature vector of one candidate (see ``featurize_many``)."""
    return featurize_many(scn, [(kernel, config)], device)[0]
