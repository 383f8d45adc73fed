"""Operations on the search space of one scenario: count, enumerate, sample, neighbours, explain.

Valid configs of a sketch are the legal points of the Cartesian product of its domains; they are
enumerated once per (sketch, scenario, device) and cached, so sampling is exactly uniform.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache

from dop_tui.scenario import Scenario
from dop_tui.space.candidate import Candidate
from dop_tui.space.device import DEFAULT_DEVICE, DeviceSpec
from dop_tui.space.sketches import SKETCH_BY_ID, SKETCHES, Sketch, next_pow2


def sketches_for(op: str) -> tuple[Sketch, ...]:
    return tuple(s for s in SKETCHES if s.op == op)


def get_sketch(sketch_id: str) -> Sketch:
    if sketch_id not in SKETCH_BY_ID:
        raise ValueError(f"unknown sketch {sketch_id!r}; known: {', '.join(SKETCH_BY_ID)}")
    return SKETCH_BY_ID[sketch_id]


def why_invalid(
    sketch_id: str, scn: Scenario, config: Mapping[str, int], device: DeviceSpec = DEFAULT_DEVICE
) -> list[str]:
    """Every reason ``config`` is not a valid config of the sketch for ``scn``; empty when valid."""
    if sketch_id not in SKETCH_BY_ID:
        return [f"unknown sketch {sketch_id!r}"]
    sk = SKETCH_BY_ID[sketch_id]
    if sk.op != scn.op:
        return [f"sketch {sketch_id} implements {sk.op}, the scenario is {scn.op}"]
    domains = sk.domains
    reasons = [f"unknown parameter {k!r}" for k in config if k not in domains]
    reasons += [f"missing parameter {k!r}" for k in domains if k not in config]
    reasons += [
        f"{k}={config[k]} is not in its domain {list(dom)}"
        for k, dom in domains.items()
        if k in config and config[k] not in dom
    ]
    if reasons:
        return reasons
    return [r for rule in sk.rules if (r := rule(scn, config, device)) is not None]


def legality_view(scn: Scenario, sketch_id: str) -> Scenario:
    """The smallest scenario with the same legality as ``scn`` for the sketch.

    Rules read only the shapes, dtypes, the padded longest segment and the padded segment count (the caps
    pad to powers of two), so every layout with the same ``next_pow2`` of both shares one enumeration; a sketch
    with ``layout_rules`` also reads every segment's length (its view keeps them, sorted).
    ``tests/unit/test_space.py`` checks this equivalence on random layouts.
    """
    segs, longest = next_pow2(scn.num_segments), next_pow2(scn.max_seg_len)
    lens = (longest,) + (1,) * (segs - 1)
    if get_sketch(sketch_id).layout_rules:
        lens = tuple(sorted(scn.seg_lens, reverse=True))
    return replace(scn, seg_lens=lens, seg_adapters=(0,) * len(lens), num_adapters=1, workload="legality")


def _valid(sketch_id: str, scn: Scenario, device: DeviceSpec) -> tuple[Candidate, ...]:
    return _valid_view(sketch_id, legality_view(scn, sketch_id), device)


@lru_cache(maxsize=4096)
def _valid_view(sketch_id: str, scn: Scenario, device: DeviceSpec) -> tuple[Candidate, ...]:
    sk = get_sketch(sketch_id)
    names = [n for n, _ in sk.params]
    out = []
    for values in itertools.product(*(dom for _, dom in sk.params)):
        cfg = dict(zip(names, values, strict=True))
        if all(rule(scn, cfg, device) is None for rule in sk.rules):
            out.append(Candidate.make(sketch_id, cfg))
    return tuple(out)


def enumerate_valid(sketch_id: str, scn: Scenario, device: DeviceSpec = DEFAULT_DEVICE) -> tuple[Candidate, ...]:
    """All valid candidates of one sketch, in the order of the domains' product."""
    return _valid(sketch_id, scn, device)


def count_valid(scn: Scenario, device: DeviceSpec = DEFAULT_DEVICE) -> dict[str, int]:
    """Valid configs per sketch of the scenario's op."""
    return {sk.id: len(_valid(sk.id, scn, device)) for sk in sketches_for(scn.op)}


def sample(sketch_id: str, scn: Scenario, rng: random.Random, device: DeviceSpec = DEFAULT_DEVICE) -> Candidate:
    """One valid candidate of the sketch, uniformly at random."""
    valid = _valid(sketch_id, scn, device)
    if not valid:
        raise ValueError(f"sketch {sketch_id} has no valid config for {scn.describe()}")
    return rng.choice(valid)


def sample_many(
    sketch_id: str, scn: Scenario, n: int, rng: random.Random, device: DeviceSpec = DEFAULT_DEVICE
) -> list[Candidate]:
    """``n`` distinct valid candidates (all of them when fewer exist), uniformly without replacement."""
    valid = _valid(sketch_id, scn, device)
    return list(valid) if n >= len(valid) else rng.sample(valid, n)


def neighbours(cand: Candidate, scn: Scenario, device: DeviceSpec = DEFAULT_DEVICE) -> list[Candidate]:
    """Valid candidates that differ from ``cand`` in one parameter moved one step along its domain."""
    sk = get_sketch(cand.sketch)
    cfg = cand.params
    out = []
    for name, dom in sk.params:
        i = dom.index(cfg[name])
        for j in (i - 1, i + 1):
            if 0 <= j < len(dom):
                nb = dict(cfg, **{name: dom[j]})
                if not why_invalid(sk.id, scn, nb, device):
                    out.append(Candidate.make(sk.id, nb))
    return out
