"""Runners behind one protocol: ``measure(scenario, requests) -> list[Measurement]``.

A request is ``(kernel_id, config)``; a sketch config the space rejects is ``invalid`` without running.

- ``InterpretRunner``: CPU, Triton interpreter, correctness only (no time). Needs ``TRITON_INTERPRET=1``
  set before triton is imported.
- ``ReplayRunner``: answers from measurements recorded earlier (Kernel Tuner's simulation mode); a request
  never recorded comes back ``unmeasured``, never invented.

The GPU runner (parallel compiles, supervised workers, graph timing) and the Ray runner (the GPU runner on
every GPU of a cluster) implement the same protocol, and also ``measure_round(items)``: a whole round's
``(scenario, requests)`` items at once, yielding ``(item index, measurements)`` as each item completes, in any
order, so every device works through one queue with no barrier per scenario. ``measure_round`` below gives
any runner that form.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dop_tui.measure.check import check_kernel
from dop_tui.measure.record import DeviceLoad, Measurement
from dop_tui.measure.roofline import roofline
from dop_tui.scenario import Scenario
from dop_tui.space import DEFAULT_DEVICE, SKETCH_BY_ID, Candidate, why_invalid

Request = tuple[str, Mapping[str, int]]
Item = tuple[Scenario, Sequence[Request]]


class Runner(Protocol):
    name: str

    def measure(self, scn: Scenario, requests: Sequence[Request]) -> list[Measurement]: ...


class RoundBook:
    """A round's answers by item: requests the space rejects are answered at once, the others as they come;
    ``fill`` returns an item's measurements, in request order, once every one is in."""

    def __init__(self, items: Sequence[Item]) -> None:
        self._out = [[invalid_measurement(scn, kid, cfg) for kid, cfg in reqs] for scn, reqs in items]
        self._left = [sum(m is None for m in row) for row in self._out]

    def to_measure(self, i: int) -> list[int]:
        """Positions of item ``i``'s requests that need a runner."""
        return [j for j, m in enumerate(self._out[i]) if m is None]

    def complete(self) -> Iterator[tuple[int, list[Measurement]]]:
        """The items answered already (every request rejected)."""
        return ((i, self._answers(i)) for i, n in enumerate(self._left) if n == 0)

    def fill(self, i: int, positions: Sequence[int], ms: Sequence[Measurement]) -> list[Measurement] | None:
        for j, m in zip(positions, ms, strict=True):
            self._out[i][j] = m
        self._left[i] -= len(positions)
        return self._answers(i) if self._left[i] == 0 else None

    def _answers(self, i: int) -> list[Measurement]:
        return [m for m in self._out[i] if m is not None]


@dataclass
class Tally:
    """What one measuring worker of a multi-device runner has done, and the scenarios it has built."""

    device: str
    measured: int = 0
    busy_s: float = 0.0
    held: str = ""  # scenario key of the request it holds now
    built: set[str] = field(default_factory=set)

    def load(self) -> DeviceLoad:
        return DeviceLoad(self.device, self.measured, self.busy_s, self.held)


def pick_for(me: Tally, tallies: Sequence[Tally], keys: Sequence[tuple[int, str]]) -> int | None:
    """Which pending request an idle worker takes, from ``(position, scenario key)`` of those it may take: the
    first of a scenario it has built, else the first no other worker has built, else the first; None if none
    (so a scenario's operands are built on as few devices as the queue allows)."""
    others = set().union(*(t.built for t in tallies if t is not me))
    for wanted in (lambda k: k in me.built, lambda k: k not in others, lambda k: True):
        pos = next((p for p, k in keys if wanted(k)), None)
        if pos is not None:
            return pos
    return None


def measure_round(runner: Runner, items: Sequence[Item]) -> Iterator[tuple[int, list[Measurement]]]:
    """``(index, measurements)`` of every item: through the runner's own ``measure_round`` when it has one
    (completion order), else one ``measure`` call per item (item order)."""
    own = getattr(runner, "measure_round", None)
    if own is not None:
        yield from own(items)
        return
    for i, (scn, requests) in enumerate(items):
        yield i, runner.measure(scn, requests)


def classify_exception(text: str) -> str:
    """Status of a kernel that raised, from ``"TypeName: message"``: compile or launch error."""
    compile_markers = ("CompilationError", "CompileTimeAssertionFailure", "OutOfResources", "PTXASError")
    return "compile_error" if text.split(":", 1)[0] in compile_markers else "launch_error"


def invalid_measurement(scn: Scenario, kid: str, cfg: Mapping[str, int]) -> Measurement | None:
    if kid not in SKETCH_BY_ID:
        return None
    reasons = why_invalid(kid, scn, cfg)
    if not reasons:
        return None
    return Measurement(scn.key, kid, dict(cfg), "invalid", message="; ".join(reasons))


class InterpretRunner:
    """Correctness of each request on fresh random inputs in the Triton interpreter; no timing."""

    name = "interpret"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def measure(self, scn: Scenario, requests: Sequence[Request]) -> list[Measurement]:
        rf = roofline(scn, DEFAULT_DEVICE)
        out = []
        for i, (kid, cfg) in enumerate(requests):
            bad = invalid_measurement(scn, kid, cfg)
            if bad:
                out.append(bad)
                continue
            res = check_kernel(kid, scn, cfg, device="cpu", seed=self.seed + i)
            if res.error:
                status, msg = classify_exception(res.error), res.error
            else:
                status, msg = ("ok" if res.ok else "wrong"), ""
            out.append(
                Measurement(
                    scn.key, kid, dict(cfg), status, method="interpreter (correctness only)",
                    rel_error=None if res.error else res.rel_error, message=msg, bytes=rf.bytes, flops=rf.flops,
                    floor_us=rf.floor_s * 1e6, env={"backend": "triton interpreter"},
                )
            )  # fmt: skip
        return out


class ReplayRunner:
    """Answers with the recorded measurement of each request; unknown requests are ``unmeasured``."""

    name = "replay"

    def __init__(self, records: Iterable[Measurement]) -> None:
        self._by_key: dict[tuple, Measurement] = {}
        self._sketches: dict[str, list[Candidate]] = {}
        for m in records:
            if m.key in self._by_key:
                continue  # the first record of a candidate is the one replayed
            self._by_key[m.key] = m
            if m.kernel in SKETCH_BY_ID:
                self._sketches.setdefault(m.scenario, []).append(Candidate.make(m.kernel, m.config))

    def __len__(self) -> int:
        return len(self._by_key)

    def candidates(self, scn: Scenario) -> tuple[Candidate, ...]:
        """The recorded sketch candidates of ``scn`` (any status), in record order: a search that stays inside
        them never asks for an answer that does not exist (Kernel Tuner's simulation mode)."""
        return tuple(self._sketches.get(scn.key, ()))

    def measure(self, scn: Scenario, requests: Sequence[Request]) -> list[Measurement]:
        out = []
        for kid, cfg in requests:
            m = self._by_key.get((scn.key, kid, tuple(sorted((k, int(v)) for k, v in cfg.items()))))
            out.append(m or Measurement(scn.key, kid, dict(cfg), "unmeasured", message="no recorded measurement"))
        return out
