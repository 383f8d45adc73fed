"""Device ceilings, measured once per device and cached; the built-in table is the labelled fallback.

``measure_ceilings`` (GPU) times three things with CUDA events:

- HBM bandwidth: a device-to-device copy of ``copy_bytes``, counting bytes read plus bytes written;
- bf16 matmul rate: an n x n x n product on random data (``2 n^3`` FLOPs);
- launch floor: an empty Triton kernel launched ``launches`` times inside one CUDA graph, per launch.

Results are cached in ``$DOP_TUI_CACHE`` (default ``~/.cache/dop-tui``) as ``devices.json``, keyed by the
CUDA device name. ``device_spec(name)`` returns the cached measured spec, else the built-in one, and says
which (``DeviceSpec.source``).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from dop_tui.space.device import DeviceSpec, device_for_name


def cache_path() -> Path:
    return Path(os.environ.get("DOP_TUI_CACHE", Path.home() / ".cache" / "dop-tui")) / "devices.json"


def _read_cache() -> dict[str, dict]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def save_spec(device_name: str, spec: DeviceSpec, launch_us: float) -> None:
    """Store a measured spec (and the launch floor) for ``device_name``; other devices' entries are kept."""
    data = _read_cache()
    data[device_name] = {**asdict(spec), "launch_us": launch_us}
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def device_spec(device_name: str) -> DeviceSpec:
    """The measured spec of ``device_name`` when calibrated, else the built-in entry (labelled as such)."""
    entry = _read_cache().get(device_name)
    if entry:
        fields = {k: entry[k] for k in DeviceSpec.__dataclass_fields__ if k in entry}
        try:
            return DeviceSpec(**fields)
        except TypeError:
            pass  # an incomplete entry falls back to the table
    return device_for_name(device_name)


def launch_floor_us(device_name: str) -> float | None:
    entry = _read_cache().get(device_name)
    return float(entry["launch_us"]) if entry and "launch_us" in entry else None


def _timed(fn: Callable[[], object], reps: int) -> float:
    """Median seconds of ``fn`` on the current stream, by CUDA events, after one warm-up call."""
    import torch

    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e-3)
    return statistics.median(times)


def _copy_bandwidth(copy_bytes: int) -> float:
    import torch

    src = torch.empty(copy_bytes // 2, dtype=torch.bfloat16, device="cuda").normal_()
    dst = torch.empty_like(src)
    return 2 * copy_bytes / _timed(lambda: dst.copy_(src), 10)


def _matmul_rate(n: int) -> float:
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    return 2 * n**3 / _timed(lambda: a @ b, 10)


def _launch_floor_us(launches: int) -> float:
    import torch
    import triton

    @triton.jit
    def _empty_kernel(x_ptr):
        pass

    x = torch.empty(1, device="cuda")
    _empty_kernel[(1,)](x)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(launches):
            _empty_kernel[(1,)](x)
    return _timed(graph.replay, 5) / launches * 1e6


def measure_ceilings(copy_bytes: int = 2 << 30, n: int = 8192, launches: int = 1000) -> tuple[DeviceSpec, float]:
    """Measure bandwidth, bf16 matmul rate and launch floor on the current CUDA device (GPU only)."""
    import torch

    bandwidth, flops, launch_us = _copy_bandwidth(copy_bytes), _matmul_rate(n), _launch_floor_us(launches)
    props = torch.cuda.get_device_properties(0)
    base = device_for_name(props.name)
    spec = replace(
        base, name=props.name, sms=props.multi_processor_count, hbm_bytes_per_s=bandwidth, bf16_flops=flops,
        l2_bytes=getattr(props, "L2_cache_size", base.l2_bytes),
        smem_per_block=getattr(props, "shared_memory_per_block_optin", base.smem_per_block),
        source="measured by dop calibrate",
    )  # fmt: skip
    return spec, launch_us
