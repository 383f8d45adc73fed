import json

import pytest

from dop_tui.models import MODELS, get_model
from dop_tui.scenario import Scenario, make_scenario


def _scn(**kw):
    base = dict(op="shrink", h_in=4096, h_outs=4096, rank=16, dtype="bf16", seg_lens=[3, 1, 4])
    base.update(kw)
    return make_scenario(**base)


def test_json_round_trip_and_key():
    s = _scn(workload="skewed", scale=0.5)
    d = json.loads(json.dumps(s.to_json()))
    s2 = Scenario.from_json(d)
    assert s2 == s and s2.key == s.key
    assert s.key.startswith("shrink-4096x4096-r16-bf16-t8s3-skewed-")


def test_key_is_stable_and_semantic():
    assert _scn().key == "shrink-4096x4096-r16-bf16-t8s3-custom-49503655"
    assert _scn().key != _scn(accumulate=True).key
    assert _scn().key != _scn(seg_lens=[4, 1, 3]).key


def test_derived_sizes():
    s = make_scenario("expand", 4096, (4096, 1024, 1024), 16, "fp16", [2, 2], seg_adapters=[1, 1], num_adapters=3)
    assert (s.num_tokens, s.num_segments, s.total_rank, s.total_h_out, s.distinct_adapters) == (
        4,
        2,
        48,
        6144,
        1,
    )
    assert s.seg_indptr == (0, 2, 4) and s.accumulate is True


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        (dict(dtype="int8"), "unsupported dtype"),
        (dict(op="gemm"), "unknown op"),
        (dict(seg_lens=[]), "empty batch"),
        (dict(seg_lens=[2, 0]), "segment 1 has length 0"),
        (dict(seg_adapters=[0, 1, 5], num_adapters=3), "adapter index out of range"),
        (dict(seg_adapters=[0, 1]), "one per segment"),
        (dict(rank=0), "rank must be positive"),
        (dict(inter_dtype="fp8"), "intermediate dtype"),
    ],
)
def test_bad_scenarios(kw, msg):
    with pytest.raises(ValueError, match=msg):
        _scn(**kw)


def test_unknown_json_field():
    d = _scn().to_json()
    d["colour"] = "red"
    with pytest.raises(ValueError, match="unknown scenario fields"):
        Scenario.from_json(d)


def test_model_presets():
    m = get_model("llama2-7b")
    assert m.proj_shape("down") == (11008, 4096) and m.proj_shape("gate") == (4096, 11008)
    assert m.group_shape("qkv") == (4096, (4096, 4096, 4096))
    assert MODELS["llama2-13b"].group_shape("gateup") == (5120, (13824, 13824))
    with pytest.raises(ValueError, match="unknown projection"):
        m.proj_shape("lm_head")
    with pytest.raises(ValueError, match="unknown model"):
        get_model("llama3")
