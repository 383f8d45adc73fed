"""The two torch references agree with each other and with a float64 recomputation, on random layouts."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dop_tui.operands import make_operands
from dop_tui.reference import reference_gather_bmm, reference_loop, relative_error
from dop_tui.scenario import make_scenario

layouts = st.lists(st.integers(1, 9), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    op=st.sampled_from(["shrink", "expand", "fused"]),
    lens=layouts,
    h_in=st.integers(1, 70),
    h_outs=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    rank=st.integers(1, 12),
    dtype=st.sampled_from(["fp16", "bf16", "fp32"]),
    accumulate=st.booleans(),
    inter=st.sampled_from(["fp32", "input"]),
    data=st.data(),
)
def test_loop_equals_gather_bmm(op, lens, h_in, h_outs, rank, dtype, accumulate, inter, data):
    n_adapters = data.draw(st.integers(1, 4))
    adapters = data.draw(st.lists(st.integers(0, n_adapters - 1), min_size=len(lens), max_size=len(lens)))
    s = make_scenario(
        op,
        h_in,
        tuple(h_outs),
        rank,
        dtype,
        lens,
        seg_adapters=adapters,
        num_adapters=n_adapters,
        accumulate=accumulate,
        scale=0.75,
        inter_dtype=inter,
    )
    ops = make_operands(s, seed=data.draw(st.integers(0, 1000)))
    a, b = reference_loop(ops), reference_gather_bmm(ops)
    assert a.dtype == torch.float64 and a.shape == ops.out.shape
    assert relative_error(b, a) < 1e-12


def test_reference_matches_hand_computation():
    s = make_scenario("fused", 3, (2,), 1, "fp32", [1, 2], seg_adapters=[1, 0], num_adapters=2, scale=2.0)
    ops = make_operands(s)
    x, a, b, y = (t.double() for t in (ops.x, ops.a, ops.b, ops.y))
    expect = y.clone()
    for t, w in ((0, 1), (1, 0), (2, 0)):
        expect[t] += 2.0 * b[w] @ (a[w] @ x[t])
    assert relative_error(reference_loop(ops), expect) < 1e-6  # v is rounded to fp32


def test_relative_error_rejects_nan():
    ref = torch.ones(4)
    assert relative_error(torch.tensor([1.0, float("nan"), 1, 1]), ref) == float("inf")
    assert relative_error(ref, ref) == 0.0
