"""One measurement of one candidate (or baseline) on one scenario: plain data, JSON in and out.

``status`` is one of ``STATUSES``: ``ok`` (correct, and timed when a time is present), ``wrong`` (failed
the correctness gate: never counts as fast), ``invalid`` (the space rejects the config), ``compile_error``,
``launch_error``, ``timeout``, ``crash``, or ``unmeasured`` (a replay has no record of it). Derived rates
use the scenario's roofline: achieved bandwidth = fewest bytes / time, FLOP rate = FLOPs / time, and
fraction of floor = floor time / time (1.0 would be at the roofline). ``screening`` marks a quick ranking time
(fewer calls, inputs possibly in L2): summaries leave it out of "best" figures. ``short`` marks the short graph
of a candidate whose probe was slower than its scenario's bar (a best only where nothing else was timed: a probe
slowed by a stall once gave a 2.4 us expand a short graph that read 2% faster than its full ones);
``do_bench_us`` is the launch-inclusive time with L2 flushed, when it was taken. Records written before these
fields existed carry them in their text (a method starting ``screen:`` or containing ``, short``, a message
quoting do_bench): ``from_json`` reads them from there.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("ok", "wrong", "invalid", "compile_error", "launch_error", "timeout", "crash", "unmeasured")


SHORT_MARK = ", short"  # in the method of a short-graph timing (``timing.time_graph``)


@dataclass(frozen=True)
class Measurement:
    scenario: str  # Scenario.key
    kernel: str  # sketch id or baseline id
    config: dict[str, int]
    status: str
    us: float | None = None  # median microseconds per call
    us_min: float | None = None
    us_max: float | None = None
    method: str = ""  # how the time was taken ("cuda-graph x100 / 43 copies", "do_bench, L2 flushed", ...)
    rel_error: float | None = None
    message: str = ""
    bytes: float | None = None  # fewest bytes the scenario must move
    flops: float | None = None
    floor_us: float | None = None
    env: dict[str, str] = field(default_factory=dict)  # device, versions, clocks where readable
    short: bool = False
    screening: bool = False
    do_bench_us: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown measurement status {self.status!r}; expected one of {', '.join(STATUSES)}")

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, int], ...]]:
        return self.scenario, self.kernel, tuple(sorted(self.config.items()))

    @property
    def speed_key(self) -> tuple[bool, float]:
        """What "faster" compares, everywhere a best is picked: a full timing before a short graph's (fewer input
        copies, which can sit in L2 and flatter it) before any screening time, then the time (no time: last)."""
        return self.screening, self.short, self.us if self.us is not None else math.inf

    @property
    def gbps(self) -> float | None:
        return self.bytes / (self.us * 1e3) if self.us and self.bytes is not None else None

    @property
    def tflops(self) -> float | None:
        return self.flops / (self.us * 1e6) if self.us and self.flops is not None else None

    @property
    def floor_fraction(self) -> float | None:
        return self.floor_us / self.us if self.us and self.floor_us is not None else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Any) -> Measurement:
        """Validate every field (``ValueError`` naming it): strings, an integer config, a known status, times and
        counts that are finite non-negative numbers or absent, string-valued env."""
        if not isinstance(d, dict):
            raise ValueError(f"a measurement must be an object, got {type(d).__name__}")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown measurement fields: {', '.join(sorted(unknown))}")
        for name in ("scenario", "kernel", "status"):
            if not isinstance(d.get(name), str):
                raise ValueError(f"measurement field {name!r} must be a string, got {d.get(name)!r}")
        for name in ("method", "message"):
            if not isinstance(d.get(name, ""), str):
                raise ValueError(f"measurement field {name!r} must be a string, got {d[name]!r}")
        config = d.get("config", {})
        if not isinstance(config, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in config.items()
        ):
            raise ValueError(f"measurement field 'config' must map names to integers, got {config!r}")
        for name in ("short", "screening"):
            if not isinstance(d.get(name, False), bool):
                raise ValueError(f"measurement field {name!r} must be true or false, got {d[name]!r}")
        for name in ("us", "us_min", "us_max", "rel_error", "bytes", "flops", "floor_us", "do_bench_us"):
            v = d.get(name)
            if v is not None and not (isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < math.inf):
                raise ValueError(f"measurement field {name!r} must be a finite number >= 0 or null, got {v!r}")
        env = d.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ValueError(f"measurement field 'env' must map names to strings, got {env!r}")
        return cls(**(d if _FLAGS & d.keys() else {**_from_text(d), **d}))


@dataclass(frozen=True)
class DeviceLoad:
    """What one measuring device (a GPU of this host, or ``host/gpu`` of a Ray node) has done in this job."""

    device: str  # "gpu0" (the CUDA index this process sees), "node-ip/gpu0" for a Ray worker
    measured: int  # requests answered
    busy_s: float  # seconds it held a request (checking, timing, waiting on its JIT)
    in_flight: str = ""  # scenario key of the request it holds now, "" when idle


_DO_BENCH = re.compile(r"do_bench \(L2 flushed, launch included\): ([0-9.]+) us")


_FLAGS = frozenset({"short", "screening", "do_bench_us"})


def _from_text(d: dict[str, Any]) -> dict[str, Any]:
    """The flags an older record (one with none of ``_FLAGS``) carries only in its method and message."""
    method, found = d.get("method", ""), _DO_BENCH.search(d.get("message", ""))
    return {"short": SHORT_MARK in method, "screening": method.startswith("screen:"),
            "do_bench_us": float(found.group(1)) if found else None}  # fmt: skip
