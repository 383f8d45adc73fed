"""Every bad-input error of the operator API names its problem."""

import pytest
import torch

from dop_tui.operands import Operands, check_segments, make_operands, torch_dtype
from dop_tui.scenario import make_scenario


def _ops():
    return make_operands(make_scenario("fused", 64, (32, 48), 8, "fp16", [2, 1, 3], num_adapters=4))


def _replace(ops, **kw):
    fields = {k: getattr(ops, k) for k in Operands.__dataclass_fields__}
    fields.update(kw)
    return Operands(**fields)


def test_valid_operands_build():
    ops = _ops()
    assert ops.out is ops.y and ops.proj_offsets.tolist() == [0, 32, 80]


@pytest.mark.parametrize(
    ("indptr", "msg"),
    [
        ([0, 2, 2, 6], "non-monotone"),
        ([0, 3, 1, 6], "non-monotone"),
        ([1, 2, 3, 6], "out of range"),
        ([0, 2, 3, 7], "out of range"),
    ],
)
def test_bad_segment_offsets(indptr, msg):
    with pytest.raises(ValueError, match=msg):
        check_segments(indptr, [0, 1, 2], 6, 4)
    ops = _ops()
    with pytest.raises(ValueError, match=msg):
        _replace(ops, seg_indptr=torch.tensor(indptr, dtype=torch.int32))


def test_adapter_index_out_of_range():
    with pytest.raises(ValueError, match="adapter index out of range"):
        _replace(_ops(), weight_indices=torch.tensor([0, 4, 1], dtype=torch.int32))


def test_mismatched_shapes_and_dtypes():
    ops = _ops()
    with pytest.raises(ValueError, match="shape mismatch: x"):
        _replace(ops, x=ops.x[:, :32].contiguous())
    with pytest.raises(ValueError, match="shape mismatch: b"):
        _replace(ops, b=ops.b[:, :, :4].contiguous())
    with pytest.raises(ValueError, match="dtype mismatch: a"):
        _replace(ops, a=ops.a.to(torch.bfloat16))
    with pytest.raises(ValueError, match="dtype mismatch: seg_indptr"):
        _replace(ops, seg_indptr=ops.seg_indptr.long())


def test_non_contiguous_input():
    ops = _ops()
    x_t = torch.empty(64, 6, dtype=torch.float16).t()
    with pytest.raises(ValueError, match="x must be contiguous"):
        _replace(ops, x=x_t)


def test_unsupported_dtype_and_empty_batch():
    with pytest.raises(ValueError, match="unsupported dtype"):
        torch_dtype("int8")
    with pytest.raises(ValueError, match="empty batch"):
        check_segments([0], [], 0, 1)


def test_projection_offsets_must_match():
    with pytest.raises(ValueError, match="proj_offsets"):
        _replace(_ops(), proj_offsets=torch.tensor([0, 40, 80], dtype=torch.int32))
