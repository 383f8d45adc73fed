"""Base of the workbench charts: a textual-plotext plot that draws from plain data and caches its frame."""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.widget import Widget
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

# Each baseline has a colour and a mark of its own (charts tell series apart by shape as well as colour).
BASELINE_STYLE = {"vllm": ("red", "v"), "vllm-tuned": ("magenta", "V"), "sglang": ("orange", "s"),
                  "punica": ("gray", "p"), "torch": ("white", "t")}  # fmt: skip
MARKUP_COLORS = {"red": "ansi_red", "magenta": "ansi_magenta", "orange": "#ff8700", "gray": "ansi_white",
                 "white": "ansi_bright_white"}  # fmt: skip
TITLE_ROWS = 9  # a chart at least this tall names its left axis in a title row


def baseline_style(name: str) -> tuple[str, str]:
    """(plotext colour, one-character mark) of a baseline; an unknown one gets white and its first letter."""
    return BASELINE_STYLE.get(name, ("white", name[:1] or "?"))


def times_ticks(lo: float, hi: float, n: int = 4) -> tuple[list[float], list[str]]:
    """``n`` evenly spaced ticks from ``lo`` to ``hi`` labelled as speedups (``1.50x``)."""
    if hi <= lo:
        hi = lo + 1e-9
    values = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    return values, [f"{v:.2f}x" for v in values]


class Chart(PlotextPlot):
    """Subclasses implement ``draw`` and call ``redraw`` when their data changes.

    Plotext rebuilds the whole figure on every render; a frame is kept until the data, the size or the
    theme changes, so focus changes and unrelated refreshes cost nothing.
    """

    can_focus = True

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._version = 0
        self._frame: tuple[tuple, RenderResult] | None = None
        self._legend = ""

    def draw(self, plt: Plot) -> None:
        """Draw the current data on a cleared figure."""
        raise NotImplementedError

    def legend(self, width: int) -> str:
        """Content markup for the pane's subtitle, at most ``width`` cells when possible."""
        return ""

    def redraw(self) -> None:
        self._version += 1
        self.refresh()
        self._show_legend()

    def on_resize(self) -> None:
        self._show_legend()

    def _show_legend(self) -> None:
        """The legend lives in the subtitle of the pane that holds the chart, fitted to its width."""
        pane = self.parent
        if isinstance(pane, Widget):
            legend = self.legend(pane.size.width - 6)
            if legend != self._legend:
                self._legend = pane.border_subtitle = legend

    def render(self) -> RenderResult:
        key = (self.size, self._version, self.app.theme)
        if self._frame is None or self._frame[0] != key:
            self.plt.clear_figure()
            if self.size.width < 12 or self.size.height < 5:
                return Text("(too small)", style="dim")
            self.draw(self.plt)
            self._frame = (key, super().render())
        return self._frame[1]
