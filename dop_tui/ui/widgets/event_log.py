"""The event log: the job's events and errors, filterable by kind."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from dop_tui.ui.state import LOG_KINDS, LogEntry

KIND_STYLE = {"job": "bold", "round": "dim", "measured": "", "best": "green", "model": "cyan", "error": "red"}
KIND_TITLE = {
    "job": "jobs",
    "round": "rounds",
    "measured": "measurements",
    "best": "new bests",
    "model": "model",
    "error": "errors",
}


class EventLog(RichLog):
    """Shows a shared, growing list of entries: only new ones are written, unless the kind filter changes."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=5000, wrap=True, min_width=20, id=id)
        self.entries: list[LogEntry] = []
        self.kind = ""  # "" for every kind
        self.shown = 0  # entries written since the last clear (a long one wraps over several lines)
        self._written = 0

    def cycle_kind(self) -> None:
        """Show the next kind of entry (every kind, then each in turn)."""
        kinds = ("", *LOG_KINDS)
        self.kind = kinds[(kinds.index(self.kind) + 1) % len(kinds)]
        self.clear()
        self._written = self.shown = 0
        self.show(self.entries)

    def show(self, entries: list[LogEntry]) -> None:
        """Write what was added to ``entries`` since the last call (a new list starts over)."""
        if entries is not self.entries:
            self.entries, self._written, self.shown = entries, 0, 0
            self.clear()
        for e in entries[self._written :]:
            if not self.kind or e.kind == self.kind:
                self.write(Text(f"{e.kind:<6} {e.text}", style=KIND_STYLE.get(e.kind, "")))
                self.shown += 1
        self._written = len(entries)
