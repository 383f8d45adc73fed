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


def bind_hang(ops, config):
    flag = torch.zeros(1, dtype=torch.int32, device=ops.x.device)
    return lambda: _hang_kernel[(1,)](flag)


def bind_oob(ops, config):
    return lambda: _oob_kernel[(1,)](ops.x, ops.v)


FAULTS = {"shrink/test/hang": bind_hang, "shrink/test/oob": bind_oob}
