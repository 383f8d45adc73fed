"""What a session says: measurements by status, the best kernel per scenario against the baselines, and the
LoRA delta against the baselines.

Every speedup is a baseline's time over ours on the same scenario; ``vs best`` divides the fastest baseline's
time, the headline figure (a tuner beats what a user runs today only if it beats the best of it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import geometric_mean

from dop_tui.measure.record import STATUSES, Measurement
from dop_tui.scenario import Scenario
from dop_tui.session.store import Session


@dataclass(frozen=True)
class Best:
    scenario: str
    measurement: Measurement
    speedup: dict[str, float]  # baseline name -> baseline time / best time

    @property
    def vs_best(self) -> float | None:
        """The fastest baseline's time over ours (the smallest speedup); None without a timed baseline."""
        return min(self.speedup.values(), default=None)

    def to_json(self) -> dict:
        m = self.measurement
        return {"scenario": self.scenario, "sketch": m.kernel, "config": m.config, "us": m.us,
                "floor_fraction": m.floor_fraction, "speedup": self.speedup, "vs_best": self.vs_best}  # fmt: skip


def status_counts(session: Session) -> dict[str, int]:
    counts = Counter(m.status for m in session.measurements)
    return {s: counts.get(s, 0) for s in STATUSES if s != "unmeasured"}


def best_per_scenario(session: Session, screening_fallback: bool = False) -> list[Best]:
    """Fastest timed sketch measurement per scenario (screening times left out, unless ``screening_fallback``
    and the scenario has no other: a replay of a screened dataset); speedups over the same scenario's timed
    baselines."""
    sketches: dict[str, Measurement] = {}
    for m in session.measurements:
        if m.status != "ok" or m.us is None or "/baseline/" in m.kernel:
            continue
        if m.scenario not in sketches or m.speed_key < sketches[m.scenario].speed_key:
            sketches[m.scenario] = m
    if not screening_fallback:
        sketches = {k: m for k, m in sketches.items() if not m.screening}
    baselines = baseline_times(session)
    return [
        Best(key, m, {n: t / m.us for n, t in sorted(baselines.get(key, {}).items())}) for key, m in sketches.items()
    ]


@dataclass(frozen=True)
class DeltaCase:
    """The whole LoRA delta ``y += scale * (x A^T) B^T`` of one fused scenario: ours is the faster of the best
    fused kernel and the best shrink plus the best expand of the same layout (two launches back to back: graph
    times add up); each baseline's is its own delta, timed as one call on the fused scenario."""

    scenario: Scenario
    ours_us: float
    how: str  # "fused" or "shrink+expand"
    baselines: dict[str, float]  # baseline name -> microseconds
    parts: tuple[str, ...] = ()  # the scenario keys whose best kernels make ours: the fused one, or shrink, expand

    @property
    def speedup(self) -> dict[str, float]:
        return {n: t / self.ours_us for n, t in self.baselines.items()}

    @property
    def vs_best(self) -> float | None:
        return min(self.baselines.values()) / self.ours_us if self.baselines else None

    @property
    def best_baseline(self) -> str:
        return min(self.baselines, key=self.baselines.__getitem__) if self.baselines else ""


def _layout(s: Scenario) -> tuple:
    return s.rank, s.dtype, s.seg_lens, s.seg_adapters


def lora_delta(
    scenarios: Mapping[str, Scenario],
    best_us: Mapping[str, float],
    baseline_us: Mapping[str, Mapping[str, float]],
) -> list[DeltaCase]:
    """The LoRA-delta cases of a job: one per fused scenario with a timed candidate (fused, or a shrink and an
    expand of the same layout: shrink ``h_in`` and projection count, expand ``h_outs``). ``best_us`` maps a
    scenario key to its best sketch time, ``baseline_us`` to its baselines' times."""
    shrinks, expands = {}, {}
    for key, s in scenarios.items():
        if s.op == "shrink":
            shrinks[(s.h_in, s.num_proj, *_layout(s))] = key
        elif s.op == "expand":
            expands[(s.h_outs, *_layout(s))] = key
    cases = []
    for key, s in scenarios.items():
        if s.op != "fused":
            continue
        options = []
        if key in best_us:
            options.append((best_us[key], "fused", (key,)))
        sk, ek = shrinks.get((s.h_in, s.num_proj, *_layout(s))), expands.get((s.h_outs, *_layout(s)))
        if sk in best_us and ek in best_us:
            options.append((best_us[sk] + best_us[ek], "shrink+expand", (sk, ek)))
        if options:
            us, how, parts = min(options)
            cases.append(DeltaCase(s, us, how, dict(baseline_us.get(key, {})), parts))
    return cases


@dataclass(frozen=True)
class Ratios:
    geomean: float
    min: float
    max: float
    n: int

    def __str__(self) -> str:
        return f"{self.geomean:.2f}x (min {self.min:.2f}x, max {self.max:.2f}x, {self.n} cases)"


def ratios(values: Iterable[float]) -> Ratios | None:
    vals = [v for v in values if v and math.isfinite(v)]
    return Ratios(geometric_mean(vals), min(vals), max(vals), len(vals)) if vals else None


def delta_summary(cases: list[DeltaCase]) -> dict[str, Ratios]:
    """Geo-mean, min and max speedup of the LoRA delta over each baseline and over the best baseline per case
    (``"best"``, first), each over the cases that baseline was timed on."""
    names = sorted({n for c in cases for n in c.baselines})
    out = {"best": ratios(c.vs_best for c in cases)}
    out.update({n: ratios(c.speedup.get(n) for c in cases) for n in names})
    return {k: v for k, v in out.items() if v is not None}


def session_delta(session: Session, screening_fallback: bool = False) -> list[DeltaCase]:
    """``lora_delta`` of a session's scenarios, from its best timed measurements and its baselines."""
    best = best_per_scenario(session, screening_fallback=screening_fallback)
    return lora_delta(session.scenarios, {b.scenario: b.measurement.us for b in best}, baseline_times(session))


def baseline_times(session: Session) -> dict[str, dict[str, float]]:
    """Per scenario, the fastest timed (not screened) measurement of each baseline."""
    out: dict[str, dict[str, float]] = {}
    for m in session.measurements:
        if m.status == "ok" and m.us is not None and "/baseline/" in m.kernel and not m.screening:
            cur = out.setdefault(m.scenario, {})
            name = m.kernel.rsplit("/", 1)[1]
            cur[name] = min(cur.get(name, math.inf), m.us)
    return out
