"""Roofline of the measured candidates: log-log FLOP/B against TFLOP/s under the device's ceilings."""

from __future__ import annotations

import math

from textual_plotext.plot import Plot

from dop_tui.space import DeviceSpec
from dop_tui.ui.state import RooflineView
from dop_tui.ui.widgets.chart import MARKUP_COLORS, TITLE_ROWS, Chart, baseline_style


def _decades(lo: float, hi: float) -> tuple[list[float], list[str]]:
    ticks = [10.0**e for e in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1)]
    return ticks, [f"{t:g}" if t < 1000 else f"{t / 1000:g}k" for t in ticks]


class RooflineChart(Chart):
    """Ceilings: HBM bandwidth (slope) and bf16 matmul rate (flat). A scenario's launch floor is the rate
    it would reach if it took exactly one empty kernel launch: a dash above its column of points.
    Candidates are grey dots, each baseline its own coloured letter (v vllm, V vllm-tuned, s sglang, p punica,
    t torch), the best of each scenario a green star; the roofs carry their values."""

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
        styles = {n: baseline_style(n) for n in names}
        bases = " ".join(f"[{MARKUP_COLORS.get(c, 'ansi_white')}]{m}[/] {n}" for n, (c, m) in styles.items())
        long = f"━ roof  [ansi_yellow]-[/] launch floor  · candidates  {bases}  [ansi_bright_green]*[/] best"
        marks = "".join(f"[{MARKUP_COLORS.get(c, 'ansi_white')}]{m}[/]" for c, m in styles.values())
        short = f"━roof [ansi_yellow]-[/]launch ·cand {marks} base [ansi_bright_green]*[/]best"
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
        for name, ps in v.baselines.items():
            color, mark = baseline_style(name)
            plt.scatter([p.intensity for p in ps], [p.tflops for p in ps], color=color, marker=mark)
        if v.best:
            plt.scatter([p.intensity for p in v.best], [p.tflops for p in v.best], color="green+", marker="*")
        ridge = peak / bw
        plt.text(f"{peak:.0f} TFLOP/s", x=ridge, y=peak, color="white", alignment="right")
        x_bw = x_lo * 2
        plt.text(f"{bw:.1f} TB/s", x=x_bw, y=bw * x_bw * 1.8, color="white", alignment="left")
        plt.xticks(*_decades(x_lo, x_hi))
        plt.yticks(*_decades(y_lo, peak * 2))
        if self.size.height >= TITLE_ROWS:
            plt.title("TFLOP/s (log)")
        plt.xlabel("FLOP per byte (log)")
