"""Asked at start-up when a GPU is visible: tune for real, or look at the bundled replay first."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class GpuOfferScreen(ModalScreen[str | None]):
    """Dismissed with "gpu" (open the new-job form), "replay" or None (stay idle)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Not now")]

    def compose(self) -> ComposeResult:
        with Vertical(id="offer", classes="dialog") as box:
            box.border_title = "A GPU is available"
            yield Static(
                "Start a real tuning job on this GPU (the new-job form opens with backend gpu), or first "
                "look at the bundled H200 dataset in replay."
            )
            with Horizontal(classes="buttons"):
                yield Button("New GPU job", id="offer-gpu", variant="primary")
                yield Button("Replay the H200 dataset", id="offer-replay")

    @on(Button.Pressed, "#offer-gpu")
    def _gpu(self) -> None:
        self.dismiss("gpu")

    @on(Button.Pressed, "#offer-replay")
    def _replay(self) -> None:
        self.dismiss("replay")
