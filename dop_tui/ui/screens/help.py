"""The help screen: every key of the workbench, the app's bindings and the panes' own."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

PANE_KEYS = (
    ("tab / shift+tab", "move between panes"),
    ("up / down", "move in the tree, the leaderboard or the log"),
    ("enter", "sketch tree: filter every pane to the node; a picker: open it"),
    ("space", "sketch tree: fold or unfold the node"),
    ("ctrl+p", "command palette (themes, screenshots)"),
)

ABOUT = (
    "Panes follow the filter: the sketch-tree node selected with enter and the scenario picked in the "
    "leaderboard. Speedups divide the best baseline's time on the same scenario by the candidate's; across "
    "scenarios they are geometric means. The roofline's ceilings are the device's measured HBM bandwidth and "
    "bf16 matmul rate; a scenario's launch floor is its work done in the time of one empty kernel launch."
)


class HelpScreen(ModalScreen[None]):
    """Every key, generated from the app's bindings so none is missing."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def key_rows(self) -> list[tuple[str, str]]:
        """``(keys, what they do)`` for every binding of the app; one row per key."""
        rows: dict[str, list[str]] = {}
        for b in self.app.BINDINGS:
            binding = b if isinstance(b, Binding) else Binding(*b)
            shown = self.app.get_key_display(binding) if binding.key_display else _keys(binding.key)
            rows.setdefault(shown, []).append(binding.description)
        return [(shown, " / ".join(what)) for shown, what in rows.items()]

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        keys.add_row(Text("workbench", style="bold underline"), "")
        for shown, what in self.key_rows():
            keys.add_row(shown, what)
        keys.add_row("", "")
        keys.add_row(Text("in the panes", style="bold underline"), "")
        for key, what in PANE_KEYS:
            keys.add_row(key, what)
        with VerticalScroll(id="help-body") as body:
            body.border_title = "dop-tui keys (escape closes)"
            yield Static(keys, id="help-keys")
            yield Static(Text(ABOUT, style="dim"), id="help-about")


def _keys(spec: str) -> str:
    names = {
        "plus": "+",
        "minus": "-",
        "left_square_bracket": "[",
        "right_square_bracket": "]",
        "question_mark": "?",
        "escape": "esc",
    }
    return " / ".join(names.get(k.strip(), k.strip()) for k in spec.split(","))
