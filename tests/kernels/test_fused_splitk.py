"""The split-K fused kernel keeps state between launches (epoch counters, two workspace slots): it must stay
right over many launches of one closure, with the segment layout changed in place between them (blocks that
have rows in one launch and none in the next), as a captured decode step replays it."""

import pytest
import torch

from dop_tui.measure.launch import bind
from dop_tui.operands import make_operands
from dop_tui.reference import relative_error
from dop_tui.scenario import make_scenario
from dop_tui.space import why_invalid

# 12 tokens in 3 segment slots, none longer than the first layout's longest (the grid is sized by it)
LAYOUTS = [[10, 1, 1], [6, 3, 3], [1, 1, 10], [10, 0, 2], [4, 4, 4], [1, 1, 10]]


def _expected(ops, bounds: list[int]) -> torch.Tensor:
    """The overwritten delta for segments ``bounds`` (float64 loop over segments and projections)."""
    s, r = ops.scenario, ops.scenario.rank
    x, a, b = ops.x.double(), ops.a.double(), ops.b.double()
    offs = ops.proj_offsets.tolist()
    out = torch.zeros_like(ops.y, dtype=torch.float64)
    for i, w in enumerate(s.seg_adapters):
        rows = slice(bounds[i], bounds[i + 1])
        for p in range(s.num_proj):
            cols = slice(offs[p], offs[p + 1])
            out[rows, cols] = s.scale * (x[rows] @ a[w, p * r : (p + 1) * r].T) @ b[w, cols].T
    return out


# every program owns column tiles of both projections (160 and 128 wide, 32-column tiles), so the programs that
# read the workspace (in the interpreter, the last of each block) write results the test sees
CONFIGS = {
    # the last program in expands every tile (here a block's four programs, K = 192 in 32-column steps)
    "fused/splitk-last/dot": {
        "BLOCK_M": 16,
        "BLOCK_K": 32,
        "BLOCK_N": 32,
        "SPLIT_K": 4,
        "num_warps": 4,
        "num_stages": 1,
    },
    "fused/splitk-last/fma": {
        "BLOCK_M": 4,
        "BLOCK_K": 64,
        "BLOCK_N": 64,
        "SPLIT_K": 2,
        "num_warps": 2,
        "num_stages": 1,
    },
    "fused/splitk/dot": {
        "BLOCK_M": 16,
        "BLOCK_K": 32,
        "BLOCK_N": 32,
        "SPLIT_K": 2,
        "N_MULT": 1,
        "num_warps": 4,
        "num_stages": 1,
    },
    "fused/splitk/fma": {
        "BLOCK_M": 2,
        "BLOCK_K": 64,
        "BLOCK_N": 32,
        "SPLIT_K": 2,
        "N_MULT": 2,
        "num_warps": 2,
        "num_stages": 1,
    },
    # producers first, then expanders: in the interpreter (programs in launch order) the expanders find the sum
    "fused/splitk-fanout/dot": {
        "BLOCK_M": 16,
        "BLOCK_K": 32,
        "BLOCK_N": 32,
        "SPLIT_K": 4,
        "EXPANDERS": 2,
        "num_warps": 4,
        "num_stages": 1,
    },
    "fused/splitk-fanout/fma": {
        "BLOCK_M": 4,
        "BLOCK_K": 64,
        "BLOCK_N": 32,
        "SPLIT_K": 2,
        "EXPANDERS": 4,
        "num_warps": 2,
        "num_stages": 1,
    },
}


def _scenario():
    return make_scenario("fused", 192, (160, 128), 8, "fp32", LAYOUTS[0], accumulate=False, workload="skewed")


def _launch(ops, run, lens: list[int], out: torch.Tensor) -> list[int]:
    """One launch on segments ``lens``, set in place as a serving step updates them, with ``out`` (y or v)
    filled with 7 first; their bounds."""
    bounds = [0]
    for n in lens:
        bounds.append(bounds[-1] + n)
    ops.seg_indptr.copy_(torch.tensor(bounds, dtype=torch.int32))
    out.fill_(7.0)
    run()
    return bounds


@pytest.mark.parametrize("sketch", sorted(CONFIGS))
def test_repeated_launches_with_layouts_changed_in_place(sketch):
    scn, cfg = _scenario(), CONFIGS[sketch]
    assert not why_invalid(sketch, scn, cfg)
    ops = make_operands(scn, seed=3)
    run = bind(sketch, ops, cfg)  # one closure: one workspace, one set of counters
    for launch, lens in enumerate(LAYOUTS):
        bounds = _launch(ops, run, lens, ops.y)
        assert relative_error(ops.y, _expected(ops, bounds)) < 1e-5, f"launch {launch}, segments {lens}: {cfg}"


@pytest.mark.parametrize("sketch", ["fused/splitk-fanout/dot", "fused/splitk-fanout/fma"])
def test_fanout_expanders_that_never_see_the_sum_recompute_it(sketch):
    # the expanders' counters one launch ahead of the producers': every expander waits for a count the producers
    # never reach, runs out of polls and reduces all of K itself; the result must not change
    scn, cfg = _scenario(), CONFIGS[sketch]
    ops = make_operands(scn, seed=3)
    run = bind(sketch, ops, cfg)
    counts = next(a for a in _launch_args(run) if isinstance(a, torch.Tensor) and a.dtype == torch.int64)
    counts.view(-1, 2)[:, 1] += cfg["EXPANDERS"]
    for launch, lens in enumerate(LAYOUTS[:3]):
        bounds = _launch(ops, run, lens, ops.y)
        assert relative_error(ops.y, _expected(ops, bounds)) < 1e-5, f"launch {launch}, segments {lens}: {cfg}"
    # the producers counted SPLIT_K per launch with rows, the expanders EXPANDERS: their epochs stay one apart
    per_block = counts.view(-1, 2)
    used = (per_block[:, 0] > 0).nonzero().flatten()
    assert len(used) > 0
    for b in used:
        producers, expanders = (int(v) for v in per_block[b])
        assert expanders // cfg["EXPANDERS"] == producers // cfg["SPLIT_K"] + 1


def _launch_args(run) -> tuple:
    """The tensors a bound launcher closes over (its workspace and counters among them)."""
    cells = [c.cell_contents for c in run.__closure__ or ()]
    return next(c for c in cells if isinstance(c, tuple))


SHRINK_CONFIGS = {  # a block's programs split K = 192; the last one in writes v
    "shrink/splitk-last/dot": {"BLOCK_M": 16, "BLOCK_K": 32, "SPLIT_K": 4, "num_warps": 4, "num_stages": 1},
    "shrink/splitk-last/fma": {"BLOCK_M": 4, "BLOCK_K": 64, "SPLIT_K": 2, "num_warps": 2, "num_stages": 1},
}


@pytest.mark.parametrize("sketch", sorted(SHRINK_CONFIGS))
def test_the_shrink_alone_over_repeated_launches_with_layouts_changed_in_place(sketch):
    """The shrink's own split-K kernel keeps the same epoch state: v is overwritten right every launch."""
    scn = make_scenario(
        "shrink", 192, (160, 128), 8, "fp32", LAYOUTS[0], accumulate=False, scale=0.5, workload="skewed"
    )
    cfg = SHRINK_CONFIGS[sketch]
    assert not why_invalid(sketch, scn, cfg)
    ops = make_operands(scn, seed=3)
    run = bind(sketch, ops, cfg)
    x, a, r = ops.x.double(), ops.a.double(), scn.rank
    for launch, lens in enumerate(LAYOUTS):
        bounds = _launch(ops, run, lens, ops.v)
        want = torch.full_like(ops.v, 7.0, dtype=torch.float64)  # rows of no segment keep what was there
        for i, w in enumerate(scn.seg_adapters):
            rows = slice(bounds[i], bounds[i + 1])
            for p in range(scn.num_proj):
                want[rows, p * r : (p + 1) * r] = scn.scale * x[rows] @ a[w, p * r : (p + 1) * r].T
        assert relative_error(ops.v, want) < 1e-5, f"launch {launch}, segments {lens}: {cfg}"
