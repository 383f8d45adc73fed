"""Test-only kernels that misbehave on purpose on a GPU: one never returns, one reads far out of bounds."""

import torch
import triton
import triton.language as tl


@triton.jit
def _hang_kernel(flag_ptr):
    v = tl.load(flag_ptr)
    while v == 0:  # the flag is zero and nothing writes it: spins until the worker is killed
        v = tl.load(flag_ptr, volatile=True)


@triton.jit
def _oob_kernel(x_ptr, out_ptr):
    tl.store(out_ptr, tl.load(x_ptr + (1 << 40)))  # 1 TiB past the tensor: an illegal address


def bind_hang(x, a, v, *_: object, **__: object):
    """A shrink launcher's signature (``x, a, v, seg_indptr, weight_indices, **options``)."""
    flag = torch.zeros(1, dtype=torch.int32, device=x.device)
    return lambda: _hang_kernel[(1,)](flag)


def bind_oob(x, a, v, *_: object, **__: object):
    return lambda: _oob_kernel[(1,)](x, v)


FAULTS = {"shrink/test/hang": bind_hang, "shrink/test/oob": bind_oob}
