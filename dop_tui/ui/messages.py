"""Every message of the workbench, in one module.

The search worker thread never touches widgets: it queues the loop's events on its ``Run`` and posts
``EventsReady``. A burst of those collapses to one (``can_replace``), whose handler drains the whole queue,
so the UI applies events in batches however fast the loop yields them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from dop_tui.job import Job


@dataclass
class EventsReady(Message):
    """Events of run ``run_id`` wait in its queue."""

    run_id: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsReady) and message.run_id == self.run_id


@dataclass
class RunFailed(Message):
    """Run ``run_id`` raised before or while yielding events (a bad job or session, no GPU, a crash)."""

    run_id: int
    error: str
    detail: str = ""  # a traceback for unexpected errors


@dataclass
class RunEnded(Message):
    """The worker of run ``run_id`` returned (after ``Finished``, an error, or a stop)."""

    run_id: int


@dataclass
class GpuChecked(Message):
    """Whether a CUDA GPU is visible (checked off the UI thread: importing torch takes a while)."""

    available: bool


@dataclass
class StartJob(Message):
    """Start ``job`` (from the new-job form), or resume the session at ``resume``."""

    job: Job | None
    resume: Path | None = None


@dataclass
class ScopeChanged(Message):
    """A pane asks to filter every pane to a sketch-tree node or a scenario (``None``: keep as is)."""

    node: str | None = None
    scenario: str | None = None
