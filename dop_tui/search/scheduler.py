"""Which scenarios of a job get the next round's measurements (after Ansor's gradient task scheduler).

The job minimises ``sum_i w_i * log(best_i)``, the (weighted) sum over scenarios of the log of the best time
found: the headline is a geo-mean of per-case speedups, so a 10% drop counts the same on a 3 us case as on a
30 us one. Each round the scheduler ranks scenarios by the expected drop of that sum per batch spent on them:

- warm-up: scenarios with no sketch measurement yet come first, in job order (each gets a first round);
- then ``gain_i = w_i * (alpha * backward_i + (1 - alpha) * forward_i) / best_i`` (to first order, the drop
  of ``w_i * log(best_i)``), largest first, where ``backward_i`` is the recent drop of the best per batch
  (over the last ``window`` batches) and ``forward_i`` the optimistic next drop: the larger of
  ``best_i / (k_i + 1)`` (diminishing returns after ``k_i`` batches) and the gap to ``beta`` times the time
  the scenario would take at the best fraction of its roofline floor reached by a similar scenario (same op,
  shapes, rank, dtype and token count, and a floor within ``floor_tol`` of its own: one adapter's bytes
  (Identical) are no yardstick for many adapters', and a floor fraction carried across them would keep
  the small-floor scenario looking far from its best forever).

A scenario with no correct time yet counts its fastest baseline as its best. The state is a function of the
measurements seen, in order (batches are counted as ``batch_size`` measurements, not as rounds), so a
resumed job that replays its earlier measurements ranks exactly as the uninterrupted one. Ties are broken
by a ``random.Random`` seeded with the seed and the number of measurements: deterministic for a seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dop_tui.measure.record import Measurement
from dop_tui.scenario import Scenario
from dop_tui.space import SKETCH_BY_ID


@dataclass
class _Track:
    curve: list[float] = field(default_factory=list)  # best sketch time after each sketch measurement
    baseline: float = math.inf  # fastest correct baseline time
    floor_us: float | None = None  # the scenario's roofline floor, from its measurements


def similarity_key(scn: Scenario) -> tuple:
    """Scenarios differing only in how the tokens split into segments."""
    return scn.op, scn.h_in, scn.h_outs, scn.rank, scn.dtype, scn.inter_dtype, scn.num_tokens


class Scheduler:
    def __init__(
        self,
        scenarios: Sequence[Scenario],
        *,
        batch_size: int,
        seed: int = 0,
        weights: Mapping[str, float] | None = None,
        alpha: float = 0.2,
        beta: float = 2.0,
        window: int = 3,
        floor_tol: float = 0.1,
    ) -> None:
        self.scenarios = {s.key: s for s in scenarios}
        self.batch_size, self.seed, self.alpha, self.beta, self.window = batch_size, seed, alpha, beta, window
        self.floor_tol = floor_tol
        self.weights = {k: (weights or {}).get(k, 1.0) for k in self.scenarios}
        self._tracks = {k: _Track() for k in self.scenarios}
        groups: dict[tuple, list[str]] = {}
        for k, s in self.scenarios.items():
            groups.setdefault(similarity_key(s), []).append(k)
        self._similar = {k: groups[similarity_key(s)] for k, s in self.scenarios.items()}

    def observe(self, key: str, measurements: Sequence[Measurement]) -> None:
        """Take in a scenario's measurements, in the order they were measured."""
        t = self._tracks[key]
        for m in measurements:
            t.floor_us = t.floor_us or m.floor_us
            timed = m.status == "ok" and m.us is not None
            if m.kernel in SKETCH_BY_ID:
                t.curve.append(min(t.curve[-1] if t.curve else math.inf, m.us if timed else math.inf))
            elif timed:
                t.baseline = min(t.baseline, m.us)

    def spent(self, key: str) -> int:
        """Sketch measurements taken on the scenario."""
        return len(self._tracks[key].curve)

    def best(self, key: str) -> float:
        """The scenario's term of the objective: its best sketch time, else its fastest baseline (inf if none)."""
        t = self._tracks[key]
        return min(t.curve[-1] if t.curve else math.inf, t.baseline)

    def gain(self, key: str) -> float:
        """Expected drop of the weighted objective from the scenario's next batch, relative to the scenario's
        best (inf when nothing is timed)."""
        t, best = self._tracks[key], self.best(key)
        if math.isinf(best):
            return math.inf
        n, b = len(t.curve), self.batch_size
        back = 0.0
        if n:
            j = max(0, n - 1 - self.window * b)  # the best ``window`` batches ago (or after the first measurement)
            if not math.isinf(t.curve[j]):
                back = (t.curve[j] - t.curve[-1]) / max(1.0, (n - 1 - j) / b)
        forward = best / (n / b + 1)
        frac = self._best_similar_fraction(key)
        if frac:
            forward = max(forward, best - self.beta * t.floor_us / frac)
        return self.weights[key] * (self.alpha * back + (1 - self.alpha) * forward) / best

    def _best_similar_fraction(self, key: str) -> float | None:
        own = self._tracks[key].floor_us
        if not own:
            return None
        fracs = [
            f / self.best(k)
            for k in self._similar[key]
            if (f := self._tracks[k].floor_us) and abs(f - own) <= self.floor_tol * own and not math.isinf(self.best(k))
        ]
        return max(fracs, default=None)

    def rank(self) -> list[str]:
        """Every scenario key, the next to tune first: warm-up in job order, then by gain."""
        keys = list(self.scenarios)
        cold = [k for k in keys if not self._tracks[k].curve]
        warm = [k for k in keys if self._tracks[k].curve]
        random.Random(f"{self.seed}/rank/{sum(map(self.spent, keys))}").shuffle(warm)
        return cold + sorted(warm, key=lambda k: -self.gain(k))
