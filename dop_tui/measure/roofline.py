"""Roofline of an SGMV scenario: FLOPs, the fewest bytes it must move, and the floor time on a device.

For T tokens, n distinct adapters, element size b, intermediate size b_v, rank r, P projections
(R = P*r columns of v, H = sum of h_out):

- shrink: FLOPs ``2*T*h_in*R``; bytes ``b*(T*h_in + n*R*h_in) + b_v*c*T*R``;
- expand: FLOPs ``2*T*R*H / P`` (each output column uses its projection's r); bytes
  ``b_v*T*R + b*(n*H*r + c*T*H)``;
- fused: FLOPs of both; bytes ``b*(T*h_in + n*R*h_in + n*H*r + c*T*H)`` (no intermediate round trip);

with ``c = 2`` when the op accumulates (the output is read and written) and 1 otherwise. The floor is the
larger of bytes / bandwidth and FLOPs / matmul rate (DESIGN.md section 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from dop_tui.scenario import Scenario
from dop_tui.space.device import DeviceSpec


@dataclass(frozen=True)
class Roofline:
    flops: float
    bytes: float
    floor_s: float
    memory_bound: bool

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes


def roofline(scn: Scenario, device: DeviceSpec) -> Roofline:
    T, n, b, bv = scn.num_tokens, scn.distinct_adapters, scn.elem_bytes, scn.inter_bytes
    h, R, H, r = scn.h_in, scn.total_rank, scn.total_h_out, scn.rank
    c = 2 if scn.accumulate else 1
    shrink_flops, expand_flops = 2 * T * h * R, 2 * T * H * r
    if scn.op == "shrink":
        flops, nbytes = shrink_flops, b * (T * h + n * R * h) + bv * c * T * R
    elif scn.op == "expand":
        flops, nbytes = expand_flops, bv * T * R + b * (n * H * r + c * T * H)
    else:
        flops, nbytes = shrink_flops + expand_flops, b * (T * h + n * R * h + n * H * r + c * T * H)
    t_mem, t_math = nbytes / device.hbm_bytes_per_s, flops / device.bf16_flops
    return Roofline(float(flops), float(nbytes), max(t_mem, t_math), t_mem >= t_math)
