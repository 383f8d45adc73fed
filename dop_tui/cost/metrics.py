"""Accuracy of a cost model's ranking against measured throughput, within each scenario."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelMetrics:
    """Accuracy of the cost model on candidates it had not been trained on (truly out of sample)."""

    n: int  # measurements scored
    spearman: float | None  # rank correlation of predicted score with measured throughput, within scenario
    pairwise: float | None  # fraction of same-scenario pairs ordered correctly
    topk_recall: float | None  # share of the measured top-k that the model also ranked in its top-k
    k: int = 10
