"""Search strategies: each proposes the next batch of candidates for one scenario.

A strategy sees a ``Problem`` (the scenario, the sketches it may use this round, everything measured on it so
far, and the restricted candidate set when the runner can only answer for some, as a replay), a batch size, a
seeded ``random.Random`` and a scorer (the cost model bound to the scenario; higher = predicted faster). It
returns a ``Proposal`` of distinct, valid candidates never measured before (of any status), inside the
restricted set when there is one. Fewer than asked (or none) means the space has no more to give.

- ``evolution``: Dop / Ansor. A population of random valid configs of every sketch plus the best measured,
  evolved for a few generations by one-step parameter moves, sketch switches within the op and same-sketch
  crossover, selected by the model's score; the batch is the best predicted unmeasured candidates plus an
  epsilon share of uniformly random ones (exploration when the model is confidently wrong).
- ``random``: uniform over the valid (or restricted) configs of the allowed sketches. No model.
- ``grid``: the allowed sketches in tree order, each in its domains' product order, as triton.autotune
  walks its config list. No model, no randomness.
- ``genetic``: model-free steady-state GA after Kernel Tuner's: the population is the fastest measured
  candidates (fitness = measured time), parents by tournament, single-point crossover, per-gene mutation;
  it proposes unmeasured offspring.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple, Protocol

import numpy as np

from dop_tui.measure.record import Measurement
from dop_tui.scenario import Scenario
from dop_tui.space import DEFAULT_DEVICE, Candidate, DeviceSpec, enumerate_valid, get_sketch, neighbours, sample
from dop_tui.space.space import legality_view

Scorer = Callable[[Sequence[Candidate]], Sequence[float]]


class _Pool(NamedTuple):
    members: tuple[Candidate, ...]
    member_set: frozenset[Candidate]
    steps: np.ndarray  # [member, parameter]: position along the domain (restricted sets only)


@lru_cache(maxsize=4096)
def _pool_of(sketch_id: str, scn: Scenario, device: DeviceSpec, allowed: frozenset[Candidate] | None) -> _Pool:
    if allowed is not None and not any(c.sketch == sketch_id for c in allowed):
        return _Pool((), frozenset(), np.array([], dtype=np.int64))  # nothing recorded: no need to enumerate
    valid = enumerate_valid(sketch_id, scn, device)
    members = valid if allowed is None else tuple(c for c in valid if c in allowed)
    steps = np.array([_steps(sketch_id, c.params) for c in members] if allowed is not None else [], dtype=np.int64)
    return _Pool(members, frozenset(members), steps)


@dataclass
class Problem:
    """One scenario's search state for a round: what a strategy may propose from and what to avoid."""

    scn: Scenario
    sketches: tuple[str, ...]  # sketches allowed this round (after the user's excluded / pinned)
    measured: Mapping[Candidate, Measurement]  # every candidate measured before on this scenario, any status
    allowed: frozenset[Candidate] | None = None  # the only candidates the runner can answer for (replay)
    device: DeviceSpec = DEFAULT_DEVICE
    _pools: dict[str, _Pool] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _pool(self, sketch_id: str) -> _Pool:
        if sketch_id not in self._pools:  # every layout with the same legality shares one enumeration
            view = legality_view(self.scn, sketch_id) if self.allowed is None else self.scn
            self._pools[sketch_id] = _pool_of(sketch_id, view, self.device, self.allowed)
        return self._pools[sketch_id]

    def pool(self, sketch_id: str) -> tuple[Candidate, ...]:
        """Valid candidates of the sketch (inside the restricted set, if any), in enumeration order."""
        return self._pool(sketch_id).members

    def legal(self, cand: Candidate) -> bool:
        return cand.sketch in self.sketches and cand in self._pool(cand.sketch).member_set

    def fresh(self, exclude: frozenset[Candidate] | set[Candidate] = frozenset()) -> list[Candidate]:
        """Unmeasured candidates of the allowed sketches, not in ``exclude``, in sketch then enumeration order."""
        return [c for s in self.sketches for c in self.pool(s) if c not in self.measured and c not in exclude]

    def timed(self) -> list[tuple[Candidate, float]]:
        """Measured candidates of the allowed sketches with a correct time, fastest first."""
        out = [(c, m.us) for c, m in self.measured.items() if m.status == "ok" and m.us is not None]
        return sorted((x for x in out if x[0].sketch in self.sketches), key=lambda x: (x[1], x[0]))


@dataclass(frozen=True)
class Proposal:
    candidates: tuple[Candidate, ...]
    predicted: tuple[float, ...] = ()  # the scorer's value per candidate when the strategy used it
    population: tuple[tuple[str, int], ...] = ()  # sketch id -> members of the final population
    population_scores: tuple[float, ...] = ()


class Strategy(Protocol):
    name: str
    uses_model: bool

    def propose(self, problem: Problem, n: int, rng: random.Random, score: Scorer) -> Proposal: ...


# -- moves shared by the evolutionary strategies ---------------------------------------------------------
def _nearest(dom: Sequence[int], v: int) -> int:
    return min(range(len(dom)), key=lambda i: (abs(dom[i] - v), i))


@lru_cache(maxsize=64)
def _positions(sketch_id: str) -> tuple[tuple[str, tuple[int, ...], dict[int, int]], ...]:
    return tuple((p, dom, {v: i for i, v in enumerate(dom)}) for p, dom in get_sketch(sketch_id).params)


def _steps(sketch_id: str, cfg: Mapping[str, int]) -> tuple[int, ...]:
    """Position of each value along its domain (the nearest for a value outside it; -1 where ``cfg`` lacks
    the parameter)."""
    out = []
    for p, dom, at in _positions(sketch_id):
        v = cfg.get(p)
        out.append(-1 if v is None else at[v] if v in at else _nearest(dom, v))
    return tuple(out)


def settle(
    problem: Problem, sketch_id: str, cfg: Mapping[str, int], rng: random.Random, skip: Candidate | None = None
) -> Candidate | None:
    """The candidate of ``cfg`` when it is complete and legal (and not ``skip``). In a restricted set, where
    a config an operator builds was rarely recorded, the recorded config of the sketch nearest to ``cfg``
    stands in: fewest domain steps over the parameters ``cfg`` has, ties drawn at random, never ``skip``.
    Otherwise None."""
    if set(cfg) == set(get_sketch(sketch_id).domains):
        cand = Candidate.make(sketch_id, cfg)
        if cand != skip and problem.legal(cand):
            return cand
    if problem.allowed is None or sketch_id not in problem.sketches:
        return None
    pool = problem._pool(sketch_id)
    if not pool.members or pool.members == (skip,):
        return None
    target = np.array(_steps(sketch_id, cfg))
    keep = target >= 0
    dist = np.abs(pool.steps[:, keep] - target[keep]).sum(axis=1)
    if skip in pool.member_set:
        dist[pool.members.index(skip)] = np.iinfo(dist.dtype).max
    return pool.members[rng.choice(np.flatnonzero(dist == dist.min()).tolist())]


def step(problem: Problem, cand: Candidate, rng: random.Random) -> Candidate | None:
    """Move one parameter one step along its domain (``space.neighbours``), staying legal. In a restricted
    set the nearest other recorded config of the sketch: the recorded one-step neighbours when there are any
    (they are exactly the configs at distance 1), else the closest there is."""
    if problem.allowed is not None:
        return settle(problem, cand.sketch, cand.params, rng, skip=cand)
    moves = [c for c in neighbours(cand, problem.scn, problem.device) if problem.legal(c)]
    return rng.choice(moves) if moves else None


def switch(problem: Problem, cand: Candidate, rng: random.Random) -> Candidate | None:
    """Move to another allowed sketch of the op, keeping the parameters the two share (mapped to the nearest
    value of the new domain) and drawing the rest; when that is illegal, re-sample the new sketch (in a
    restricted set: its recorded config nearest on the shared parameters)."""
    others = [s for s in problem.sketches if s != cand.sketch and problem.pool(s)]
    if not others:
        return None
    target = get_sketch(rng.choice(others))
    src = cand.params
    cfg = {p: dom[_nearest(dom, src[p])] if p in src else rng.choice(dom) for p, dom in target.params}
    mapped = Candidate.make(target.id, cfg)
    if problem.legal(mapped):
        return mapped
    if problem.allowed is not None:
        return settle(problem, target.id, {p: v for p, v in cfg.items() if p in src}, rng)
    return sample(target.id, problem.scn, rng, problem.device)


def mix(problem: Problem, a: Candidate, b: Candidate, take_b: Sequence[bool], rng: random.Random) -> Candidate | None:
    """Crossover of two same-sketch candidates: parameter i (domain order) from ``b`` where ``take_b[i]``,
    settled onto the legal (or recorded) space."""
    pa, pb = a.params, b.params
    names = [p for p, _ in get_sketch(a.sketch).params]
    return settle(problem, a.sketch, {p: pb[p] if t else pa[p] for p, t in zip(names, take_b, strict=True)}, rng)


def draw(problem: Problem, k: int, rng: random.Random, exclude: set[Candidate] | None = None) -> list[Candidate]:
    """``k`` distinct unmeasured candidates uniformly at random (all of them when fewer remain)."""
    fresh = problem.fresh(exclude or set())
    return fresh if k >= len(fresh) else rng.sample(fresh, k)


# -- strategies ------------------------------------------------------------------------------------------
@dataclass
class Evolution:
    """Model-guided evolutionary search (Dop, Ansor's sketch policy); see the module docstring.

    ``eps``: share of each batch drawn uniformly at random. Ansor uses 5% of 64; with batches of 8 that
    rounds to none, so one of eight (12.5%) — enough that a model that is confidently wrong about a region
    of a new scenario still gets corrected, small enough that seven of eight measurements exploit it.
    """

    population: int = 64
    generations: int = 3
    mutation_prob: float = 0.85  # else crossover with a same-sketch parent (Ansor's 0.85)
    switch_prob: float = 0.15  # share of mutations that switch the sketch
    measured_ratio: float = 0.2  # best measured candidates seeded into the initial population (Ansor's 0.2)
    eps: float = 0.125
    name: str = field(default="evolution", init=False)
    uses_model: bool = field(default=True, init=False)

    def propose(self, problem: Problem, n: int, rng: random.Random, score: Scorer) -> Proposal:
        sketches = [s for s in problem.sketches if problem.pool(s)]
        n = min(n, len(problem.fresh()))
        if n <= 0:
            return Proposal(())
        seeds = [c for c, _ in problem.timed()[: int(self.measured_ratio * self.population)]]
        share = max(1, (self.population - len(seeds)) // len(sketches))
        pop = list(dict.fromkeys(seeds + [c for s in sketches for c in _sample(problem, s, share, rng)]))
        seen = dict(zip(pop, map(float, score(pop)), strict=True))
        for _ in range(self.generations):
            ranked = sorted(pop, key=lambda c: -seen[c])
            children = [c for c in dict.fromkeys(self._offspring(problem, ranked, rng)) if c not in seen]
            seen.update(zip(children, map(float, score(children)), strict=True))
            pop = sorted(dict.fromkeys(ranked + children), key=lambda c: -seen[c])[: self.population]
        n_rand = min(n - 1, max(1, round(self.eps * n))) if n > 1 and self.eps > 0 else 0
        best = [c for c in sorted(seen, key=lambda c: -seen[c]) if c not in problem.measured][: n - n_rand]
        picks = best + draw(problem, n - len(best), rng, exclude=set(best))
        extra = [c for c in picks if c not in seen]
        seen.update(zip(extra, map(float, score(extra)), strict=True))
        picks.sort(key=lambda c: -seen[c])
        return Proposal(
            tuple(picks),
            tuple(seen[c] for c in picks),
            tuple(sorted(Counter(c.sketch for c in pop).items())),
            tuple(seen[c] for c in pop),
        )

    def _offspring(self, problem: Problem, ranked: list[Candidate], rng: random.Random) -> list[Candidate]:
        weights = [len(ranked) - i for i in range(len(ranked))]  # rank-proportional: scores need no scale
        out = []
        for parent in rng.choices(ranked, weights, k=len(ranked)):
            child = None
            if rng.random() >= self.mutation_prob:
                mates = [c for c in ranked if c.sketch == parent.sketch and c != parent]
                if mates:
                    mate = rng.choices(mates, [len(mates) - i for i in range(len(mates))])[0]
                    child = mix(problem, parent, mate, [rng.random() < 0.5 for _ in parent.config], rng)
            elif rng.random() < self.switch_prob:
                child = switch(problem, parent, rng)
            else:
                child = step(problem, parent, rng)
            if child is not None:
                out.append(child)
        return out


def _sample(problem: Problem, sketch_id: str, k: int, rng: random.Random) -> list[Candidate]:
    pool = problem.pool(sketch_id)
    return list(pool) if k >= len(pool) else rng.sample(pool, k)


@dataclass
class RandomSearch:
    """Uniformly random unmeasured valid candidates of the allowed sketches."""

    name: str = field(default="random", init=False)
    uses_model: bool = field(default=False, init=False)

    def propose(self, problem: Problem, n: int, rng: random.Random, score: Scorer) -> Proposal:
        return Proposal(tuple(draw(problem, n, rng)))


@dataclass
class Grid:
    """The first ``n`` unmeasured candidates in a fixed order: sketches in tree order, domains' product order."""

    name: str = field(default="grid", init=False)
    uses_model: bool = field(default=False, init=False)

    def propose(self, problem: Problem, n: int, rng: random.Random, score: Scorer) -> Proposal:
        out: list[Candidate] = []
        for s in problem.sketches:
            out += [c for c in problem.pool(s) if c not in problem.measured][: n - len(out)]
        return Proposal(tuple(out))


@dataclass
class Genetic:
    """Model-free GA (Kernel Tuner's ``genetic_algorithm``, steady-state): parents are the ``population``
    fastest measured candidates, picked by tournaments of ``tournament``; single-point crossover within a
    sketch; each gene (the sketch included) mutates with probability 1 / genes. Random until two are timed."""

    population: int = 20
    tournament: int = 2
    attempts: int = 50  # offspring tried per requested candidate before falling back to random ones
    name: str = field(default="genetic", init=False)
    uses_model: bool = field(default=False, init=False)

    def propose(self, problem: Problem, n: int, rng: random.Random, score: Scorer) -> Proposal:
        parents = problem.timed()[: self.population]
        n = min(n, len(problem.fresh()))
        out: list[Candidate] = []
        for _ in range(self.attempts * n if len(parents) >= 2 else 0):
            if len(out) == n:
                break
            a, b = self._select(parents, rng), self._select(parents, rng)
            child: Candidate | None = a
            if a.sketch == b.sketch:
                cut = rng.randrange(1, len(a.config)) if len(a.config) > 1 else 0
                child = mix(problem, a, b, [i >= cut for i in range(len(a.config))], rng)
            child = child and self._mutate(problem, child, rng)
            if child and child not in problem.measured and child not in out:
                out.append(child)
        return Proposal(tuple(out + draw(problem, n - len(out), rng, exclude=set(out))))

    def _select(self, parents: list[tuple[Candidate, float]], rng: random.Random) -> Candidate:
        return min(rng.sample(parents, min(self.tournament, len(parents))), key=lambda x: (x[1], x[0]))[0]

    def _mutate(self, problem: Problem, cand: Candidate, rng: random.Random) -> Candidate | None:
        rate = 1 / (len(cand.config) + 1)
        if rng.random() < rate:
            return switch(problem, cand, rng)
        params = cand.params
        cfg = {p: rng.choice(dom) if rng.random() < rate else params[p] for p, dom in get_sketch(cand.sketch).params}
        return settle(problem, cand.sketch, cfg, rng)


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "evolution": Evolution,
    "random": RandomSearch,
    "grid": Grid,
    "genetic": Genetic,
}


def make_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()
