"""A titled pane of the workbench: a container the zoom key can maximise."""

from __future__ import annotations

from textual.containers import Vertical


class Pane(Vertical):
    """A bordered pane; ``z`` maximises the pane that holds the focus."""

    ALLOW_MAXIMIZE = True

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = title
