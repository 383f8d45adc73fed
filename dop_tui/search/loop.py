"""The tuning loop: one iterator of immutable events over a family of scenarios sharing one cost model.

``tune`` yields, in order (types in ``dop_tui.search.events``):

- ``JobStarted``;
- round 0, the baselines (``space.BASELINES`` of each scenario's op; they do not count toward the budget):
  ``RoundStarted``, one ``Measured`` per scenario, ``RoundDone``. A resume whose prior holds every baseline
  skips it; one that lacks some measures those in its first round; with ``controls.retime_baselines`` it times
  every baseline again (reports take each baseline's fastest time, so a run on another machine or day is
  compared with baselines timed beside it; such a resume no longer replays the uninterrupted run);
- each search round: ``RoundStarted`` (the scenarios the scheduler picked), one ``CandidatesProposed`` per
  picked scenario (best predicted first), then one ``Measured`` per picked scenario; then ``ModelRetrained``
  (metrics of the
  model on this round's new timed sketch measurements, scored before it trains on them; None while the
  model was untrained), one ``NewBest`` per scenario whose best sketch time dropped, ``RoundDone``;
- ``Finished``: "budget" (the search measurements reached ``budget``; every status counts, the time was
  spent), "stopped" (``controls.stop`` was set; checked between rounds, so the round in flight completes)
  or "exhausted" (no scenario has an unmeasured candidate left in its allowed sketches).

``elapsed_s`` is seconds since this call started, plus ``elapsed_before`` (a resumed job's time so far); it is
reported, never used in a decision. Every decision
comes from ``random.Random`` instances seeded with the seed, the scenario key and the number of sketch
measurements already taken on that scenario, from the scheduler (a function of the measurements in order)
and from the model (retrained from scratch on every timed sketch measurement, in order). So a run is
deterministic for a seed and a runner, and a resume whose ``prior`` is the earlier run's measurements in
the order measured (every completed round) continues exactly as the uninterrupted run would have, as
long as the sketch controls are the same and the model trains and scores deterministically (the XGBoost
model does; untrained, it scores by a hash of seed, scenario and candidate).

A round's requests go to the runner at once (``runners.measure_round``: the GPU and Ray runners spread them
over every device, no barrier per scenario); its ``Measured`` events come in the order the scenarios were
picked, each as soon as it and those before it are complete, so the measurements are taken in the same order
whatever device finished first. A runner that reports per-device work (``runner.loads()``) gets a
``DeviceProgress`` after each ``Measured``. When the runner can only answer for some candidates
(``runner.candidates(scn)``, as the replay runner), each scenario's search stays inside that set. The loop
never draws and never writes files.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from dop_tui.cost.metrics import evaluate
from dop_tui.measure.calibrate import device_spec
from dop_tui.measure.record import Measurement
from dop_tui.scenario import Scenario
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
from dop_tui.search.scheduler import Scheduler
from dop_tui.search.strategies import Problem, Scorer, Strategy, make_strategy
from dop_tui.space import BASELINES, SKETCH_BY_ID, Candidate, sketches_for

if TYPE_CHECKING:
    from dop_tui.measure.runners import Item, Runner

BATCH_SIZE = 8
ROUND_SIZE = 64  # measurements a round aims at (Ansor's num_measures_per_round)


class Model(Protocol):
    """What the loop needs of a cost model (``dop_tui.cost.model.CostModel``)."""

    @property
    def trained(self) -> bool: ...

    @property
    def n_train(self) -> int: ...

    def fit(self, data: Iterable[tuple[Scenario, Measurement]]) -> object: ...

    def score(self, scn: Scenario, items: Sequence[tuple[str, Mapping[str, int]]]) -> np.ndarray: ...


def default_model(seed: int = 0) -> Model:
    from dop_tui.cost.model import CostModel

    return CostModel(seed=seed)


@dataclass
class SearchControls:
    """What the workbench changes while a job runs: ``stop`` (checked between rounds), and the sketch ids
    ``excluded`` and ``pinned`` (read at the start of each round; an op with pinned sketches searches only
    those, other ops are unaffected; excluded ones never). Change the sets through the methods: they hold
    the lock the loop reads under."""

    stop: threading.Event = field(default_factory=threading.Event)
    excluded: set[str] = field(default_factory=set)
    pinned: set[str] = field(default_factory=set)
    only: frozenset[str] = frozenset()  # the job's own sketch list (``sketches`` in its file): an op it names
    # searches only those
    retime_baselines: bool = False  # round 0 times every baseline again, even those the prior holds
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def toggle_excluded(self, sketch_id: str) -> bool:
        """Exclude the sketch, or include it again; True when it is now excluded."""
        return self._toggle(self.excluded, sketch_id)

    def toggle_pinned(self, sketch_id: str) -> bool:
        """Pin the sketch, or unpin it; True when it is now pinned."""
        return self._toggle(self.pinned, sketch_id)

    def _toggle(self, which: set[str], sketch_id: str) -> bool:
        with self._lock:
            which.symmetric_difference_update({sketch_id})
            return sketch_id in which

    def sketches(self, op: str) -> tuple[str, ...]:
        """The op's sketches a round may use now, in tree order."""
        return self.snapshot()(op)

    def snapshot(self) -> Callable[[str], tuple[str, ...]]:
        """The sketches each op may use, as the sets are now (one consistent read)."""
        with self._lock:
            pinned, excluded = frozenset(self.pinned), frozenset(self.excluded)
        only = self.only

        def allowed(op: str) -> tuple[str, ...]:
            ids = [s.id for s in sketches_for(op) if s.id not in excluded]
            if only & {s.id for s in sketches_for(op)}:
                ids = [i for i in ids if i in only]
            pins = [i for i in ids if i in pinned]  # pins restrict their own op only
            return tuple(pins or ids)

        return allowed


class _State:
    """What the job has measured: per scenario the sketch candidates and baselines, the best, the training
    data, the budget spent."""

    def __init__(self, scenarios: Mapping[str, Scenario], scheduler: Scheduler) -> None:
        self.scenarios, self.scheduler = scenarios, scheduler
        self.measured: dict[str, dict[Candidate, Measurement]] = {k: {} for k in scenarios}
        self.baselines: dict[str, set[str]] = {k: set() for k in scenarios}
        self.best: dict[str, Measurement] = {}
        self.train: list[tuple[Scenario, Measurement]] = []
        self.used = 0

    def take(self, key: str, ms: Sequence[Measurement]) -> None:
        scn = self.scenarios[key]
        for m in ms:
            if m.kernel not in SKETCH_BY_ID:
                self.baselines[key].add(m.kernel)
                continue
            self.used += 1
            self.measured[key].setdefault(Candidate.make(m.kernel, m.config), m)
            if m.status == "ok" and m.us is not None:
                self.train.append((scn, m))
                if key not in self.best or m.speed_key < self.best[key].speed_key:
                    self.best[key] = m
        self.scheduler.observe(key, ms)


def rounds_in(prior: Sequence[Measurement]) -> int:
    """Rounds an ordered prior spans, counted the way the loop measures: one scenario's measurements of a
    round are contiguous, each scenario appears once per round, baselines and sketches never share a
    round. A lower bound (a scenario that ends one round and starts the next looks like one batch):
    callers that know the last round should pass ``start_round``."""
    rounds, current, last = 0, set(), None
    for m in prior:
        block = (m.scenario, m.kernel in SKETCH_BY_ID)
        if block != last:
            if last is None or block[1] != last[1] or m.scenario in current:
                rounds, current = rounds + 1, set()
            current.add(m.scenario)
            last = block
    return rounds


def _in_order(runner: Runner, items: Sequence[Item]) -> Iterator[tuple[int, list[Measurement]]]:
    """The round's ``(index, measurements)`` in index order, each as soon as every item up to it is done."""
    from dop_tui.measure.runners import measure_round

    done: dict[int, list[Measurement]] = {}
    nxt = 0
    for i, ms in measure_round(runner, items):
        if len(ms) != len(items[i][1]):
            raise RuntimeError(f"runner {runner.name} answered {len(ms)} of {len(items[i][1])} requests")
        done[i] = ms
        while nxt in done:
            yield nxt, done.pop(nxt)
            nxt += 1


def _progress(runner: Runner, rnd: int, t0: float) -> Iterator[DeviceProgress]:
    loads = getattr(runner, "loads", None)
    if loads is not None:
        yield DeviceProgress(rnd, time.monotonic() - t0, tuple(loads()))


def _scorer(model: Model, scn: Scenario) -> Scorer:
    return lambda cands: [float(x) for x in model.score(scn, [(c.sketch, c.params) for c in cands])] if cands else []


def tune(
    scenarios: Sequence[Scenario],
    runner: Runner,
    *,
    budget: int,
    strategy: str | Strategy = "evolution",
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    model: Model | None = None,
    prior: Iterable[Measurement] = (),
    controls: SearchControls | None = None,
    job: dict | None = None,
    runner_label: str = "",
    device: str = "",
    start_round: int | None = None,
    scenarios_per_round: int | None = None,
    elapsed_before: float = 0.0,
) -> Iterator[Event]:
    """Tune ``scenarios`` with ``runner`` until ``budget`` search measurements are spent (see the module
    docstring for the events and guarantees).

    ``batch_size`` (8): measurements one picked scenario gets per round. ``scenarios_per_round`` (default
    ``64 // batch_size``): scenarios a round picks, so a round measures about 64 candidates between retrains
    whatever the batch (Ansor's ``num_measures_per_round``). Why 8: in replay of the H200 decode session
    (``bench/results/search_compare.md``) evolution comes within 2% of a scenario's best after 12.9, 17.1
    and 24.0 measurements at batches of 4, 8 and 16 (random search: 40.8, 41.3, 46.2); smaller is better
    per measurement, but the GPU runner rebuilds a scenario's operands, float64 reference and rotation pool
    (over 3x L2) on every call, which a batch of 4 pays twice as often, the loop's proposal work per
    measurement doubles, and one random pick would be a quarter of the batch. At 8 the epsilon share is
    one in eight.
    ``prior``: measurements of an earlier run of the same job, in the order measured; never re-measured,
    trained on, counted toward the budget. Rounds continue at ``start_round`` (derived from the prior with
    ``rounds_in`` when not given). ``device`` names the GPU (legality limits, reports).
    """
    strat = make_strategy(strategy) if isinstance(strategy, str) else strategy
    model = default_model(seed) if model is None else model
    controls = controls or SearchControls()
    scns = {s.key: s for s in scenarios}
    per_round = scenarios_per_round or max(1, ROUND_SIZE // batch_size)
    spec = device_spec(device)
    restrict = getattr(runner, "candidates", None)
    allowed = {k: frozenset(restrict(s)) if restrict else None for k, s in scns.items()}
    scheduler = Scheduler(list(scns.values()), batch_size=batch_size, seed=seed)
    state = _State(scns, scheduler)
    prior = [m for m in prior if m.scenario in scns]
    for m in prior:
        state.take(m.scenario, [m])
    if state.train:
        model.fit(state.train)
    rnd = rounds_in(prior) if start_round is None else start_round
    run_t0 = time.monotonic()
    t0 = run_t0 - elapsed_before  # a resumed job's clock goes on
    yield JobStarted(
        dict(job or {}), tuple(scns), budget, strat.name, runner_label or runner.name, device, rnd if prior else 0,
        tuple(scns.values()),
    )  # fmt: skip

    again = controls.retime_baselines
    missing = {k: [b.id for b in BASELINES if b.op == s.op and (again or b.id not in state.baselines[k])]
               for k, s in scns.items()}  # fmt: skip
    missing = {k: ids for k, ids in missing.items() if ids}
    if missing and not controls.stop.is_set():
        yield RoundStarted(rnd, tuple(missing), state.used)
        keys = list(missing)
        for i, ms in _in_order(runner, [(scns[k], [(b, {}) for b in missing[k]]) for k in keys]):
            state.take(keys[i], ms)
            yield Measured(rnd, keys[i], tuple(ms), (None,) * len(ms))
            yield from _progress(runner, rnd, run_t0)
        yield RoundDone(rnd, state.used, time.monotonic() - t0)
        rnd += 1

    reason = ""
    while not reason:
        if controls.stop.is_set():
            reason = "stopped"
            break
        if state.used >= budget:
            reason = "budget"
            break
        by_model, sketches = model.trained, controls.snapshot()
        picked = []
        remaining = budget - state.used
        for key in scheduler.rank():
            if len(picked) == per_round or remaining <= 0:
                break
            scn, spent = scns[key], scheduler.spent(key)
            problem = Problem(scn, sketches(scn.op), state.measured[key], allowed[key], spec)
            score = _scorer(model, scn)
            prop = strat.propose(problem, min(batch_size, remaining), random.Random(f"{seed}/{key}/{spent}"), score)
            if not prop.candidates:
                continue
            predicted = prop.predicted or tuple(score(prop.candidates))
            order = sorted(range(len(predicted)), key=lambda i: -predicted[i])
            cands = tuple(prop.candidates[i] for i in order)
            picked.append(CandidatesProposed(rnd, key, cands, tuple(predicted[i] for i in order),
                                             prop.population, prop.population_scores))  # fmt: skip
            remaining -= len(cands)
        if not picked:
            reason = "exhausted"
            break

        yield RoundStarted(rnd, tuple(p.scenario for p in picked), state.used)
        before = {p.scenario: state.best.get(p.scenario) for p in picked}
        fresh: list[tuple[float, float, str]] = []  # (predicted, us, scenario) of new timed measurements
        yield from picked
        items = [(scns[p.scenario], [(c.sketch, c.params) for c in p.candidates]) for p in picked]
        for i, ms in _in_order(runner, items):
            prop = picked[i]
            state.take(prop.scenario, ms)
            yield Measured(rnd, prop.scenario, tuple(ms), prop.predicted)
            yield from _progress(runner, rnd, run_t0)
            timed = [(p, m) for p, m in zip(prop.predicted, ms, strict=True) if m.status == "ok" and m.us is not None]
            fresh += [(p, m.us, m.scenario) for p, m in timed]
        metrics = None
        if by_model and fresh:
            scores, us, groups = zip(*fresh, strict=True)
            metrics = evaluate(list(scores), list(us), list(groups), k=max(1, batch_size // 4))
        if fresh:
            model.fit(state.train)
        yield ModelRetrained(rnd, model.n_train, metrics)
        for key, prev in before.items():
            if state.best.get(key) is not prev:
                yield NewBest(rnd, key, state.best[key], prev.us if prev else None)
        yield RoundDone(rnd, state.used, time.monotonic() - t0)
        rnd += 1
    best = tuple(state.best[k] for k in scns if k in state.best)
    notes = tuple(runner.notes()) if hasattr(runner, "notes") else ()
    yield Finished(reason, state.used, time.monotonic() - t0, best, notes)
