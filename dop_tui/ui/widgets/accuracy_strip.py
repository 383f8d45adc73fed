"""The cost model's accuracy per round: Spearman and top-k recall as labelled sparklines."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from dop_tui.ui.state import AccuracyPoint


class AccuracyStrip(Vertical):
    """Two rows, each the latest figure and its history over rounds (out-of-sample: each round's
    measurements scored before the model trains on them)."""

    FIGURES = (("spearman", "Spearman"), ("topk_recall", "top-k recall"))

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: dict[str, tuple[str, list[float]]] = {}

    def compose(self) -> ComposeResult:
        for key, _ in self.FIGURES:
            with Horizontal(classes="accuracy-row"):
                yield Label(id=f"accuracy-{key}-label", classes="accuracy-label")
                yield Sparkline([], id=f"accuracy-{key}")

    def show(self, points: list[AccuracyPoint], n_train: int) -> None:
        """``points`` per round; ``n_train`` says how much the model has learnt from while none exist."""
        self.tooltip = None if points else f"no accuracy yet: the model has {n_train} training measurements"
        for key, title in self.FIGURES:
            values = [getattr(p, key) for p in points if getattr(p, key) is not None]
            last = points[-1] if points else None
            if key == "topk_recall" and last is not None:
                title = f"top-{last.k} recall"
            figure = f"{values[-1]:5.2f}" if values else "    -"
            label = f"{title:<13}{figure}"
            if self._shown.get(key) != (label, values):
                self._shown[key] = (label, values)
                self.query_one(f"#accuracy-{key}-label", Label).update(label, layout=False)
                spark = self.query_one(f"#accuracy-{key}", Sparkline)
                spark.data = values
                spark.styles.max_width = max(1, len(values))  # one cell per round, never stretched
                spark.display = bool(values)
