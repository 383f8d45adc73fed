import pytest

from dop_tui.measure.roofline import roofline
from dop_tui.scenario import make_scenario
from dop_tui.space.device import DEVICES


def test_design_example_distinct_t64():
    # DESIGN.md: T=64, h=4096, r=16, bf16, Distinct moves 8.9 MB, 2.1 us at 4.3 TB/s.
    s = make_scenario("shrink", 4096, 4096, 16, "bf16", [1] * 64, accumulate=True, inter_dtype="input")
    rf = roofline(s, DEVICES["H200"])
    assert rf.bytes == 2 * (64 * 4096 + 64 * 16 * 4096 + 2 * 64 * 16) == 8_916_992
    assert rf.flops == 2 * 64 * 4096 * 16
    assert rf.floor_s * 1e6 == pytest.approx(2.07, abs=0.01) and rf.memory_bound
    assert rf.intensity == pytest.approx(0.94, abs=0.01)


def test_identical_has_higher_intensity_and_fused_skips_intermediate():
    dist = make_scenario("fused", 4096, 4096, 16, "bf16", [1] * 64)
    iden = make_scenario("fused", 4096, 4096, 16, "bf16", [64])
    h200 = DEVICES["H200"]
    assert roofline(iden, h200).intensity > 5 * roofline(dist, h200).intensity
    # fused bytes: x + A + B + y read and written, no v
    assert roofline(iden, h200).bytes == 2 * (64 * 4096 + 16 * 4096 + 4096 * 16 + 2 * 64 * 4096)
