"""Population fitness per round: measured best and median, predicted best and median, best so far."""

from __future__ import annotations

from textual_plotext.plot import Plot

from dop_tui.ui.state import FitnessView
from dop_tui.ui.widgets.chart import TITLE_ROWS, Chart, baseline_style, times_ticks


def round_ticks(first: int, last: int, most: int = 6) -> list[int]:
    """Up to ``most`` whole rounds from ``first`` to ``last``, evenly spread."""
    step = max(1, -(-(last - first) // (most - 1)))
    return list(range(first, last + 1, step))


def label_groups(levels: dict[str, float], gap: float) -> list[list[str]]:
    """Names of horizontal lines grouped so that no two labels share a text row: levels closer than ``gap`` to
    the group's first (lowest) level join it."""
    groups: list[list[str]] = []
    for name in sorted(levels, key=levels.__getitem__):
        if groups and levels[name] - levels[groups[-1][0]] < gap:
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


class FitnessChart(Chart):
    """Left axis (``1.50x``): measured speedup over each scenario's best baseline (for the best-so-far line,
    the geomean over the scenarios measured so far), with the named baselines as horizontal lines. Right axis
    (``score``): the cost model's score of the candidates proposed each round (higher is faster)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: FitnessView | None = None

    def show(self, view: FitnessView) -> None:
        if view != self.view:
            self.view = view
            self.redraw()

    def legend(self, width: int) -> str:
        long = (
            "[ansi_bright_green]━[/] best so far  [ansi_cyan]•[/] round best  [ansi_blue]━[/] median  "
            "[ansi_yellow]+[/] predicted best  [ansi_red]·[/] predicted median (right axis)"
        )
        short = "[ansi_bright_green]━[/]best [ansi_cyan]•[/]round [ansi_blue]━[/]median [ansi_yellow]+·[/]pred"
        return long if width >= 100 else short

    def draw(self, plt: Plot) -> None:
        v = self.view
        if v is None or not v.rounds:
            plt.title("no measured round yet")
            return
        xs = v.rounds
        colors = {name: baseline_style(name)[0] for name in v.baselines}
        for name, color in colors.items():
            plt.hline(v.baselines[name], color=color)
        lo = min([*v.measured_median, *v.measured_best, *v.baselines.values()])
        hi = max([*v.measured_best, *v.best_so_far, *v.baselines.values()])
        for names in label_groups({n: v.baselines[n] for n in colors}, (hi - lo) / 12):
            plt.text("/".join(names), x=xs[0], y=v.baselines[names[0]], color=colors[names[0]], alignment="left")
        if v.predicted_rounds:
            plt.scatter(v.predicted_rounds, v.predicted_best, yside="right", color="yellow", marker="+")
            plt.scatter(v.predicted_rounds, v.predicted_median, yside="right", color="red", marker="·")
            plt.yfrequency(3, yside="right")
            plt.ylabel("score", yside="right")
        plt.plot(xs, v.measured_median, color="blue", marker="braille")
        plt.scatter(xs, v.measured_best, color="cyan", marker="•")
        plt.plot(xs, v.best_so_far, color="green+", marker="braille")
        if self.size.height >= TITLE_ROWS:
            plt.title("speedup over the best baseline")
        plt.xlabel("round")
        plt.yticks(*times_ticks(lo, hi))
        plt.xticks(round_ticks(xs[0], xs[-1]))
