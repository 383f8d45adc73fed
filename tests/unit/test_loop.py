"""The tuning loop on a replay of three scenarios of the H200 decode session: events, budget, controls, resume."""

import json
from dataclasses import replace

import numpy as np
import pytest
from doubles import TinyModel
from paths import ROOT

from dop_tui.cost.model import CostModel
from dop_tui.measure.runners import ReplayRunner
from dop_tui.search.events import (
    CandidatesProposed,
    Finished,
    JobStarted,
    Measured,
    ModelRetrained,
    NewBest,
    RoundDone,
    RoundStarted,
)
from dop_tui.search.loop import SearchControls, rounds_in, tune
from dop_tui.session.store import load
from dop_tui.space import BASELINES, SKETCH_BY_ID, SKETCHES, Candidate, sketches_for, why_invalid

SESSION = ROOT / "sessions" / "h200-decode-foundation.json.gz"


@pytest.fixture(scope="module")
def replay():
    sess = load(SESSION)
    keys = sorted(sess.scenarios)
    picks = [next(k for k in keys if k.startswith(op) and "t16" in k) for op in ("shrink", "expand", "fused")]
    scns = [sess.scenarios[k] for k in picks]
    return scns, ReplayRunner(m for m in sess.measurements if m.scenario in picks)


def run(replay, **kw):
    scns, runner = replay
    kw.setdefault("model", TinyModel())
    return list(tune(scns, runner, **{"budget": 96, "seed": 3, **kw}))


def timeless(events):
    """Events with their wall-clock fields zeroed, for comparing runs."""
    return [replace(e, elapsed_s=0.0) if isinstance(e, RoundDone | Finished) else e for e in events]


def rounds_of(events):
    """Split the events between JobStarted and Finished into rounds, checking the documented order."""
    assert isinstance(events[0], JobStarted) and isinstance(events[-1], Finished)
    assert sum(isinstance(e, JobStarted | Finished) for e in events) == 2
    out, cur = [], None
    for e in events[1:-1]:
        if isinstance(e, RoundStarted):
            assert cur is None
            cur = [e]
        else:
            cur.append(e)
            if isinstance(e, RoundDone):
                out.append(cur)
                cur = None
    assert cur is None
    return out


def test_event_order_and_contents(replay):
    scns = replay[0]
    events = run(replay, budget=80, batch_size=8, scenarios_per_round=2)
    start = events[0]
    assert start.scenarios == tuple(s.key for s in scns) and start.budget == 80 and start.strategy == "evolution"
    assert start.runner == "replay" and start.resumed_from_round == 0
    rounds = rounds_of(events)
    base = rounds[0]
    assert base[0].round == 0 and base[0].scenarios == start.scenarios
    assert [type(e) for e in base] == [RoundStarted, Measured, Measured, Measured, RoundDone]
    for e, scn in zip(base[1:4], scns, strict=True):
        assert {m.kernel for m in e.measurements} == {b.id for b in BASELINES if b.op == scn.op}
        assert e.predicted == (None,) * len(e.measurements)
    used = 0
    for i, rnd in enumerate(rounds[1:], start=1):
        head, body = rnd[0], rnd[1:]
        assert head.round == i and head.budget_used == used and 1 <= len(head.scenarios) <= 2
        n = len(head.scenarios)  # every proposal first (the round goes to the runner at once), then the results
        props, measured = body[:n], body[n : 2 * n]
        for key, prop, meas in zip(head.scenarios, props, measured, strict=True):
            assert isinstance(prop, CandidatesProposed) and isinstance(meas, Measured)
            assert prop.scenario == meas.scenario == key and prop.round == meas.round == i
            assert prop.predicted == tuple(sorted(prop.predicted, reverse=True)) == meas.predicted
            assert [Candidate.make(m.kernel, m.config) for m in meas.measurements] == list(prop.candidates)
            used += len(meas.measurements)
        rest = body[2 * len(head.scenarios) :]
        assert isinstance(rest[0], ModelRetrained) and isinstance(rest[-1], RoundDone)
        assert all(isinstance(e, NewBest) for e in rest[1:-1])
        assert rest[-1].budget_used == used
    assert events[-1].reason == "budget" and events[-1].budget_used == used == 80


def test_new_best_and_final_best_follow_the_measurements(replay):
    """Bests compare ``speed_key``: a full timing beats any screening time (the replayed dataset has both); its
    last element is the time."""
    events = run(replay)
    best, news = {}, {}
    for e in events:
        if isinstance(e, Measured):
            for m in e.measurements:
                if (
                    m.kernel in SKETCH_BY_ID
                    and m.status == "ok"
                    and m.speed_key < best.get(m.scenario, (True, True, np.inf))
                ):
                    best[m.scenario] = m.speed_key
        if isinstance(e, NewBest):
            assert e.measurement.speed_key == best[e.scenario]
            assert e.previous_us == (news[e.scenario][-1] if e.scenario in news else None)
            news[e.scenario] = e.measurement.speed_key
    assert news == best and {m.scenario: m.speed_key for m in events[-1].best} == best


def test_budget_respected_and_baselines_free(replay):
    events = run(replay, budget=50, batch_size=8)
    search = [m for e in events if isinstance(e, Measured) and e.round > 0 for m in e.measurements]
    assert all(m.kernel in SKETCH_BY_ID for m in search) and len(search) == 50
    assert all(m.kernel not in SKETCH_BY_ID for e in events if isinstance(e, Measured) and e.round == 0
               for m in e.measurements)  # fmt: skip
    assert events[-1].budget_used == 50 and events[-1].reason == "budget"
    assert max(e.budget_used for e in events if isinstance(e, RoundDone)) == 50


def test_stop_ends_after_the_current_round(replay):
    controls = SearchControls()
    events = []
    for e in tune(replay[0], replay[1], budget=500, seed=1, model=TinyModel(), controls=controls):
        events.append(e)
        if isinstance(e, CandidatesProposed) and e.round == 2:
            controls.stop.set()
    rounds = rounds_of(events)
    assert [r[0].round for r in rounds] == [0, 1, 2] and isinstance(rounds[-1][-1], RoundDone)
    assert events[-1].reason == "stopped" and events[-1].budget_used == rounds[-1][-1].budget_used


@pytest.mark.parametrize(
    "make_model", [TinyModel, lambda: CostModel(seed=3, min_train=16, screening=True)], ids=["double", "xgb"]
)
def test_resume_continues_exactly_like_an_uninterrupted_run(replay, make_model):
    full = timeless(run(replay, model=make_model()))
    controls = SearchControls()
    part = []
    for e in tune(replay[0], replay[1], budget=96, seed=3, model=make_model(), controls=controls):
        part.append(e)
        if isinstance(e, RoundStarted) and e.round == 2:
            controls.stop.set()
    prior = [m for e in part if isinstance(e, Measured) for m in e.measurements]
    assert rounds_in(prior) == 3
    rest = timeless(run(replay, model=make_model(), prior=prior))
    assert rest[0].resumed_from_round == 3 and rest[0].scenarios == full[0].scenarios
    again = {(m.scenario, m.kernel, tuple(sorted(m.config.items()))) for e in rest if isinstance(e, Measured)
             for m in e.measurements}  # fmt: skip
    assert not again & {m.key for m in prior}  # nothing measured twice, baselines included
    cut = next(i for i, e in enumerate(full) if isinstance(e, RoundStarted) and e.round == 3)
    assert rest[1:] == full[cut:]  # the same rounds, proposals, measurements, metrics and bests


def test_retime_baselines_times_every_baseline_again_outside_the_budget(replay):
    scns, _ = replay
    first = run(replay, budget=16)
    prior = [m for e in first if isinstance(e, Measured) for m in e.measurements]

    def baselines(events):
        return [(e.round, m.kernel) for e in events if isinstance(e, Measured) for m in e.measurements
                if m.kernel not in SKETCH_BY_ID]  # fmt: skip

    assert baselines(run(replay, budget=32, prior=prior)) == []  # the prior holds them all
    again = run(replay, budget=32, prior=prior, controls=SearchControls(retime_baselines=True))
    start = rounds_in(prior)
    assert sorted(baselines(again)) == sorted(
        (start, b.id) for s in scns for b in BASELINES if b.op == s.op
    )  # every one, once, in the resumed run's first round
    assert again[-1].budget_used == 32 and again[-1].reason == "budget"  # and not counted


def test_excluded_and_pinned_sketches(replay):
    excluded = SearchControls(excluded={"shrink/splitk/dot", "expand/tile/dot"})
    seen = {m.kernel for e in run(replay, controls=excluded) if isinstance(e, Measured) for m in e.measurements}
    assert not seen & excluded.excluded and "shrink/gemv/fma" in seen
    pinned = SearchControls(pinned={"shrink/gemv/fma", "fused/tile/dot"})
    events = run(replay, controls=pinned)
    by_op: dict[str, set[str]] = {}
    for e in events:
        if isinstance(e, Measured) and e.round > 0:
            for m in e.measurements:
                by_op.setdefault(m.kernel.split("/")[0], set()).add(m.kernel)
    # pins restrict their own op; expand has none pinned and keeps all of its sketches
    assert by_op["shrink"] == {"shrink/gemv/fma"} and by_op["fused"] == {"fused/tile/dot"}
    assert len(by_op["expand"]) > 1
    assert pinned.sketches("expand") == tuple(s.id for s in SKETCHES if s.op == "expand")


def test_toggles_apply_from_the_next_round(replay):
    controls = SearchControls()
    events = []
    for e in tune(replay[0], replay[1], budget=120, seed=2, model=TinyModel(), controls=controls):
        events.append(e)
        if isinstance(e, RoundDone) and e.round == 1:
            assert controls.toggle_pinned("shrink/tile/dot") and controls.toggle_excluded("fused/gemv/fma")
    later = {m.kernel for e in events if isinstance(e, Measured) and e.round >= 2 for m in e.measurements}
    assert "shrink/tile/dot" in later and "fused/gemv/fma" not in later
    assert not {k for k in later if k.startswith("shrink/")} - {"shrink/tile/dot"}
    assert not controls.toggle_pinned("shrink/tile/dot")
    assert controls.sketches("shrink") == tuple(s.id for s in sketches_for("shrink"))  # every one again


def test_exhausted_when_nothing_is_left(replay):
    scns, runner = replay
    only = SearchControls(pinned={"fused/gemv/fma"}, excluded={s.id for s in SKETCHES if s.op != "fused"})
    events = list(tune(scns, runner, budget=10_000, model=TinyModel(), controls=only))
    assert events[-1].reason == "exhausted"
    measured = [m for e in events if isinstance(e, Measured) and e.round > 0 for m in e.measurements]
    valid = {
        c
        for c in runner.candidates(scns[2])
        if c.sketch == "fused/gemv/fma" and not why_invalid(c.sketch, scns[2], c.params)
    }
    assert len(measured) == events[-1].budget_used
    assert {Candidate.make(m.kernel, m.config) for m in measured} == valid and len(valid) == len(measured)


def test_deterministic_for_a_seed(replay):
    assert timeless(run(replay, seed=7)) == timeless(run(replay, seed=7))
    assert timeless(run(replay, seed=7)) != timeless(run(replay, seed=8))


def test_model_free_strategies_and_the_default_model(replay):
    for name in ("random", "grid", "genetic"):
        events = run(replay, strategy=name, budget=40)
        assert events[0].strategy == name and events[-1].budget_used == 40
    events = run(replay, model=None, budget=24)  # the XGBoost model; too few full timings here to train
    retrained = [e for e in events if isinstance(e, ModelRetrained)]
    assert retrained and all(e.metrics is None for e in retrained)


def test_bench_search_cli(tmp_path):
    from typer.testing import CliRunner

    from dop_tui.cli import app

    out = tmp_path / "cmp.md"
    args = ["bench", "search", str(SESSION), "--seeds", "1", "--scenarios", "3", "--budget", "16"]
    res = CliRunner().invoke(app, [*args, "--strategies", "evolution,random", "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [s["strategy"] for s in data["summaries"]] == ["evolution", "random"] and len(data["scenarios"]) == 3
    assert all(0 < f <= 1 for r in data["runs"] for f in r["found"].values())
    assert "| evolution |" in out.read_text() and data["command"] in out.read_text()
    assert CliRunner().invoke(app, [*args, "--strategies", "annealing"]).exit_code == 2


class Reversed:
    """A replay runner that takes a whole round at once and answers its items last first, as a runner with
    several devices may: logs the rounds it is handed."""

    name = "replay"

    def __init__(self, inner: ReplayRunner) -> None:
        self.inner, self.log = inner, []

    def candidates(self, scn):
        return self.inner.candidates(scn)

    def measure(self, scn, requests):
        raise AssertionError("the loop hands whole rounds to a runner that takes them")

    def measure_round(self, items):
        self.log.append([(scn.key, len(reqs)) for scn, reqs in items])
        answers = [(i, self.inner.measure(scn, reqs)) for i, (scn, reqs) in enumerate(items)]
        yield from reversed(answers)


def test_a_round_goes_to_the_runner_at_once_and_comes_back_in_picked_order(replay):
    scns, runner = replay
    whole = Reversed(runner)
    events = list(tune(scns, whole, budget=48, seed=3, model=TinyModel()))
    assert timeless(events) == timeless(run(replay, budget=48))
    assert whole.log[0] == [(s.key, sum(b.op == s.op for b in BASELINES)) for s in scns]  # round 0: baselines
    first = next(e for e in events if isinstance(e, RoundStarted) and e.round == 1)
    assert whole.log[1] == [(k, 8) for k in first.scenarios]


def test_the_runners_notes_end_the_job(replay):
    scns, runner = replay

    class Noted(Reversed):
        def notes(self):
            return ["compile pool (stub)"]

    assert run(replay, budget=16)[-1].notes == ()  # a runner without notes
    assert list(tune(scns, Noted(runner), budget=16, seed=3, model=TinyModel()))[-1].notes == ("compile pool (stub)",)


@pytest.mark.parametrize("strategy", ["evolution", "genetic"])
def test_a_run_does_not_depend_on_pythons_hash_seed(tmp_path, strategy):
    """The same job under two PYTHONHASHSEED values measures the same candidates in the same order (no set or
    dict of strings decides anything)."""
    import os
    import subprocess
    import sys

    sessions = ROOT / "sessions"
    job = tmp_path / "job.toml"
    job.write_text(
        f'ops = ["shrink", "fused"]\nprojections = ["q"]\nbatch_sizes = [8, 32]\nworkloads = ["distinct", "skewed"]\n'
        f'backend = "replay"\nreplay = ["{sessions / "h200-7b-decode.json.gz"}", '
        f'"{sessions / "h200-decode-random.json.gz"}"]\nbudget = 96\nseed = 3\nstrategy = "{strategy}"\n'
    )
    runs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"h{hash_seed}.json.gz"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        cmd = [sys.executable, "-m", "dop_tui.cli", "tune", "--batch", str(job), "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        runs.append([(m.scenario, m.kernel, sorted(m.config.items())) for m in load(out).measurements])
    assert runs[0] == runs[1] and len(runs[0]) > 96
