"""Features of a (scenario, sketch, config) candidate: one fixed column layout across every sketch of every op.

Columns, in order (``feature_names()``):

- ``sketch=<id>``: one-hot sketch id (baselines are not featurized: the search only scores sketches);
- one column per parameter name in the union of the sketch domains: ``log2(v)`` for parameters whose every
  domain value is a power of two, ``v`` otherwise; ``FILL`` (-1) when the sketch has no such parameter;
- the scenario: tokens T, segments S, longest segment, h_in, total h_out H, total rank R, element bytes b,
  distinct adapters;
- analytic quantities from each sketch's grid model (``Sketch.grid``, ``dop_tui.space.grid``): ``launches``,
  ``programs``, ``active``, ``waves = active / SMs``, ``warps_per_sm``, ``steps``, ``bytes``, ``reread`` (bytes
  over the roofline's fewest), ``bytes_per_program = bytes / active``, ``pad_rows`` (tile rows past segment
  ends: wasted tensor-core rows for ``tl.dot``, idle FMA lanes otherwise), ``row_util = T / rows``, ``smem``
  and ``floor_us`` (the roofline floor, ``dop_tui.measure.roofline``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dop_tui.measure.roofline import roofline
from dop_tui.scenario import Scenario
from dop_tui.space.device import DeviceSpec
from dop_tui.space.grid import GridShape
from dop_tui.space.sketches import SKETCH_BY_ID, SKETCHES

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
    g = GridShape(scn)
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
        a = sk.grid(g, params)
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
