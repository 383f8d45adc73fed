"""Roofline of the measured candidates: log-log FLOP/B against TFLOP/s under the device's ceilings."""

from __future__ import annotations

import math

from textual_plotext.plot import Plot

from dop_tui.space import DeviceSpec
from dop_tui.ui.state import RooflineView
from dop_tui.ui.widgets.chart import Chart
from dop_tui.ui.widgets.fitness_chart import BASELINE_COLORS

MARKUP_COLORS = {"red": "ansi_red", "magenta": "ansi_magenta", "orange": "#ff8700", "gray": "ansi_white",
                 "white": "ansi_bright_white"}  # fmt: skip


def _decades(lo: float, hi: float) -> tuple[list[float], list[str]]:
    ticks = [10.0**e for e in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1)]
    return ticks, [f"{t:g}" if t < 1000 else f"{t / 1000:g}k" for t in ticks]


class RooflineChart(Chart):
    """Ceilings: HBM bandwidth (slope) and bf16 matmul rate (flat). A scenario's launch floor is the rate
    it would reach if it took exactly one empty kernel launch: a dash above its column of points.
    Candidates are grey dots, baselines coloured crosses, the best of each scenario a green star."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: RooflineView | None = None
        self.device: DeviceSpec | None = None

    def show(self, view: RooflineView, device: DeviceSpec) -> None:
        if view != self.view or device != self.device:
            self.view, self.device = view, device
            self.redraw()

    def legend(self, width: int) -> str:
        names = list(self.view.baselines) if self.view else []
        bases = " ".join(f"[{MARKUP_COLORS[c]}]{n}[/]" for n, c in zip(names, BASELINE_COLORS, strict=False))
        long = f"━ roof  [ansi_yellow]-[/] launch floor  · candidates  x {bases}  [ansi_bright_green]*[/] best"
        marks = "".join(f"[{MARKUP_COLORS[c]}]x[/]" for _, c in zip(names, BASELINE_COLORS, strict=False))
        short = f"━roof [ansi_yellow]-[/]launch ·cand {marks}base [ansi_bright_green]*[/]best"
        return long if width >= 80 else short

    def draw(self, plt: Plot) -> None:
        v, d = self.view, self.device
        if v is None or d is None or not (v.candidates or v.baselines):
            plt.title("no timed measurement yet")
            return
        points = v.candidates + [p for ps in v.baselines.values() for p in ps]
        bw, peak = d.hbm_bytes_per_s / 1e12, d.bf16_flops / 1e12
        x_lo = min(p.intensity for p in points) / 2
        x_hi = max(max(p.intensity for p in points) * 2, peak / bw * 2)
        y_lo = min(p.tflops for p in points if p.tflops > 0) / 2
        xs = [x_lo * (x_hi / x_lo) ** (i / 99) for i in range(100)]
        plt.xscale("log")
        plt.yscale("log")
        plt.plot(xs, [min(bw * x, peak) for x in xs], color="white", marker="braille")
        if v.launch_caps:
            plt.scatter(
                [p.intensity for p in v.launch_caps], [p.tflops for p in v.launch_caps], color="yellow", marker="-"
            )
        plt.scatter([p.intensity for p in v.candidates], [p.tflops for p in v.candidates], color="gray", marker="·")
        for (_, ps), color in zip(v.baselines.items(), BASELINE_COLORS, strict=False):
            plt.scatter([p.intensity for p in ps], [p.tflops for p in ps], color=color, marker="x")
        if v.best:
            plt.scatter([p.intensity for p in v.best], [p.tflops for p in v.best], color="green+", marker="*")
        plt.xticks(*_decades(x_lo, x_hi))
        plt.yticks(*_decades(y_lo, peak * 2))
        plt.xlabel("FLOP/B")
        plt.ylabel("TFLOP/s")
