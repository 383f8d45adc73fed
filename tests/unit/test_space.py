import random
from collections import Counter

import pytest

from dop_tui.models import get_model
from dop_tui.scenario import make_scenario
from dop_tui.space import (
    DEFAULT_DEVICE,
    SKETCHES,
    Candidate,
    count_valid,
    enumerate_valid,
    get_sketch,
    neighbours,
    sample,
    sketches_for,
    why_invalid,
)
from dop_tui.workloads import decode_lens

H, M = get_model("llama2-7b").hidden, get_model("llama2-7b").intermediate


def _decode(op, workload="distinct", bs=16, h_in=H, h_out=H, rank=16, **kw):
    return make_scenario(op, h_in, h_out, rank, "bf16", decode_lens(workload, bs), workload=workload, **kw)


def test_tree_has_three_sketches_per_op_family_structure():
    assert len(sketches_for("shrink")) >= 3 and len(sketches_for("expand")) >= 3 and len(sketches_for("fused")) >= 1
    assert len({s.id for s in SKETCHES}) == len(SKETCHES)
    for s in SKETCHES:
        assert s.id == f"{s.op}/{s.family}/{s.name}" and s.doc and callable(s.entry.resolve())


@pytest.mark.parametrize("op", ["shrink", "expand", "fused"])
@pytest.mark.parametrize("workload", ["distinct", "uniform", "skewed", "identical"])
def test_llama_decode_space_holds_thousands(op, workload):
    counts = count_valid(_decode(op, workload, bs=64))
    assert all(n > 0 for n in counts.values()), counts
    assert sum(counts.values()) >= 1000


def test_count_matches_enumeration_and_every_config_is_valid():
    s = _decode("shrink", "skewed", bs=32)
    for sk in sketches_for("shrink"):
        valid = enumerate_valid(sk.id, s)
        assert len(valid) == count_valid(s)[sk.id] == len(set(valid))
        for c in valid[:: max(1, len(valid) // 50)]:
            assert why_invalid(sk.id, s, c.params) == []


def test_sampling_is_uniform_over_valid_configs():
    s = _decode("expand", "identical", bs=8)
    sk = "expand/gemv/fma"
    valid = enumerate_valid(sk, s)
    rng = random.Random(1)
    draws = Counter(sample(sk, s, rng) for _ in range(len(valid) * 200))
    assert set(draws) == set(valid)  # every valid config reachable
    # chi-square-ish bound: no config drawn more than twice or less than half its expectation
    assert max(draws.values()) < 2 * 200 and min(draws.values()) > 200 / 2


def test_neighbours_move_one_parameter_one_step():
    s = _decode("fused", "uniform", bs=32)
    rng = random.Random(0)
    for sk in sketches_for("fused"):
        c = sample(sk.id, s, rng)
        nbs = neighbours(c, s)
        assert nbs and c not in nbs
        doms = get_sketch(sk.id).domains
        for nb in nbs:
            diff = [k for k in doms if nb.params[k] != c.params[k]]
            assert len(diff) == 1
            k = diff[0]
            assert abs(doms[k].index(nb.params[k]) - doms[k].index(c.params[k])) == 1
            assert why_invalid(sk.id, s, nb.params) == []


def test_why_invalid_explains():
    s = _decode("shrink", "distinct", bs=16, inter_dtype="input")
    cfg = dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=256, SPLIT_K=32, WEIGHT_HINT=0, num_warps=4, num_stages=2)
    reasons = why_invalid("shrink/splitk/dot", s, cfg)
    assert any("fp32 atomics" in r for r in reasons)
    assert any("idle" in r for r in reasons)  # 32 splits of 256 > 16 steps of K=4096
    tile = {k: v for k, v in cfg.items() if k != "SPLIT_K"}
    assert why_invalid("shrink/tile/dot", s, tile) == []
    assert any("BLOCK_M=64 exceeds 16" in r for r in why_invalid("shrink/tile/dot", s, dict(tile, BLOCK_M=64)))
    assert why_invalid("shrink/tile/dot", s, dict(tile, BLOCK_Q=1))[0].startswith("unknown parameter")
    assert "not in its domain" in why_invalid("shrink/tile/dot", s, dict(tile, BLOCK_K=48))[-1]
    assert "implements shrink" in why_invalid("shrink/tile/dot", _decode("expand"), cfg)[0]
    big = dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=256, WEIGHT_HINT=0, num_warps=4, num_stages=4)
    prefill = make_scenario("shrink", H, (H, H, H), 64, "fp32", [512], workload="prefill")
    assert any("shared memory" in r for r in why_invalid("shrink/tile/dot", prefill, big))


def test_candidate_is_plain_hashable_data():
    c = Candidate.make("shrink/tile/dot", {"BLOCK_N": 16, "BLOCK_M": 32})
    assert c == Candidate.from_json(c.to_json()) and hash(c) == hash(Candidate.make(c.sketch, c.params))
    assert str(c) == "shrink/tile/dot[BLOCK_M=32, BLOCK_N=16]"


def test_legality_view_preserves_validity():
    """Enumeration is cached per legality view; the view must not change which configs are valid."""
    import itertools

    from dop_tui.space.space import _valid_view, legality_view

    rng = random.Random(3)
    for _ in range(12):
        op = rng.choice(["shrink", "expand", "fused"])
        lens = [rng.randint(1, 40) for _ in range(rng.randint(1, 20))]
        s = make_scenario(op, rng.choice([96, 4096]), (rng.choice([64, 4096]),), rng.choice([8, 16, 64]), "bf16", lens)
        for sk in sketches_for(op):
            view = legality_view(s, sk.id)
            names = [n for n, _ in sk.params]
            combos = list(itertools.product(*(d for _, d in sk.params)))
            for values in rng.sample(combos, min(300, len(combos))):
                cfg = dict(zip(names, values, strict=True))
                assert (why_invalid(sk.id, s, cfg) == []) == (why_invalid(sk.id, view, cfg) == [])
            assert len(_valid_view(sk.id, view, DEFAULT_DEVICE)) == len(enumerate_valid(sk.id, s))
