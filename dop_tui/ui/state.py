"""What the workbench shows, aggregated from the tuning loop's events: plain Python, no Textual.

``Workbench.apply`` folds each event into a few indexes; the ``*_view`` methods answer what one pane
shows for a ``Scope`` (a sketch-tree node and a scenario, either of them "everything"). Nothing here
searches or models: speedups are measured baseline time over measured candidate time, and the roofline
rates come from the measurements' own FLOP and byte counts.

Speedups compare against the *best* baseline of the same scenario, so that numbers from scenarios of
very different sizes can share an axis (geometric means across scenarios).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from dop_tui.measure.record import Measurement
from dop_tui.scenario import Scenario, scenario_label
from dop_tui.search.events import (
    CandidatesProposed,
    DeviceProgress,
    Event,
    Finished,
    JobStarted,
    Measured,
    ModelRetrained,
    NewBest,
    RoundDone,
    RoundStarted,
)
from dop_tui.session.summary import DeltaCase, Ratios, delta_summary, lora_delta

LOG_KINDS = ("job", "round", "best", "model", "error")
PARAM_SHORT = {
    "BLOCK_M": "M",
    "BLOCK_N": "N",
    "BLOCK_K": "K",
    "BLOCK_T": "T",
    "SPLIT_K": "SK",
    "N_SPLIT": "NS",
    "SEGS_PER_PROG": "SPP",
    "USE_DOT": "dot",
    "WEIGHT_HINT": "hint",
    "num_warps": "w",
    "num_stages": "st",
}


def is_baseline(kernel: str) -> bool:
    """Baseline ids read ``<op>/baseline/<name>``."""
    return "/baseline/" in kernel


def under(kernel: str, node: str) -> bool:
    """Whether ``kernel`` is the tree node ``node`` or below it ("" is the root)."""
    return not node or kernel == node or kernel.startswith(node + "/")


def scenario_labels(keys: Iterable[str]) -> dict[str, str]:
    """Labels that keep only what tells ``keys`` apart (a job with one rank and dtype drops both); the op
    always stays. Segments are left out: the workload and the token count fix them."""
    parts = {k: scenario_label(k, short=True).split(" ") for k in keys}
    full = [p for p in parts.values() if len(p) == 5]
    constant = {i for i in range(1, 5) if full and len({p[i] for p in full}) == 1}
    return {k: " ".join(x for i, x in enumerate(p) if len(p) != 5 or i not in constant) for k, p in parts.items()}


def short_config(config: dict[str, int]) -> str:
    """``M16 N128 K16 w4 st3``: parameters by their short names, in a stable order."""
    return " ".join(f"{PARAM_SHORT.get(k, k)}{v}" for k, v in sorted(config.items(), key=lambda kv: _order(kv[0])))


def _order(name: str) -> tuple[int, str]:
    keys = list(PARAM_SHORT)
    return (keys.index(name), name) if name in keys else (len(keys), name)


def geomean(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v > 0]
    return math.exp(sum(map(math.log, vals)) / len(vals)) if vals else None


def timed(m: Measurement) -> bool:
    """A correct measurement with a time: the only kind that counts as fast. Bests compare ``speed_key``: a
    screening time counts only where no full timing exists (the leaderboard's detail line says which method
    timed a row)."""
    return m.status == "ok" and m.us is not None


@dataclass(frozen=True)
class Scope:
    """What the panes are filtered to: a sketch-tree node ("" for all) and a scenario key ("" for all)."""

    node: str = ""
    scenario: str = ""

    def has_scenario(self, key: str) -> bool:
        return not self.scenario or key == self.scenario


@dataclass(frozen=True)
class Prior:
    """What a resumed session holds from before this run (the loop does not yield it again). Its search
    measurements are placed in their rounds by the rounds' cumulative budgets (the session records them in
    the order measured); baselines, and everything of a session without rounds, show as round 0."""

    measurements: tuple[Measurement, ...]
    rounds: tuple[dict, ...]  # the session's per-round records (budget, time, model metrics)


@dataclass(frozen=True)
class Sample:
    round: int
    measurement: Measurement
    predicted: float | None


@dataclass(frozen=True)
class LogEntry:
    kind: str  # one of LOG_KINDS
    text: str


@dataclass(frozen=True)
class NodeStats:
    measured: int
    best_us: float | None  # when the scope is one scenario
    best_speedup: float | None  # geomean over scenarios of best baseline / node's best
    share: float | None  # of the current population (None before any population is known)
    statuses: dict[str, int] = field(default_factory=dict)  # measurements by status, most common first


@dataclass(frozen=True)
class HeaderView:
    job: str
    runner: str
    device: str
    state: str
    round: int
    budget: int
    budget_used: int
    spent_here: int  # measurements this run made (a resumed job's earlier ones aside): the rate's numerator
    scenarios: int
    best_speedup: float | None  # geomean over the scenarios with a result of best baseline / best candidate
    scored: int  # scenarios with both a candidate and a baseline timed: best_speedup's coverage
    delta: Ratios | None  # the LoRA delta against the best baseline per case (fused scenarios)
    delta_cases: int  # fused scenarios of the job: the delta's possible coverage
    devices: str = ""  # per-device rates when several devices measure ("gpu0 212/min · gpu1 205/min")


@dataclass(frozen=True)
class FitnessView:
    rounds: list[int]
    measured_best: list[float]
    measured_median: list[float]
    predicted_rounds: list[int]
    predicted_best: list[float]
    predicted_median: list[float]
    best_so_far: list[float]  # same rounds as ``rounds``
    baselines: dict[str, float]  # baseline name -> geomean of best baseline / that baseline (<= 1)


@dataclass(frozen=True)
class AccuracyPoint:
    round: int
    n_train: int
    n: int
    spearman: float | None
    pairwise: float | None
    topk_recall: float | None
    k: int


@dataclass(frozen=True)
class CostView:
    round: int | None  # the latest round with scored measurements in scope
    predicted: list[float]
    measured: list[float]  # speedup over the scenario's best baseline
    accuracy: list[AccuracyPoint]


@dataclass(frozen=True)
class RooflinePoint:
    intensity: float  # FLOP per byte
    tflops: float


@dataclass(frozen=True)
class RooflineView:
    candidates: list[RooflinePoint]
    baselines: dict[str, list[RooflinePoint]]
    best: list[RooflinePoint]  # the best candidate of each scenario in scope
    launch_caps: list[RooflinePoint]  # per scenario: its FLOPs done in one empty launch's time


@dataclass(frozen=True)
class LeaderRow:
    scenario: str
    kernel: str
    config: dict[str, int]
    us: float
    speedup: dict[str, float]  # baseline name -> baseline time / this time
    floor_fraction: float | None
    round: int
    measurement: Measurement


@dataclass
class Workbench:
    """Everything the panes show, folded from the event stream."""

    job: dict = field(default_factory=dict)
    scenarios: tuple[str, ...] = ()
    specs: dict[str, Scenario] = field(default_factory=dict)  # scenario key -> the scenario (from JobStarted)
    budget: int = 0
    strategy: str = ""
    runner: str = ""
    device: str = ""
    state: str = "idle"  # idle, running, paused, stopping, finished, failed
    finish_reason: str = ""
    round: int = 0
    budget_used: int = 0
    elapsed_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    proposals: list[CandidatesProposed] = field(default_factory=list)
    population: dict[str, dict[str, int]] = field(default_factory=dict)  # scenario -> sketch -> members
    accuracy: list[AccuracyPoint] = field(default_factory=list)
    n_train: int = 0  # timed measurements the cost model learns from, as of the latest round
    used_at_start: int | None = None  # budget spent when this run's first round started
    bests: dict[str, Measurement] = field(default_factory=dict)  # from NewBest
    log: list[LogEntry] = field(default_factory=list)
    _count: dict[str, dict[str, Counter]] = field(default_factory=dict)  # scenario -> kernel -> statuses
    _best: dict[str, dict[str, Sample]] = field(default_factory=dict)  # scenario -> kernel -> fastest timed
    _baseline_names: dict[str, None] = field(default_factory=dict)
    _reference: dict[str, float] = field(default_factory=dict)  # scenario -> best baseline time
    _round_status: Counter = field(default_factory=Counter)  # statuses measured in the round in flight
    devices: DeviceProgress | None = None  # the latest per-device report of a runner with several devices

    # -- folding events --------------------------------------------------------------------------------
    def apply(self, ev: Event | Prior) -> None:
        """Fold one event (or a resumed session's prior) into the indexes and the log."""
        match ev:
            case Prior():
                self._prior(ev)
            case JobStarted():
                self.job, self.scenarios, self.budget = ev.job, ev.scenarios, ev.budget
                self.specs = {scn.key: scn for scn in ev.specs}
                self.strategy, self.runner, self.device = ev.strategy, ev.runner, ev.device
                self.state, self.round = "running", ev.resumed_from_round
                resumed = f", resumed after round {ev.resumed_from_round}" if ev.resumed_from_round else ""
                self.note(
                    "job",
                    f"job {self.job_name}: {len(ev.scenarios)} scenarios, budget {ev.budget}, "
                    f"{ev.strategy} on {ev.runner} ({ev.device}){resumed}",
                )
            case RoundStarted():
                self.round, self.budget_used = ev.round, ev.budget_used
                if self.used_at_start is None:
                    self.used_at_start = ev.budget_used
                self._round_status.clear()
            case CandidatesProposed():
                self.proposals.append(ev)
                if ev.population:
                    self.population[ev.scenario] = dict(ev.population)
            case Measured():
                self._measured(ev)
            case DeviceProgress():
                self.devices = ev if len(ev.devices) > 1 else None
            case ModelRetrained():
                self._retrained(ev)
            case NewBest():
                self.bests[ev.scenario] = ev.measurement
                m = ev.measurement
                was = f" (was {ev.previous_us:.2f} us)" if ev.previous_us is not None else ""
                where = scenario_label(ev.scenario, short=True)
                self.note("best", f"r{ev.round} {where}: {m.us:.2f} us{was} {m.kernel} {short_config(m.config)}")
            case RoundDone():
                self.round, self.budget_used, self.elapsed_s = ev.round, ev.budget_used, ev.elapsed_s
                counts = ", ".join(f"{n} {st.replace('_', ' ')}" for st, n in self._round_status.most_common())
                what = "baselines" if ev.round == 0 else "measured"
                self.note(
                    "round",
                    f"round {ev.round}: {self._round_status.total()} {what} ({counts or 'none'}); "
                    f"{ev.budget_used}/{self.budget} spent at {ev.elapsed_s:.1f} s"
                    + (f"; {self.devices.line()}" if self.devices else ""),
                )
            case Finished():
                self.state, self.finish_reason = "finished", ev.reason
                self.budget_used, self.elapsed_s = ev.budget_used, ev.elapsed_s
                delta = delta_summary(self.delta_cases()).get("best")
                sp = self.best_speedup(Scope())
                geo = f", LoRA delta {delta} over the best baseline" if delta else ""
                geo = geo or (f", geomean {sp:.2f}x over the best baseline" if sp else "")
                self.note("job", f"finished ({ev.reason}): {ev.budget_used} measurements in {ev.elapsed_s:.1f} s{geo}")
                for line in ev.notes:
                    self.note("job", line)

    def note(self, kind: str, text: str) -> None:
        self.log.append(LogEntry(kind, text))

    def _measured(self, ev: Measured, quiet: bool = False) -> None:
        preds = ev.predicted or (None,) * len(ev.measurements)
        for m, p in zip(ev.measurements, preds, strict=False):
            s = Sample(ev.round, m, p)
            self.samples.append(s)
            self._count.setdefault(m.scenario, {}).setdefault(m.kernel, Counter())[m.status] += 1
            if is_baseline(m.kernel):
                self._baseline_names.setdefault(m.kernel.rsplit("/", 1)[1])
            if not quiet:
                self._round_status[m.status] += 1
                if m.status not in ("ok", "unmeasured"):
                    what = f"r{ev.round} {m.status.replace('_', ' ')}: {m.kernel} {short_config(m.config)}"
                    msg = f": {m.message}" if m.message else ""
                    self.note("error", f"{what} on {scenario_label(m.scenario, short=True)}{msg}")
            if timed(m):
                if is_baseline(m.kernel):
                    self._reference[m.scenario] = min(self._reference.get(m.scenario, m.us), m.us)
                best = self._best.setdefault(m.scenario, {})
                if m.kernel not in best or m.speed_key < best[m.kernel].measurement.speed_key:
                    best[m.kernel] = s

    def _prior(self, prior: Prior) -> None:
        ends = sorted((int(r.get("budget_used", 0)), int(r["round"])) for r in prior.rounds if r.get("round"))
        grouped: dict[tuple[int, str], list[Measurement]] = defaultdict(list)
        spent = 0
        for m in prior.measurements:
            rnd = 0
            if not is_baseline(m.kernel):
                spent += 1
                rnd = next((r for used, r in ends if used >= spent), ends[-1][1] if ends else 0)
            grouped[(rnd, m.scenario)].append(m)
        for (rnd, key), ms in sorted(grouped.items(), key=lambda kv: kv[0][0]):
            self._measured(Measured(rnd, key, tuple(ms)), quiet=True)
        if prior.rounds:
            last = prior.rounds[-1]
            self.round = max(self.round, int(last.get("round", 0)))
            self.budget_used = max(self.budget_used, int(last.get("budget_used", 0)))
            self.elapsed_s = max(self.elapsed_s, float(last.get("elapsed_s", 0.0)))
        for r in prior.rounds:
            mm = r.get("metrics")
            if isinstance(mm, dict):
                self.accuracy.append(
                    AccuracyPoint(
                        r["round"],
                        r.get("n_train", 0),
                        mm.get("n", 0),
                        mm.get("spearman"),
                        mm.get("pairwise"),
                        mm.get("topk_recall"),
                        mm.get("k", 10),
                    )
                )
        self.note("job", f"session so far: {len(prior.measurements)} measurements in {len(prior.rounds)} rounds")

    def _retrained(self, ev: ModelRetrained) -> None:
        self.n_train = ev.n_train
        mm = ev.metrics
        if mm is None:
            self.note("model", f"r{ev.round} model trained on {ev.n_train} measurements (no accuracy yet)")
            return
        self.accuracy.append(AccuracyPoint(ev.round, ev.n_train, mm.n, mm.spearman, mm.pairwise, mm.topk_recall, mm.k))
        self.note(
            "model",
            f"r{ev.round} model on {ev.n_train}: Spearman {_fmt(mm.spearman)}, pairwise {_fmt(mm.pairwise)}, "
            f"top-{mm.k} recall {_fmt(mm.topk_recall)} ({mm.n} scored)",
        )

    # -- indexes ---------------------------------------------------------------------------------------
    @property
    def job_name(self) -> str:
        """The job's name; empty before there is a job."""
        return str(self.job.get("name") or "tuning job") if self.job else ""

    @property
    def baseline_names(self) -> list[str]:
        return list(self._baseline_names)

    def baseline_us(self, scenario: str) -> dict[str, float]:
        """Fastest timed measurement of each baseline on ``scenario``."""
        best = self._best.get(scenario, {})
        return {k.rsplit("/", 1)[1]: s.measurement.us for k, s in best.items() if is_baseline(k)}

    def reference_us(self, scenario: str) -> float | None:
        """The best baseline's time on ``scenario``: the 1.0x of every speedup."""
        return self._reference.get(scenario)

    def _scenarios_in(self, scope: Scope) -> list[str]:
        return [scope.scenario] if scope.scenario else list(self.scenarios)

    def _node_best(self, scenario: str, node: str) -> Sample | None:
        best = None
        for kernel, s in self._best.get(scenario, {}).items():
            if is_baseline(kernel) or not under(kernel, node):
                continue
            if best is None or s.measurement.speed_key < best.measurement.speed_key:
                best = s
        return best

    # -- views -----------------------------------------------------------------------------------------
    def best_speedup(self, scope: Scope) -> float | None:
        """Geomean over the scope's scenarios of best baseline time / best candidate time."""
        ratios = []
        for scn in self._scenarios_in(scope):
            ref, best = self.reference_us(scn), self._node_best(scn, scope.node)
            if ref and best:
                ratios.append(ref / best.measurement.us)
        return geomean(ratios)

    def delta_cases(self) -> list[DeltaCase]:
        """The LoRA-delta cases so far (``session.summary.lora_delta`` over the job's best and baselines)."""
        best = {k: b.measurement.us for k in self.specs if (b := self._node_best(k, "")) is not None}
        return lora_delta(self.specs, best, {k: self.baseline_us(k) for k in self.specs})

    def header_view(self) -> HeaderView:
        scored = sum(1 for k in self.scenarios if self.reference_us(k) and self._node_best(k, ""))
        delta = delta_summary(self.delta_cases()).get("best")
        return HeaderView(
            self.job_name,
            self.runner,
            self.device,
            self.state,
            self.round,
            self.budget,
            self.budget_used,
            self.budget_used - (self.used_at_start if self.used_at_start is not None else self.budget_used),
            len(self.scenarios),
            self.best_speedup(Scope()),
            scored,
            delta,
            sum(1 for scn in self.specs.values() if scn.op == "fused"),
            self.devices.line() if self.devices and self.state == "running" else "",
        )

    def node_stats(self, node: str, scenario: str = "") -> NodeStats:
        """How many measurements the node has, its best, and its share of the current population."""
        scope = Scope(node, scenario)
        statuses: Counter = Counter()
        for scn, counts in self._count.items():
            if scope.has_scenario(scn):
                for kernel, c in counts.items():
                    if not is_baseline(kernel) and under(kernel, node):
                        statuses.update(c)
        best_us = None
        if scenario:
            best = self._node_best(scenario, node)
            best_us = best.measurement.us if best else None
        members = total = 0
        for scn, pop in self.population.items():
            if scope.has_scenario(scn):
                total += sum(pop.values())
                members += sum(n for sk, n in pop.items() if under(sk, node))
        share = members / total if total else None
        return NodeStats(statuses.total(), best_us, self.best_speedup(scope), share, dict(statuses.most_common()))

    def fitness_view(self, scope: Scope) -> FitnessView:
        """Per round: best and median measured speedup, best and median predicted score, best so far."""
        by_round: dict[int, list[tuple[str, float]]] = defaultdict(list)
        refs = {scn: self.reference_us(scn) for scn in self._scenarios_in(scope)}
        for s in self.samples:
            m = s.measurement
            ref = refs.get(m.scenario)
            if ref and not is_baseline(m.kernel) and under(m.kernel, scope.node) and timed(m):
                by_round[s.round].append((m.scenario, ref / m.us))
        best_so_far: dict[str, float] = {}
        curve: dict[int, float] = {}
        for r in sorted(by_round):
            for scn, x in by_round[r]:
                best_so_far[scn] = max(best_so_far.get(scn, 0.0), x)
            curve[r] = geomean(best_so_far.values()) or 0.0
        pred: dict[int, list[float]] = defaultdict(list)
        for p in self.proposals:
            if scope.has_scenario(p.scenario):
                pairs = zip(p.candidates, p.predicted, strict=False)
                pred[p.round] += [v for c, v in pairs if under(c.sketch, scope.node)]
        rounds = sorted(by_round)
        prounds = sorted(r for r in pred if pred[r])
        baselines = {}
        for name in self._baseline_names:
            ratios = []
            for scn, ref in refs.items():
                t = self.baseline_us(scn).get(name)
                if ref and t:
                    ratios.append(ref / t)
            if ratios:
                baselines[name] = geomean(ratios) or 0.0
        return FitnessView(
            rounds,
            [max(x for _, x in by_round[r]) for r in rounds],
            [statistics.median(x for _, x in by_round[r]) for r in rounds],
            prounds,
            [max(pred[r]) for r in prounds],
            [statistics.median(pred[r]) for r in prounds],
            [curve[r] for r in rounds],
            baselines,
        )

    def cost_view(self, scope: Scope) -> CostView:
        """Predicted score against measured speedup for the latest scored round in scope, and accuracy."""
        latest: int | None = None
        pairs: list[tuple[float, float]] = []
        for s in reversed(self.samples):
            m = s.measurement
            if latest is not None and s.round != latest:
                break
            if s.predicted is None or not timed(m) or not scope.has_scenario(m.scenario):
                continue
            if not under(m.kernel, scope.node) or not (ref := self.reference_us(m.scenario)):
                continue
            latest = s.round
            pairs.append((s.predicted, ref / m.us))
        return CostView(latest, [p for p, _ in pairs], [q for _, q in pairs], list(self.accuracy))

    def roofline_view(self, scope: Scope, launch_us: float) -> RooflineView:
        """Measured rates (FLOP/B, TFLOP/s) of candidates and baselines, each scenario's best, and the rate
        each scenario would reach if it took exactly one empty launch (``launch_us``)."""
        cands: list[RooflinePoint] = []
        bases: dict[str, list[RooflinePoint]] = defaultdict(list)
        for s in self.samples:
            m = s.measurement
            if not timed(m) or not scope.has_scenario(m.scenario) or not m.flops or not m.bytes:
                continue
            point = RooflinePoint(m.flops / m.bytes, m.tflops or 0.0)
            if is_baseline(m.kernel):
                if not scope.node or m.kernel.startswith(scope.node.split("/")[0] + "/"):
                    bases[m.kernel.rsplit("/", 1)[1]].append(point)
            elif under(m.kernel, scope.node):
                cands.append(point)
        best, caps = [], []
        for scn in self._scenarios_in(scope):
            b = self._node_best(scn, scope.node)
            if b is None or not b.measurement.flops or not b.measurement.bytes:
                continue
            m = b.measurement
            best.append(RooflinePoint(m.flops / m.bytes, m.tflops or 0.0))
            caps.append(RooflinePoint(m.flops / m.bytes, m.flops / (launch_us * 1e6)))
        return RooflineView(cands, dict(bases), best, caps)

    def leaderboard(self, scope: Scope, limit: int = 50) -> list[LeaderRow]:
        """One scenario: its fastest distinct candidates. All scenarios: the best of each, in job order."""
        if scope.scenario:
            seen: dict[tuple, Sample] = {}
            for s in self.samples:
                m = s.measurement
                if m.scenario != scope.scenario or is_baseline(m.kernel) or not under(m.kernel, scope.node):
                    continue
                if timed(m) and (m.key not in seen or m.speed_key < seen[m.key].measurement.speed_key):
                    seen[m.key] = s
            ranked = sorted(seen.values(), key=lambda s: s.measurement.speed_key)[:limit]
        else:
            ranked = [b for scn in self.scenarios if (b := self._node_best(scn, scope.node)) is not None]
        return [self._row(s) for s in ranked]

    def _row(self, s: Sample) -> LeaderRow:
        m = s.measurement
        speedup = {name: t / m.us for name, t in self.baseline_us(m.scenario).items()}
        return LeaderRow(m.scenario, m.kernel, m.config, m.us, speedup, m.floor_fraction, s.round, m)

    def log_entries(self, kind: str = "") -> list[LogEntry]:
        return [e for e in self.log if not kind or e.kind == kind]


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"
