"""The CPU compile pool fills Triton's cache under the JIT's own keys, and never judges a candidate."""

import os
import random

import pytest

from dop_tui.measure.compile_pool import CompilePool
from dop_tui.scenario import make_scenario
from dop_tui.space import sample_many


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "triton"))
    return tmp_path / "triton"


def _entries(path):
    return set(os.listdir(path)) if path.exists() else set()


def test_pool_compiles_into_the_cache_and_a_second_pool_hits_it(cache_dir):
    scn = make_scenario("shrink", 256, 256, 16, "bf16", [1, 2])
    rng = random.Random(0)
    reqs = [(c.sketch, c.params) for c in sample_many("shrink/splitk/dot", scn, 2, rng)]
    reqs.append(("shrink/baseline/vllm", {}))
    pool = CompilePool(2, 90)
    try:
        pool.submit(scn, reqs[:1])  # compiles start before the wait
        assert pool.wait(scn, reqs) == ["", "", ""]
        assert pool.stats.requests == 3 and pool.stats.failed == 0 and pool.stats.launches >= 3
        line = pool.stats.line(pool.workers)
        assert line.startswith(f"compile pool (2 CPU processes): {pool.stats.launches} kernels for 3 requests")
        assert "JIT" not in line  # nothing failed
    finally:
        pool.close()
    first = _entries(cache_dir)
    assert len(first) >= 3  # one cache entry per distinct compiled kernel

    again = CompilePool(1, 90)
    try:
        assert again.wait(scn, reqs) == ["", "", ""]
    finally:
        again.close()
    assert _entries(cache_dir) == first  # same keys: nothing compiled twice


def test_a_request_that_does_not_compile_is_reported_not_judged(cache_dir):
    scn = make_scenario("shrink", 256, 256, 16, "bf16", [1, 2])
    pool = CompilePool(1, 90)
    try:
        errors = pool.wait(scn, [("shrink/tile/dot", {"BLOCK_M": 3})])  # a config no kernel accepts
    finally:
        pool.close()
    assert errors[0] and pool.stats.failed == 1 and pool.stats.first_error == errors[0]
    assert f"1 left to the GPU's JIT (first: {errors[0][:40]}" in pool.stats.line(1)
