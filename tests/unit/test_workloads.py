import pytest

from dop_tui.workloads import (
    decode_lens,
    distinct,
    from_token_mapping,
    identical,
    prefill_lens,
    skewed,
    uniform,
)


@pytest.mark.parametrize(
    ("bs", "uni", "skew"),
    [
        (64, [8] * 8, [17, 17, 11, 7, 5, 3, 2, 1, 1]),
        (32, [6, 6, 5, 5, 5, 5], [11, 7, 5, 3, 2, 2, 1, 1]),
        (16, [4] * 4, [5, 4, 3, 2, 1, 1]),
        (8, [3, 3, 2], [3, 2, 1, 1, 1]),
        (1, [1], [1]),
    ],
)
def test_punica_examples(bs, uni, skew):
    assert uniform(bs) == uni
    assert skewed(bs) == skew
    assert distinct(bs) == [1] * bs
    assert identical(bs) == [bs]


@pytest.mark.parametrize("bs", range(1, 200))
def test_every_workload_sums_to_batch(bs):
    for w in ("distinct", "uniform", "skewed", "identical"):
        lens = decode_lens(w, bs)
        assert sum(lens) == bs and min(lens) >= 1


def test_uniform_segment_count_is_ceil_sqrt():
    assert len(uniform(10)) == 4 and len(uniform(9)) == 3 and len(uniform(65)) == 9


def test_bad_batch_and_workload():
    with pytest.raises(ValueError, match="empty batch"):
        distinct(0)
    with pytest.raises(ValueError, match="unknown workload"):
        decode_lens("zipf", 8)


def test_prefill_lens_in_range_and_seeded():
    lens = prefill_lens(16, 128, 2048, seed=3)
    assert all(128 <= n <= 2048 for n in lens) and lens == prefill_lens(16, 128, 2048, seed=3)
    with pytest.raises(ValueError):
        prefill_lens(0)


def test_token_mapping_stable_sort():
    g = from_token_mapping([2, -1, 0, 2, 0, -1, 1])
    assert g.order == (2, 4, 6, 0, 3)
    assert g.seg_lens == (2, 1, 2) and g.adapters == (0, 1, 2) and g.unmapped == 2


def test_token_mapping_errors():
    with pytest.raises(ValueError, match="adapter index out of range"):
        from_token_mapping([0, 5], num_adapters=2)
    with pytest.raises(ValueError, match="adapter index out of range"):
        from_token_mapping([0, -2])
    with pytest.raises(ValueError, match="empty batch"):
        from_token_mapping([-1, -1])
