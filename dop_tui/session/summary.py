"""What a session says: measurements by status, and the best kernel per scenario against the baselines."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from dop_tui.measure.record import STATUSES, Measurement
from dop_tui.session.store import Session


@dataclass(frozen=True)
class Best:
    scenario: str
    measurement: Measurement
    speedup: dict[str, float]  # baseline name -> baseline time / best time

    def to_json(self) -> dict:
        m = self.measurement
        return {"scenario": self.scenario, "sketch": m.kernel, "config": m.config, "us": m.us,
                "floor_fraction": m.floor_fraction, "speedup": self.speedup}  # fmt: skip


def status_counts(session: Session) -> dict[str, int]:
    counts = Counter(m.status for m in session.measurements)
    return {s: counts.get(s, 0) for s in STATUSES if s != "unmeasured"}


def best_per_scenario(session: Session, screening_fallback: bool = False) -> list[Best]:
    """Fastest timed sketch measurement per scenario (screening times left out, unless ``screening_fallback``
    and the scenario has no other: a replay of a screened dataset); speedups over the same scenario's timed
    baselines."""
    sketches: dict[str, Measurement] = {}
    screened: dict[str, Measurement] = {}
    baselines: dict[str, dict[str, float]] = {}
    for m in session.measurements:
        if m.status != "ok" or m.us is None:
            continue
        if m.is_screening:
            if "/baseline/" not in m.kernel and (m.scenario not in screened or m.us < screened[m.scenario].us):
                screened[m.scenario] = m
        elif "/baseline/" in m.kernel:
            name = m.kernel.rsplit("/", 1)[1]
            cur = baselines.setdefault(m.scenario, {})
            cur[name] = min(cur.get(name, float("inf")), m.us)
        elif m.scenario not in sketches or m.us < sketches[m.scenario].us:
            sketches[m.scenario] = m
    if screening_fallback:
        sketches = {**screened, **sketches}
    return [
        Best(key, m, {n: t / m.us for n, t in sorted(baselines.get(key, {}).items())}) for key, m in sketches.items()
    ]
