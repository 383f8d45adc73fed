"""Search strategies and the scenario scheduler: legality, novelty, restricted sets, order, determinism."""

import random
import zlib

import pytest

from dop_tui.measure.record import Measurement
from dop_tui.scenario import make_scenario
from dop_tui.search.scheduler import Scheduler
from dop_tui.search.strategies import STRATEGIES, Evolution, Problem, make_strategy, mix, step, switch
from dop_tui.space import Candidate, enumerate_valid, get_sketch, sketches_for, why_invalid

SHRINK = make_scenario("shrink", 4096, 4096, 16, "bf16", [1] * 8, workload="distinct")
EXPAND = make_scenario("expand", 16, 4096, 16, "bf16", [3, 3, 2], workload="uniform")


def fake_us(c: Candidate) -> float:
    """A deterministic 'time' per candidate, so strategies that read times have something to follow."""
    return 1.0 + zlib.crc32(str(c).encode()) / 2**28


def rounds(strategy, problem: Problem, n: int, k: int, seed: int = 0, score=None) -> list[tuple[Candidate, ...]]:
    """Propose ``k`` batches of ``n``, 'measuring' each before the next, as the loop does."""
    score = score or (lambda cands: [0.0] * len(cands))
    measured = dict(problem.measured)
    out = []
    for i in range(k):
        p = Problem(problem.scn, problem.sketches, measured, problem.allowed)
        batch = strategy.propose(p, n, random.Random(f"{seed}/{i}"), score).candidates
        out.append(batch)
        for c in batch:
            measured[c] = Measurement(problem.scn.key, c.sketch, c.params, "ok", us=fake_us(c))
    return out


def problem(scn, measured=(), allowed=None, sketches=None) -> Problem:
    ids = sketches or tuple(s.id for s in sketches_for(scn.op))
    ms = {c: Measurement(scn.key, c.sketch, c.params, status, us=fake_us(c) if status == "ok" else None)
          for c, status in measured}  # fmt: skip
    return Problem(scn, ids, ms, allowed)


def some_measured(scn, k=12, seed=1):
    rng = random.Random(seed)
    cands = [c for s in sketches_for(scn.op) for c in rng.sample(enumerate_valid(s.id, scn), 4)][:k]
    return [(c, ("ok", "wrong", "compile_error")[i % 3]) for i, c in enumerate(cands)]


@pytest.mark.parametrize("name", list(STRATEGIES))
@pytest.mark.parametrize("scn", [SHRINK, EXPAND], ids=["shrink", "expand"])
def test_proposals_are_valid_new_and_distinct(name, scn):
    prior = some_measured(scn)
    batches = rounds(make_strategy(name), problem(scn, prior), 8, 4)
    flat = [c for b in batches for c in b]
    assert len(flat) == 32
    assert len(set(flat)) == len(flat)  # never twice, in a batch or across batches
    assert not set(flat) & {c for c, _ in prior}  # never anything measured before, of any status
    assert all(not why_invalid(c.sketch, scn, c.params) for c in flat)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_restricted_set_is_honoured_until_exhausted(name):
    rng = random.Random(3)
    allowed = frozenset(c for s in sketches_for("expand") for c in rng.sample(enumerate_valid(s.id, EXPAND), 10))
    batches = rounds(make_strategy(name), problem(EXPAND, allowed=allowed), len(allowed) // 8 + 2, 8)
    flat = [c for b in batches for c in b]
    assert set(flat) <= allowed and len(set(flat)) == len(flat)
    assert len(flat) == len(allowed) and batches[-1] == ()  # everything proposed once, then nothing


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_allowed_sketches_only(name):
    only = ("shrink/splitk/dot",)
    batches = rounds(make_strategy(name), problem(SHRINK, some_measured(SHRINK), sketches=only), 8, 3)
    assert {c.sketch for b in batches for c in b} == set(only)


def test_grid_is_exhaustive_and_ordered():
    ids = ("expand/gemv/fma", "expand/tile/dot")
    order = [c for s in ids for c in enumerate_valid(s, EXPAND)]
    batches = rounds(make_strategy("grid"), problem(EXPAND, sketches=ids), 50, len(order) // 50 + 2)
    assert [c for b in batches for c in b] == order


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_deterministic_per_seed(name):
    p = problem(SHRINK, some_measured(SHRINK))
    assert rounds(make_strategy(name), p, 8, 3, seed=5) == rounds(make_strategy(name), p, 8, 3, seed=5)
    if name != "grid":
        assert rounds(make_strategy(name), p, 8, 3, seed=5) != rounds(make_strategy(name), p, 8, 3, seed=6)


def test_evolution_follows_the_model_and_keeps_an_epsilon_share():
    rng = random.Random(0)
    # a recorded set small enough that the evolved population reaches its 7 best (three sketches of 30)
    families = [get_sketch(k) for k in ("expand/tile/dot", "expand/gemv/fma", "expand/walk/segments")]
    allowed = frozenset(c for s in families for c in rng.sample(enumerate_valid(s.id, EXPAND), 30))
    ranked = sorted(allowed, key=fake_us)  # the 'model' knows the fake times exactly

    def score(cands):
        return [-fake_us(c) for c in cands]

    prop = Evolution().propose(problem(EXPAND, allowed=allowed), 8, random.Random(1), score)
    assert prop.predicted == tuple(sorted(prop.predicted, reverse=True))
    assert sum(c in ranked[:7] for c in prop.candidates) == 7  # 7 exploit, 1 of 8 random
    assert sum(n for _, n in prop.population) == len(prop.population_scores) > 8


def test_scheduler_warms_up_then_favours_the_larger_expected_gain():
    a, b, c = (make_scenario("shrink", 4096, 4096, 16, "bf16", [1] * n, workload="distinct") for n in (2, 4, 8))
    sched = Scheduler([a, b, c], batch_size=4, seed=0)

    def observe(scn, times):
        sched.observe(scn.key, [Measurement(scn.key, "shrink/tile/dot", {}, "ok", us=t) for t in times])

    assert sched.rank() == [a.key, b.key, c.key]  # warm-up in job order
    observe(a, [20] * 4)
    observe(c, [12] * 8)
    assert sched.rank()[0] == b.key  # b has had no round yet
    observe(b, [12] * 8)
    observe(a, [12] * 4)  # a just improved from 20 to 12; b and c sat at 12 for two batches
    assert sched.rank()[0] == a.key
    assert sched.gain(a.key) > sched.gain(b.key) == sched.gain(c.key) > 0
    observe(b, [40] * 4)  # nothing new: b's optimistic next gain shrinks with the batches spent
    assert sched.rank()[-1] == b.key


def test_scheduler_counts_relative_drops_for_the_geomean():
    a, b = (make_scenario("expand", 16, 4096, 16, "bf16", [1] * n, workload="distinct") for n in (2, 4))
    sched = Scheduler([a, b], batch_size=4)
    # a: 30 -> 27 us (10%); b: 10 -> 8 us (20%): b's drop is smaller in us but larger in log(time)
    sched.observe(a.key, [Measurement(a.key, "expand/tile/dot", {}, "ok", us=t) for t in [30.0] * 4 + [27.0] * 4])
    sched.observe(b.key, [Measurement(b.key, "expand/tile/dot", {}, "ok", us=t) for t in [10.0] * 4 + [8.0] * 4])
    assert sched.rank() == [b.key, a.key]
    assert sched.gain(b.key) > sched.gain(a.key)


def test_scheduler_does_not_carry_a_floor_fraction_across_unlike_floors():
    """Identical (one adapter's bytes) and Distinct at the same token count share shapes but not floors: the
    Distinct case's floor fraction says nothing of how fast the Identical one can go (sessions 4-8 gave 8
    Identical cases 700+ measurements each and most others 8)."""
    ident = make_scenario("shrink", 4096, 4096, 16, "bf16", [8], workload="identical")
    dist = make_scenario("shrink", 4096, 4096, 16, "bf16", [1] * 8, workload="distinct")
    sched = Scheduler([ident, dist], batch_size=4)

    def ms(scn, us, floor, n):
        return [Measurement(scn.key, "shrink/tile/dot", {}, "ok", us=us, floor_us=floor)] * n

    sched.observe(ident.key, ms(ident, 4.0, 0.1, 200))  # 50 batches, far from its floor
    sched.observe(dist.key, ms(dist, 4.0, 2.0, 8))  # 2 batches, at half its floor
    assert sched.rank() == [dist.key, ident.key]
    assert sched.gain(ident.key) == pytest.approx(0.8 / 51)  # only diminishing returns: (1 - alpha) / (k + 1)
    twin = make_scenario("shrink", 4096, 4096, 16, "bf16", [2] * 4, workload="uniform")
    near = Scheduler([dist, twin], batch_size=4)  # same floor: the fraction carries over
    near.observe(dist.key, ms(dist, 4.0, 2.0, 200))
    near.observe(twin.key, ms(twin, 20.0, 2.0, 200))
    assert near.gain(twin.key) == pytest.approx(0.8 * (20.0 - 2.0 * 4.0) / 20.0)


def test_scheduler_weights_and_determinism():
    a, b = (make_scenario("expand", 16, 4096, 16, "bf16", [1] * n, workload="distinct") for n in (2, 4))
    ms = {k: [Measurement(k, "expand/tile/dot", {}, "ok", us=5.0)] * 4 for k in (a.key, b.key)}
    heavy = Scheduler([a, b], batch_size=4, weights={b.key: 3.0})
    for k, m in ms.items():
        heavy.observe(k, m)
    assert heavy.rank() == [b.key, a.key]
    ties = [Scheduler([a, b], batch_size=4, seed=s) for s in range(8)]
    for sched in ties:
        for k, m in ms.items():
            sched.observe(k, m)
    assert {tuple(s.rank()) for s in ties} == {(a.key, b.key), (b.key, a.key)}  # equal gains: the seed decides
    again = Scheduler([a, b], batch_size=4, seed=3)
    for k, m in ms.items():
        again.observe(k, m)
    assert again.rank() == ties[3].rank()


def test_moves_step_switch_and_mix():
    p = problem(SHRINK)
    rng = random.Random(0)
    for cand in random.Random(1).sample(enumerate_valid("shrink/splitk/dot", SHRINK), 20):
        moved = step(p, cand, rng)
        dom = get_sketch(cand.sketch).domains
        diff = [k for k in dom if moved.params[k] != cand.params[k]]
        assert (
            len(diff) == 1
            and abs(dom[diff[0]].index(moved.params[diff[0]]) - dom[diff[0]].index(cand.params[diff[0]])) == 1
        )
        other = switch(p, cand, rng)
        assert other.sketch != cand.sketch and other.sketch.startswith("shrink/") and p.legal(other)
    a, b = random.Random(2).sample(enumerate_valid("shrink/gemv/fma", SHRINK), 2)
    child = mix(p, a, b, [i % 2 == 0 for i in range(len(a.config))], rng)
    assert child is None or all(child.params[k] in (a.params[k], b.params[k]) for k in a.params)
    only = frozenset(random.Random(3).sample(enumerate_valid("shrink/gemv/fma", SHRINK), 5))
    restricted = problem(SHRINK, allowed=only)
    assert all(step(restricted, c, rng) in only - {c} for c in only)  # the nearest other recorded config
