"""The correctness gate catches a kernel that skips a tile, whether the op overwrites or accumulates."""

import pytest
from wrong_kernels import bind_shrink_skips_last_tile

import dop_tui.measure.check as check_mod
from dop_tui.scenario import make_scenario


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_gate_rejects_a_kernel_that_skips_a_tile(monkeypatch, accumulate, dtype):
    # two projections of rank 16: the last 16 columns of v belong to a tile the kernel never writes
    scn = make_scenario("shrink", 64, (32, 32), 16, dtype, [3, 2], accumulate=accumulate)
    monkeypatch.setattr(check_mod, "bind", lambda kid, ops, cfg: bind_shrink_skips_last_tile(ops, cfg))
    res = check_mod.check_kernel("shrink/tile/dot", scn, {})
    assert not res.ok
    assert res.rel_error > 0.3  # half the output is missing (NaN-poisoned or stale), not a rounding issue


@pytest.mark.parametrize("accumulate", [False, True])
def test_control_the_real_kernel_passes_the_same_gate(accumulate):
    scn = make_scenario("shrink", 64, (32, 32), 16, "bf16", [3, 2], accumulate=accumulate)
    cfg = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 32, "WEIGHT_HINT": 0, "num_warps": 4, "num_stages": 1}
    res = check_mod.check_kernel("shrink/tile/dot", scn, cfg)
    assert res.ok and res.rel_error < 1e-3


def test_the_gate_checks_another_version_of_a_kernel_through_a_binder():
    """``binder`` (what an A/B of two kernel versions passes) is what the gate runs, not the kernel id's launcher."""
    from dop_tui.operands import make_operands
    from dop_tui.reference import reference_loop

    scn = make_scenario("shrink", 64, (32, 32), 16, "fp32", [3, 2], accumulate=False)
    cfg = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 32, "WEIGHT_HINT": 0, "num_warps": 4, "num_stages": 1}
    ops = make_operands(scn, seed=0)
    ref, start = reference_loop(ops), check_mod.poisoned_start(ops)
    assert check_mod.error_against("shrink/tile/dot", ops, cfg, start, ref) < 1e-5
    wrong = check_mod.error_against("shrink/tile/dot", ops, cfg, start, ref,
                                    binder=lambda o: bind_shrink_skips_last_tile(o, cfg))  # fmt: skip
    assert not wrong < 0.3  # NaN (the unwritten tile stays poisoned) or large
