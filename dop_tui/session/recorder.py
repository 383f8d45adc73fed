"""Builds a session from the tuning loop's events and writes it atomically after every round and at the end.

A killed job therefore loses at most the round in flight; ``--resume`` reads the file back and continues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from dop_tui.scenario import Scenario
from dop_tui.search.events import Event, Finished, JobStarted, Measured, ModelRetrained, RoundDone
from dop_tui.session.store import Session, save


class Recorder:
    """Feed it every event (``recorder(event)``); ``session`` is the live record, saved to ``path`` if given."""

    def __init__(self, session: Session, scenarios: Mapping[str, Scenario], path: Path | None = None) -> None:
        self.session = session
        self.path = path
        for key, scn in scenarios.items():
            session.scenarios.setdefault(key, scn)
        self._metrics: dict[int, dict] = {}

    def __call__(self, ev: Event) -> None:
        s = self.session
        if isinstance(ev, JobStarted):
            s.finished = ""
            s.device = s.device or ev.device
        elif isinstance(ev, Measured):
            s.measurements.extend(ev.measurements)
            env = next((m.env for m in ev.measurements if m.env), None)
            if env and not s.env:
                s.env = dict(env)
        elif isinstance(ev, ModelRetrained):
            self._metrics[ev.round] = {"n_train": ev.n_train, "metrics": asdict(ev.metrics) if ev.metrics else None}
        elif isinstance(ev, RoundDone):
            s.rounds.append({"round": ev.round, "budget_used": ev.budget_used, "elapsed_s": round(ev.elapsed_s, 3),
                             **self._metrics.pop(ev.round, {})})  # fmt: skip
            self.save()
        elif isinstance(ev, Finished):
            s.finished = ev.reason
            self.save()

    def save(self) -> None:
        if self.path is not None:
            save(self.session, self.path)
