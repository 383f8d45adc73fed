"""Search strategies compared on a recorded session in replay (Kernel Tuner's simulation mode).

For each strategy and seed the tuning loop runs over a set of the session's scenarios with the replay runner
(every search stays inside the recorded candidates) and a budget of ``budget`` measurements per scenario on
average, the scheduler distributing them. Per scenario it records:

- ``to_target``: the scenario's sketch measurements, counted at the end of the batch that brought its best
  within ``tolerance`` (2%) of the best time in its replayable set (valid recorded candidates, as replay
  answers them: the first record of each, a screening time for most); None when never reached;
- ``found``: recorded best / best found at the end of the run (1.0 = the best itself, 0 = nothing timed),
  and ``early``: the same over the scenario's first ``early`` measurements (how good the first rounds are).

Model-guided strategies get the XGBoost cost model trained on every replayed time, screening times included
(they are the ground truth here, consistent within a scenario); model-free strategies never read a model,
so they run with an untrained stand-in (same results, no training time).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dop_tui.cost.model import CostModel
from dop_tui.measure.record import Measurement
from dop_tui.measure.runners import ReplayRunner
from dop_tui.scenario import Scenario
from dop_tui.search.events import Measured
from dop_tui.search.loop import BATCH_SIZE, tune
from dop_tui.search.strategies import Problem, make_strategy
from dop_tui.space import SKETCH_BY_ID, sketches_for

TOLERANCE = 0.02


class Unscored:
    """An untrained stand-in for the cost model, for strategies that never read it."""

    trained = False
    n_train = 0

    def fit(self, data: Iterable[tuple[Scenario, Measurement]]) -> None:
        pass

    def score(self, scn: Scenario, items: Sequence) -> np.ndarray:
        return np.zeros(len(items))


@dataclass(frozen=True)
class Run:
    strategy: str
    seed: int
    to_target: dict[str, int | None]  # scenario -> measurements until within tolerance (None: not reached)
    spent: dict[str, int]  # scenario -> sketch measurements the loop gave it
    found: dict[str, float]  # scenario -> recorded best / best found
    early: dict[str, float]  # scenario -> recorded best / best of its first ``early`` measurements
    seconds: float


@dataclass(frozen=True)
class Summary:
    strategy: str
    to_target_median: float  # over seeds, of the per-seed mean over scenarios (not reached = the cap)
    to_target_mean: float
    not_reached: int  # (scenario, seed) pairs that never came within tolerance
    runs: int  # (scenario, seed) pairs
    early_median: float  # over seeds, of the per-seed mean over scenarios of ``early``
    early_mean: float
    found_median: float  # the same for ``found``
    found_mean: float
    seconds_per_run: float


@dataclass(frozen=True)
class Comparison:
    scenarios: tuple[str, ...]
    targets: dict[str, float]  # scenario -> best time of its replayable set
    budget: int  # per scenario (the job's budget is this times the scenario count)
    early: int
    batch_size: int
    seeds: tuple[int, ...]
    runs: tuple[Run, ...]
    summaries: tuple[Summary, ...]


def pick_scenarios(recorded: Mapping[str, Scenario], k: int | None) -> list[Scenario]:
    """``k`` scenarios spread evenly over the sorted keys of ``recorded`` (all when ``k`` is None or too large)."""
    keys = sorted(recorded)
    if k is not None and 0 < k < len(keys):
        keys = [keys[i * len(keys) // k] for i in range(k)]
    return [recorded[key] for key in keys]


def targets(runner: ReplayRunner, scenarios: Sequence[Scenario]) -> dict[str, float]:
    """Best replayed time of each scenario's valid recorded candidates (what a search can reach)."""
    out = {}
    for scn in scenarios:
        problem = Problem(scn, tuple(s.id for s in sketches_for(scn.op)), {}, frozenset(runner.candidates(scn)))
        pool = [c for s in problem.sketches for c in problem.pool(s)]
        answers = runner.measure(scn, [(c.sketch, c.params) for c in pool])
        times = [m.us for m in answers if m.status == "ok" and m.us is not None]
        if times:
            out[scn.key] = min(times)
    return out


def run_once(
    scenarios: Sequence[Scenario],
    runner: ReplayRunner,
    goal: dict[str, float],
    *,
    strategy: str,
    seed: int,
    budget: int,
    early: int,
    batch_size: int = BATCH_SIZE,
    tolerance: float = TOLERANCE,
) -> Run:
    model = CostModel(seed=seed, screening=True) if make_strategy(strategy).uses_model else Unscored()
    spent = dict.fromkeys(goal, 0)
    best = dict.fromkeys(goal, float("inf"))
    first = dict.fromkeys(goal, float("inf"))
    reached: dict[str, int | None] = dict.fromkeys(goal)
    t0 = time.perf_counter()
    for ev in tune(scenarios, runner, budget=budget * len(scenarios), strategy=strategy, seed=seed,
                   batch_size=batch_size, model=model):  # fmt: skip
        if not isinstance(ev, Measured) or ev.scenario not in goal:
            continue
        for m in ev.measurements:
            if m.kernel in SKETCH_BY_ID:
                spent[ev.scenario] += 1
                if m.status == "ok" and m.us is not None:
                    best[ev.scenario] = min(best[ev.scenario], m.us)
                    if spent[ev.scenario] <= early:
                        first[ev.scenario] = best[ev.scenario]
        if reached[ev.scenario] is None and best[ev.scenario] <= (1 + tolerance) * goal[ev.scenario]:
            reached[ev.scenario] = spent[ev.scenario]
    found = {k: goal[k] / best[k] for k in goal}
    return Run(strategy, seed, reached, spent, found, {k: goal[k] / first[k] for k in goal}, time.perf_counter() - t0)


def summarise(strategy: str, runs: Sequence[Run], budget: int) -> Summary:
    """Per seed, the mean over scenarios; then the median and mean over seeds. A scenario that never came
    within tolerance counts as ``max(budget, its measurements)``."""
    per_seed = [
        statistics.fmean(n if n is not None else max(budget, r.spent[k]) for k, n in r.to_target.items()) for r in runs
    ]
    found = [statistics.fmean(r.found.values()) for r in runs]
    early = [statistics.fmean(r.early.values()) for r in runs]
    return Summary(
        strategy,
        statistics.median(per_seed),
        statistics.fmean(per_seed),
        sum(n is None for r in runs for n in r.to_target.values()),
        sum(len(r.to_target) for r in runs),
        statistics.median(early),
        statistics.fmean(early),
        statistics.median(found),
        statistics.fmean(found),
        statistics.fmean(r.seconds for r in runs),
    )


def compare(
    recorded: Mapping[str, Scenario],
    measurements: Sequence[Measurement],
    *,
    strategies: Sequence[str] = ("evolution", "random", "genetic", "grid"),
    seeds: Sequence[int] = tuple(range(10)),
    budget: int = 64,
    early: int = 16,
    scenarios: int | None = 24,
    batch_size: int = BATCH_SIZE,
    tolerance: float = TOLERANCE,
    progress=None,
) -> Comparison:
    """Run every strategy with every seed on ``scenarios`` of a recorded session (its scenarios by key and its
    measurements in order; None: all of them) in replay.
    ``progress(strategy, seed)`` is called before each run."""
    for s in strategies:
        make_strategy(s)
    runner = ReplayRunner(measurements)
    chosen = pick_scenarios(recorded, scenarios)
    goal = targets(runner, chosen)
    chosen = [s for s in chosen if s.key in goal]
    runs = []
    for strategy in strategies:
        for seed in seeds:
            if progress:
                progress(strategy, seed)
            runs.append(run_once(chosen, runner, goal, strategy=strategy, seed=seed, budget=budget, early=early,
                                 batch_size=batch_size, tolerance=tolerance))  # fmt: skip
    summaries = tuple(summarise(s, [r for r in runs if r.strategy == s], budget) for s in strategies)
    keys = tuple(s.key for s in chosen)
    return Comparison(keys, goal, budget, early, batch_size, tuple(seeds), tuple(runs), summaries)


def to_markdown(cmp: Comparison, command: str, tolerance: float = TOLERANCE) -> str:
    """The comparison as a markdown report: the command, the setting, the table."""
    n = len(cmp.scenarios)
    lines = [
        "# Search strategies in replay",
        "",
        f"Command: `{command}`",
        "",
        f"{n} scenarios, seeds {cmp.seeds[0]}..{cmp.seeds[-1]}, a budget of {cmp.budget} measurements per scenario "
        f"on average ({cmp.budget * n} per run, the scheduler distributing them), batches of {cmp.batch_size}.",
        "",
        f"- to {tolerance:.0%}: a scenario's measurements until its best is within {tolerance:.0%} of the best time "
        "of its replayable set, counted at the end of each batch; not reached counts as the budget, or as the "
        "scenario's measurements when the scheduler gave it more (flagged in 'not reached'). Mean over "
        "scenarios, then median and mean over seeds.",
        f"- found: best replayable time / best found, after the scenario's first {cmp.early} measurements and at "
        "the end of the run (1.000 = the best). Mean over scenarios, then median and mean over seeds.",
        "",
        f"| strategy | to {tolerance:.0%}: median | mean | not reached | found at {cmp.early}: median | mean "
        "| found at budget: median | mean | s per run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in cmp.summaries:
        lines.append(
            f"| {s.strategy} | {s.to_target_median:.1f} | {s.to_target_mean:.1f} | {s.not_reached} of {s.runs} "
            f"| {s.early_median:.3f} | {s.early_mean:.3f} | {s.found_median:.3f} | {s.found_mean:.3f} "
            f"| {s.seconds_per_run:.1f} |"
        )
    ops = sorted({k.split("-", 1)[0] for k in cmp.scenarios})
    lines += ["", f"Mean measurements to {tolerance:.0%} per op (all seeds; not reached as above):", "",
              "| strategy | " + " | ".join(ops) + " |", "|---|" + "---|" * len(ops)]  # fmt: skip
    for s in cmp.summaries:
        runs = [r for r in cmp.runs if r.strategy == s.strategy]
        cells = [
            statistics.fmean(n if n is not None else max(cmp.budget, r.spent[k])
                             for r in runs for k, n in r.to_target.items() if k.startswith(op + "-"))
            for op in ops
        ]  # fmt: skip
        lines.append(f"| {s.strategy} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"
