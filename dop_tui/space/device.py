"""Device limits the legality rules and the roofline need: a built-in table by name (``device_for_name``);
``measure.calibrate.device_spec`` puts a GPU's measured ceilings over it when `dop calibrate` has run."""

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
    # Datasheet-derived leads (not measured here); copy rates at 90% of the datasheet bandwidth.
    "H100": DeviceSpec("H100", 132, 232448, 65536, 50 * 2**20, 3.35e12 * 0.9, 790e12, "built-in (datasheet)"),
    "A100": DeviceSpec("A100", 108, 166912, 65536, 40 * 2**20, 2.0e12 * 0.9, 312e12, "built-in (datasheet)"),
    "L40S": DeviceSpec("L40S", 142, 101376, 65536, 96 * 2**20, 0.864e12 * 0.9, 362e12, "built-in (datasheet)"),
}
DEFAULT_DEVICE = DEVICES["H200"]  # the project's target: what the interpreter and the AOT compiles stand in for


def unknown_gpu(name: str) -> DeviceSpec:
    """A GPU the table does not know: the smallest figure of every known one (99 KB of shared memory, the least
    of any sm_80+ GPU), so legality never admits a config the GPU cannot run; its ceilings are guesses."""
    known = DEVICES.values()
    return DeviceSpec(
        name, min(d.sms for d in known), min(d.smem_per_block for d in known), min(d.regs_per_sm for d in known),
        min(d.l2_bytes for d in known), min(d.hbm_bytes_per_s for d in known), min(d.bf16_flops for d in known),
        f"unknown GPU {name!r}: the smallest built-in limits (dop calibrate measures its ceilings)",
    )  # fmt: skip


def device_for_name(name: str) -> DeviceSpec:
    """The built-in spec whose name appears in a CUDA device name. No name, or a CPU (the interpreter checks
    code meant for the target), is the project's target, the H200; any other GPU is ``unknown_gpu``."""
    for key, spec in DEVICES.items():
        if key in name.upper():
            return spec
    if not name.strip() or name.upper().startswith("CPU"):
        return DEFAULT_DEVICE
    return unknown_gpu(name)
