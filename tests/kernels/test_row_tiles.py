"""Grids over the segments' row tiles (``kernels/_common.py``: ``row_tile_grid``, ``locate_tile``): the flat
grid covers every row tile, is chosen only where it launches fewer programs, and every sketch that tiles rows
computes the right result with it (interpreter, batches with one long segment and short ones)."""

import random

import pytest

from dop_tui.kernels._common import cdiv, row_tile_grid
from dop_tui.measure.check import check_kernel
from dop_tui.scenario import make_scenario
from dop_tui.space import sample_many

ROW_TILED = ["shrink/tile/dot", "shrink/splitk/dot", "shrink/splitk-last/dot", "shrink/splitk-last/fma",
             "expand/tile/dot", "fused/tile/dot", "fused/splitk/dot", "fused/splitk/fma", "fused/splitk-last/dot",
             "fused/splitk-last/fma", "fused/splitk-fanout/dot", "fused/splitk-fanout/fma"]  # fmt: skip


@pytest.mark.parametrize("seed", range(20))
def test_the_flat_grid_covers_every_tile_and_is_chosen_only_when_smaller(seed):
    rng = random.Random(seed)
    lens = [rng.choice([0, 1, 2, 5, 16, 17, 40, 130]) for _ in range(rng.randint(1, 12))]
    for bm in (16, 32, 64):
        segs, rows, flat = row_tile_grid(sum(lens), len(lens), max(lens), bm)
        plain = len(lens) * cdiv(max(lens), bm)
        if flat:
            assert segs == 1 and rows < plain and flat >= len(lens) and flat & (flat - 1) == 0
            assert rows >= sum(cdiv(n, bm) for n in lens)  # every row tile has a program
        else:
            assert (segs, rows) == (len(lens), cdiv(max(lens), bm))


@pytest.mark.parametrize("sketch", ROW_TILED)
def test_row_tiled_sketches_on_a_flat_grid(sketch):
    op = sketch.split("/")[0]
    rng = random.Random(sketch)
    for lens in ([40, 1, 1, 1, 1], [3, 33, 1, 2]):
        scn = make_scenario(op, 200, (72,), 16, "fp32", lens, workload="skewed")
        cands = [c.params for c in sample_many(sketch, scn, 12, rng)]
        flat = [c for c in cands if row_tile_grid(sum(lens), len(lens), max(lens), c["BLOCK_M"])[2]]
        assert flat, f"{sketch}: no sampled config takes the flat grid on {lens}"
        for i, cfg in enumerate(flat[:2]):
            res = check_kernel(sketch, scn, cfg, seed=i)
            assert res.ok, f"{sketch} {lens} {cfg}: {res.error or res.rel_error}"
