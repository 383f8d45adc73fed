"""Save the recorded session under a name of the user's choice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class SaveScreen(ModalScreen[str | None]):
    """``save(target)`` does the writing and returns what to report; its errors stay on this screen."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, default: Path, save: Callable[[Path], str]) -> None:
        super().__init__()
        self.default, self.save = default, save

    def compose(self) -> ComposeResult:
        with Vertical(id="save", classes="dialog") as box:
            box.border_title = "Save the session"
            yield Label("File (.json or .json.gz); the job goes on recording to its own file:")
            yield Input(str(self.default), id="save-path")
            yield Static(id="save-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save-ok", variant="primary")
                yield Button("Cancel", id="save-cancel")

    @on(Input.Submitted, "#save-path")
    @on(Button.Pressed, "#save-ok")
    def _save(self) -> None:
        text = self.query_one("#save-path", Input).value.strip()
        if not text:
            self.query_one("#save-error", Static).update("give a file name")
            return
        try:
            self.dismiss(self.save(Path(text).expanduser()))
        except (OSError, ValueError) as exc:  # SessionError is a ValueError; so is a name with a NUL
            self.query_one("#save-error", Static).update(str(exc))

    @on(Button.Pressed, "#save-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
