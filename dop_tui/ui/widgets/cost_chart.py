"""The cost model's view of the latest round: predicted score against measured speedup."""

from __future__ import annotations

from textual_plotext.plot import Plot

from dop_tui.ui.state import CostView
from dop_tui.ui.widgets.chart import TITLE_ROWS, Chart, times_ticks


class CostChart(Chart):
    """One point per scored candidate of the latest round in scope; a good model rises to the right."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: CostView | None = None

    def show(self, view: CostView) -> None:
        if view != self.view:
            self.view = view
            self.redraw()

    def legend(self, width: int) -> str:
        v = self.view
        if v is None or v.round is None:
            return ""
        return f"[ansi_cyan]•[/] round {v.round}: {len(v.predicted)} candidates"

    def draw(self, plt: Plot) -> None:
        v = self.view
        if v is None or v.round is None:
            plt.title("no scored measurement yet")
            return
        plt.scatter(v.predicted, v.measured, color="cyan", marker="•")
        if self.size.height >= TITLE_ROWS:
            plt.title("measured speedup")
        plt.xlabel("predicted score")
        plt.xfrequency(4)
        plt.yticks(*times_ticks(min(v.measured), max(v.measured)))
