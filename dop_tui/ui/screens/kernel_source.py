"""The highlighted leaderboard row's kernel: its sketch, config, time, and the source of its launcher and
Triton kernel(s) as the package ships them (``kernels/``)."""

from __future__ import annotations

from typing import ClassVar

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class KernelScreen(ModalScreen[None]):
    """``title`` names the kernel and config; ``source`` is the code to show (``path`` is where it lives)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,k", "dismiss", "Close")]

    def __init__(self, title: str, path: str, source: str) -> None:
        super().__init__()
        self.title_text, self.path, self.source = title, path, source

    def compose(self) -> ComposeResult:
        with Vertical(id="kernel", classes="dialog") as box:
            box.border_title = "Kernel"
            yield Static(self.title_text, id="kernel-title")
            yield Static(f"{self.path}  (escape closes)", id="kernel-path", classes="muted")
            with VerticalScroll(id="kernel-scroll"):
                yield Static(Syntax(self.source, "python", line_numbers=False, word_wrap=False), id="kernel-source")
