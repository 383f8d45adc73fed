"""Interpreter correctness of every sketch and baseline on every workload and dtype, random valid configs."""

import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from kernel_cases import BASELINE_IDS, SKETCH_IDS, small_scenario

from dop_tui.measure.check import check_kernel
from dop_tui.scenario import make_scenario
from dop_tui.space import enumerate_valid, get_sketch, sample_many

DTYPES = ["fp32", "fp16", "bf16"]
WORKLOADS = ["distinct", "uniform", "skewed", "identical"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("sketch", SKETCH_IDS)
def test_sketch_random_configs(sketch, workload, dtype):
    op = get_sketch(sketch).op
    rng = random.Random(hash((sketch, workload, dtype)) & 0xFFFF)
    s = small_scenario(op, workload, dtype, rank=rng.choice([8, 16]), h_outs=rng.choice([(72,), (40, 24)]))
    for i, cand in enumerate(sample_many(sketch, s, 3, rng)):
        res = check_kernel(sketch, s, cand.params, seed=i)
        assert res.ok, f"{cand}: {res.error or res.rel_error}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("baseline", BASELINE_IDS)
def test_baselines(baseline, workload, dtype):
    op = baseline.split("/")[0]
    s = small_scenario(op, workload, dtype, rank=16, h_outs=(72, 40))
    res = check_kernel(baseline, s)
    assert res.ok, res.error or res.rel_error


@pytest.mark.parametrize("kernel", SKETCH_IDS + BASELINE_IDS)
@pytest.mark.parametrize(("accumulate", "inter"), [(False, "input"), (True, "input"), (False, "fp32")])
def test_semantic_options(kernel, accumulate, inter):
    op = kernel.split("/")[0]
    s = small_scenario(op, "skewed", "bf16", h_in=96, accumulate=accumulate, inter=inter, scale=1.5)
    cfgs = [{}] if "/baseline/" in kernel else [c.params for c in sample_many(kernel, s, 2, random.Random(5))]
    for cfg in cfgs:
        res = check_kernel(kernel, s, cfg)
        assert res.ok, f"{cfg}: {res.error or res.rel_error}"


@pytest.mark.parametrize("kernel", SKETCH_IDS + BASELINE_IDS)
def test_large_rank_and_long_segment(kernel):
    """Rank 128 with a 70-token segment and K that no block divides."""
    op = kernel.split("/")[0]
    s = make_scenario(op, 136, (48,), 128, "fp16", [70, 1], workload="prefill-like")
    if "/baseline/" in kernel:
        cfg = {}
    else:
        valid = enumerate_valid(kernel, s)
        # the largest blocks are the cheapest to interpret
        cfg = max(valid, key=lambda c: sum(v for k, v in c.params.items() if k.startswith("BLOCK"))).params
    res = check_kernel(kernel, s, cfg)
    assert res.ok, f"{cfg}: {res.error or res.rel_error}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sketch=st.sampled_from(SKETCH_IDS),
    lens=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    h_in=st.integers(16, 160),
    h_out=st.integers(16, 96),
    rank=st.sampled_from([8, 16, 24]),
    dtype=st.sampled_from(DTYPES),
    data=st.data(),
)
def test_property_random_layouts(sketch, lens, h_in, h_out, rank, dtype, data):
    op = get_sketch(sketch).op
    n_ad = data.draw(st.integers(1, 3))
    ads = data.draw(st.lists(st.integers(0, n_ad - 1), min_size=len(lens), max_size=len(lens)))
    s = make_scenario(
        op,
        h_in,
        (h_out,),
        rank,
        dtype,
        lens,
        seg_adapters=ads,
        num_adapters=n_ad,
        accumulate=data.draw(st.booleans()),
    )
    valid = enumerate_valid(sketch, s)
    assume(valid)  # e.g. split-K has no legal split when K fits in one block
    cand = valid[data.draw(st.integers(0, len(valid) - 1))]
    res = check_kernel(sketch, s, cand.params)
    assert res.ok, f"{cand}: {res.error or res.rel_error}"
