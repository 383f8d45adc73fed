"""The header: job, device or replay source, state, budget progress, elapsed time and rate."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from dop_tui.ui.state import HeaderView

STATE_STYLE = {
    "idle": "dim",
    "starting": "bold cyan",
    "running": "bold green",
    "paused": "bold yellow",
    "stopping": "bold yellow",
    "finished": "bold blue",
    "failed": "bold red",
}


def clock(seconds: float) -> str:
    """``m:ss`` under an hour, ``h:mm:ss`` above."""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class JobHeader(Vertical):
    """Two lines: what runs where, then how far it got."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: dict[str, Text] = {}

    def _put(self, name: str, text: Text) -> None:
        """Update one line only when it changed; a new width re-lays out the line."""
        old = self._shown.get(name)
        if old != text:
            self._shown[name] = text
            layout = old is None or old.cell_len != text.cell_len
            self.query_one(f"#header-{name}", Static).update(text, layout=layout)

    def compose(self) -> ComposeResult:
        with Horizontal(id="header-top"):
            yield Static(id="header-title")
            yield Static(id="header-state")
        with Horizontal(id="header-progress"):
            yield Static("budget", id="header-budget-label")
            yield ProgressBar(total=None, show_eta=False, id="header-budget")
            yield Static(id="header-stats")

    def show(self, view: HeaderView, elapsed_s: float, note: str = "") -> None:
        """Render ``view``; ``elapsed_s`` is the live clock while a job runs, ``note`` a reason such as
        "finished (budget)"."""
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(" dop-tui ", style="bold reverse")
        if view.runner.startswith("replay"):
            title.append("  REPLAY ", style="bold black on yellow")
            first, *more = view.runner.removeprefix("replay of ").strip().split(" + ")
            source = first + (f" +{len(more)}" if more else "")  # the log's first line names every file
            title.append(f" {source}" + (f" ({view.device})" if view.device else ""), style="yellow")
        elif view.runner:
            title.append(f"  {view.runner.upper()} ", style="bold black on green")
            title.append(f" {view.device}")
        if view.job:
            title.append(f"  {view.job}", style="bold")
        self._put("title", title)
        state = Text(f"● {note or view.state}", style=STATE_STYLE.get(view.state, ""))
        if view.round:
            state.append(f"  round {view.round} ", style="bold")
        if view.devices:
            state.append(f" {view.devices} ", style="dim")
        self._put("state", state)

        bar = self.query_one("#header-budget", ProgressBar)
        bar.update(total=view.budget or None, progress=min(view.budget_used, view.budget))
        bar.display = self.query_one("#header-budget-label").display = bool(view.budget)
        stats = Text(no_wrap=True, overflow="ellipsis")
        if not view.budget:
            stats.append(" no job yet: n opens the new-job form, o opens a job file or a session, ? lists every key")
            self._put("stats", stats)
            return
        stats.append(f" {view.budget_used}/{view.budget}", style="bold")
        rate = view.spent_here / elapsed_s * 60 if elapsed_s > 0 and view.spent_here else None
        stats.append(f" · {clock(elapsed_s)} · " + (f"{rate:,.0f}/min" if rate else "-/min"))
        stats.append(f" · {view.scenarios} scenarios")
        if view.delta:
            stats.append(" · LoRA delta ")
            stats.append(f"{view.delta.geomean:.2f}x", style="bold green" if view.delta.geomean >= 1 else "bold red")
            stats.append(f" vs best ({view.delta.n}/{view.delta_cases})")
        elif view.best_speedup:
            stats.append(" · ")
            stats.append(f"{view.best_speedup:.2f}x", style="bold green" if view.best_speedup >= 1 else "bold red")
            stats.append(f" vs best ({view.scored}/{view.scenarios})")
        self._put("stats", stats)
