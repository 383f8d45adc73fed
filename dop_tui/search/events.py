"""The tuning loop's events: immutable records, the one stream that the workbench and ``--batch`` consume.

A job yields, in order: ``JobStarted``; per round ``RoundStarted``, ``CandidatesProposed`` (one per scenario
the scheduler picked), ``Measured`` (one per scenario, each followed by a ``DeviceProgress`` when the runner
reports per-device work), ``ModelRetrained``, ``NewBest`` (when a scenario's best time drops) and
``RoundDone``; finally ``Finished``. Baselines are measured in round 0, before the search proper. Events hold
plain data only (no live objects), so a consumer may keep them, send them across threads or print them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dop_tui.cost.metrics import ModelMetrics
from dop_tui.measure.record import DeviceLoad, Measurement
from dop_tui.scenario import Scenario
from dop_tui.space import Candidate


@dataclass(frozen=True)
class JobStarted:
    job: dict
    scenarios: tuple[str, ...]  # Scenario keys, in job order
    budget: int  # measurements the search may spend (baselines not counted)
    strategy: str
    runner: str  # "gpu", "replay of <file>", "interpret"
    device: str
    resumed_from_round: int = 0
    specs: tuple[Scenario, ...] = ()  # the scenarios themselves, same order (plain immutable data)


@dataclass(frozen=True)
class RoundStarted:
    round: int
    scenarios: tuple[str, ...]  # the scenarios this round spends measurements on
    budget_used: int


@dataclass(frozen=True)
class CandidatesProposed:
    round: int
    scenario: str
    candidates: tuple[Candidate, ...]  # to be measured this round, best predicted first
    predicted: tuple[float, ...]  # the model's score per candidate (higher is faster), same order
    population: tuple[tuple[str, int], ...] = ()  # sketch id -> members in the evolved population
    population_scores: tuple[float, ...] = ()  # predicted score of every population member


@dataclass(frozen=True)
class Measured:
    round: int
    scenario: str
    measurements: tuple[Measurement, ...]
    predicted: tuple[float | None, ...] = ()  # same order; None for baselines and unscored requests


@dataclass(frozen=True)
class DeviceProgress:
    round: int
    elapsed_s: float  # seconds since this run of the job started (a resumed job's earlier time not included)
    devices: tuple[DeviceLoad, ...]  # one per measuring device, in the runner's order

    def rates(self) -> list[float]:
        """Requests per minute of each device over this run."""
        return [60 * d.measured / self.elapsed_s if self.elapsed_s > 0 else 0.0 for d in self.devices]

    def line(self, label: Callable[[str], str] | None = None) -> str:
        """``gpu0 212/min · gpu1 205/min``; with ``label`` (scenario key -> text) each busy device also names
        the scenario it measures now."""
        parts = []
        for d, rate in zip(self.devices, self.rates(), strict=True):
            now = f" on {label(d.in_flight)}" if label and d.in_flight else (" idle" if label else "")
            parts.append(f"{d.device} {rate:.0f}/min{now}")
        return " · ".join(parts)


@dataclass(frozen=True)
class ModelRetrained:
    round: int
    n_train: int  # timed measurements the model now learns from
    metrics: ModelMetrics | None  # on this round's measurements, before training on them (None: untrained)


@dataclass(frozen=True)
class NewBest:
    round: int
    scenario: str
    measurement: Measurement
    previous_us: float | None


@dataclass(frozen=True)
class RoundDone:
    round: int
    budget_used: int
    elapsed_s: float


@dataclass(frozen=True)
class Finished:
    reason: str  # "budget", "stopped", "exhausted" (nothing left to measure)
    budget_used: int
    elapsed_s: float
    best: tuple[Measurement, ...] = field(default=())  # best per scenario
    notes: tuple[str, ...] = ()  # the runner's lines on how the measuring went (its compile pool)


Event = (
    JobStarted
    | RoundStarted
    | CandidatesProposed
    | Measured
    | DeviceProgress
    | ModelRetrained
    | NewBest
    | RoundDone
    | Finished
)
