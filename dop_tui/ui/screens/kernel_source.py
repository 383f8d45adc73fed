"""The highlighted leaderboard row's kernel: its sketch, config, time, and the source of its launcher and
Triton kernel(s) as the package ships them (``kernels/``)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
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


def kernel_source(kernel: str, config: dict[str, int]) -> tuple[str, str, str]:
    """(title, file, source) of a sketch or baseline: its launcher and the Triton kernels of its file."""
    from dop_tui.space.sketches import BASELINE_BY_ID, SKETCH_BY_ID

    spec = SKETCH_BY_ID.get(kernel) or BASELINE_BY_ID.get(kernel)
    if spec is None:
        return kernel, "-", "(unknown kernel)"
    module, launcher = spec.entry.module, spec.entry.function
    found = importlib.util.find_spec(f"dop_tui.kernels.{module}")
    path = Path(found.origin) if found and found.origin else None
    if path is None or not path.is_file():
        return kernel, "-", "(source not found)"
    text = path.read_text()
    lines = text.splitlines()
    defs = {n.name: n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)}
    order, todo = [], [launcher]  # the launcher, then the functions it reaches (its Triton kernels among them)
    while todo:
        name = todo.pop(0)
        if name in defs and name not in order:
            order.append(name)
            todo += [n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name) and n.id in defs]
    wanted = []
    for name in order:
        node = defs[name]
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        wanted.append("\n".join(lines[start - 1 : node.end_lineno]))
    cfg = " ".join(f"{k}={v}" for k, v in sorted(config.items())) or "(fixed choices)"
    return f"{kernel}  {cfg}", f"{path}  ({launcher})", "\n\n\n".join(wanted)
