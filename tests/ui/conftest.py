"""Fixtures of the workbench tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_support import recorded

import dop_tui.jobrun
from dop_tui.search.events import Event


@pytest.fixture(autouse=True)
def fast_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read the bundled dataset once per test session (every replay job reads it again otherwise), and keep
    the autosave cache out of the home folder."""
    monkeypatch.setattr(dop_tui.jobrun, "load", lambda path: recorded(Path(path)))
    monkeypatch.setenv("DOP_TUI_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold every job's event stream before its first event until the test sets the returned event (a
    replay runs faster than a key press, so keys meant to land mid-job need the loop held)."""
    opened = threading.Event()
    real = dop_tui.jobrun.job_events

    def held(*args: object, **kwargs: object) -> Iterator[Event]:
        assert opened.wait(30), "the test never opened the gate"
        yield from real(*args, **kwargs)

    monkeypatch.setattr(dop_tui.jobrun, "job_events", held)
    return opened
