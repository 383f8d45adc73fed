"""Device limits the legality rules and the roofline need (a built-in table; `dop calibrate` comes later)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    sms: int
    smem_per_block: int  # bytes of shared memory one program may use (opt-in maximum)
    regs_per_sm: int
    l2_bytes: int
    hbm_bytes_per_s: float  # measured device-to-device copy rate, bytes read + written
    bf16_flops: float  # measured dense bf16 matmul rate
    source: str


DEVICES = {
    # Measured on this workplace's H200 (DESIGN.md section 4): 4.3 TB/s copy, 790 TFLOP/s bf16 matmul.
    "H200": DeviceSpec(
        "H200",
        132,
        232448,
        65536,
        60 * 2**20,
        4.3e12,
        790e12,
        "built-in (the project's H200 measurements, not this machine's)",
    ),
    # Datasheet-derived lead for the H100 SXM (not measured here).
    "H100": DeviceSpec("H100", 132, 232448, 65536, 50 * 2**20, 3.35e12 * 0.9, 790e12, "built-in (datasheet)"),
}
DEFAULT_DEVICE = DEVICES["H200"]


def device_for_name(name: str) -> DeviceSpec:
    """The built-in spec whose name appears in a CUDA device name; the H200 when none matches."""
    for key, spec in DEVICES.items():
        if key in name.upper():
            return spec
    return DEFAULT_DEVICE
