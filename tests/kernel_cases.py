"""Small scenarios for interpreter tests: every workload shape, small K/N that no block divides."""

from dop_tui.scenario import make_scenario
from dop_tui.space import BASELINES, SKETCHES

SKETCH_IDS = [s.id for s in SKETCHES]
BASELINE_IDS = [b.id for b in BASELINES]
LAYOUTS = {
    "distinct": [1, 1, 1, 1, 1],
    "uniform": [3, 3, 2],
    "skewed": [9, 4, 2, 1, 1],
    "identical": [17],
}


def small_scenario(op, workload, dtype, *, rank=8, h_outs=(72,), h_in=200, accumulate=None, inter="fp32", scale=0.5):
    lens = LAYOUTS[workload]
    return make_scenario(
        op,
        h_in,
        h_outs,
        rank,
        dtype,
        lens,
        accumulate=accumulate,
        scale=scale,
        inter_dtype=inter,
        workload=workload,
    )
