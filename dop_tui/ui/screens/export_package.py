"""Export the session on screen: a kernel package, vLLM's tuned-config files, or both (``dop export``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

FORMATS = (("a kernel package", "package"), ("vLLM's tuned-config files", "vllm"), ("both", "both"))


class ExportScreen(ModalScreen[str | None]):
    """``export(directory, name, fmt)`` does the writing and returns what to report; its errors (a refused
    target, sessions with nothing to export) stay on this screen with the values kept."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, default: Path, export: Callable[[Path, str, str], str]) -> None:
        super().__init__()
        self.default, self.export = default, export

    def compose(self) -> ComposeResult:
        with Vertical(id="export", classes="dialog") as box:
            box.border_title = "Export the session"
            yield Label("Directory (new, or an earlier export of the same name):")
            yield Input(str(self.default), id="export-path")
            yield Label("Python package name:")
            yield Input("lora_kernels", id="export-name")
            yield Select(FORMATS, value="package", allow_blank=False, id="export-format")
            yield Static(id="export-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Export", id="export-ok", variant="primary")
                yield Button("Cancel", id="export-cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#export-ok")
    def _export(self) -> None:
        path = self.query_one("#export-path", Input).value.strip()
        name = self.query_one("#export-name", Input).value.strip()
        fmt = str(self.query_one("#export-format", Select).value)
        if not path:
            self.query_one("#export-error", Static).update("give a directory")
            return
        try:
            self.dismiss(self.export(Path(path).expanduser(), name, fmt))
        except (OSError, ValueError) as exc:  # ExportError and SessionError are ValueErrors
            self.query_one("#export-error", Static).update(str(exc))

    @on(Button.Pressed, "#export-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
