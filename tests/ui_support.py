"""Helpers of the workbench tests: a small replay job and ways to wait on the app (fixtures: ui/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path

from textual.pilot import Pilot

from dop_tui.job import Job, job_from_mapping
from dop_tui.jobrun import SESSIONS_DIR
from dop_tui.search.events import Event, Finished, RoundDone
from dop_tui.session.store import Session, load
from dop_tui.ui.app import DopApp

REPLAY = SESSIONS_DIR / "h200-decode-foundation.json.gz"


@cache
def recorded(path: Path) -> Session:
    """A session file read once per test session."""
    return load(path)


def small_job(budget: int = 48, **overrides: object) -> Job:
    """Eight replayed scenarios (shrink and expand of q, batch 8 and 64, two workloads), searched at random
    (the quickest strategy; pass ``strategy="evolution"`` for populations and predicted scores)."""
    spec = {
        "name": "small replay",
        "ops": ["shrink", "expand"],
        "projections": ["q"],
        "batch_sizes": [8, 64],
        "workloads": ["distinct", "skewed"],
        "backend": "replay",
        "replay": str(REPLAY),
        "budget": budget,
        "strategy": "random",
        **overrides,
    }
    return job_from_mapping(spec)


def steady_clock(events: Iterator[Event]) -> Iterator[Event]:
    """The same events with elapsed times that do not depend on the machine (for snapshots)."""
    for ev in events:
        if isinstance(ev, RoundDone):
            ev = replace(ev, elapsed_s=2.0 * (ev.round + 1))
        elif isinstance(ev, Finished):
            ev = replace(ev, elapsed_s=60.0)
        yield ev


async def finish(pilot: Pilot) -> DopApp:
    """Wait until every worker has returned and the app has handled what they posted."""
    app = pilot.app
    assert isinstance(app, DopApp)
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()
    return app


async def until(pilot: Pilot, condition, timeout: float = 20.0) -> None:
    """Pause the test (not the app) until ``condition()`` holds."""
    waited = 0.0
    while not condition():
        assert waited < timeout, "timed out waiting for the app"
        await pilot.pause(0.05)
        waited += 0.05


def session_path(tmp_path: Path) -> Path:
    return tmp_path / "session.json.gz"
