"""Accuracy of a cost model's ranking against measured throughput, within each scenario."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelMetrics:
    """Accuracy of the cost model on candidates it had not been trained on (truly out of sample)."""

    n: int  # measurements scored
    spearman: float | None  # rank correlation of predicted score with measured throughput, within scenario
    pairwise: float | None  # fraction of same-scenario pairs ordered correctly
    topk_recall: float | None  # share of the measured top-k that the model also ranked in its top-k
    k: int = 10


def _ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions), 0-based."""
    order = np.argsort(a, kind="stable")
    sorted_a = a[order]
    starts = np.flatnonzero(np.r_[True, sorted_a[1:] != sorted_a[:-1]])
    ends = np.r_[starts[1:], len(a)]
    ranks = np.empty(len(a))
    ranks[order] = np.repeat((starts + ends - 1) / 2.0, ends - starts)
    return ranks


def _spearman(score: np.ndarray, thr: np.ndarray) -> float:
    """Pearson correlation of average ranks; 0 when the scores are constant (they rank nothing)."""
    rs, rt = _ranks(score), _ranks(thr)
    rs, rt = rs - rs.mean(), rt - rt.mean()
    denom = np.sqrt((rs * rs).sum() * (rt * rt).sum())
    return float((rs * rt).sum() / denom) if denom > 0 else 0.0


def _pairs(score: np.ndarray, us: np.ndarray) -> tuple[float, int]:
    """(correctly ordered, compared) over pairs with different times; a score tie counts one half."""
    faster = us[:, None] < us[None, :]  # i strictly faster than j
    right = (score[:, None] > score[None, :]) + 0.5 * (score[:, None] == score[None, :])
    return float(right[faster].sum()), int(faster.sum())


def _top_share(better: np.ndarray, m: int) -> np.ndarray:
    """Probability that each item is among the ``m`` highest of ``better`` when ties are broken at random."""
    cut = np.sort(better)[::-1][m - 1]
    above, tied = better > cut, better == cut
    return above + tied * ((m - above.sum()) / tied.sum())


def _topk_recall(score: np.ndarray, us: np.ndarray, k: int) -> float:
    """Expected share of the measured top-min(k, n) also in the predicted top-min(k, n), ties broken at random."""
    m = min(k, len(us))
    return float((_top_share(score, m) * _top_share(-us, m)).sum() / m)


def evaluate(scores: Sequence[float], us: Sequence[float], groups: Sequence[Hashable], k: int = 10) -> ModelMetrics:
    """Ranking accuracy of ``scores`` (higher = predicted faster) against measured ``us`` within each group.

    Throughput is ``1 / us``. Groups with fewer than 2 items are skipped, and so are groups whose times are
    all equal (nothing to rank). Per remaining group ``g`` of ``n_g`` items:

    - spearman: rank correlation of score and throughput (average ranks for ties; 0 when the scores are
      constant), averaged with weights ``n_g``;
    - pairwise: over all same-group pairs with different times, the fraction whose scores order them as the
      times do (a score tie counts one half);
    - top-k recall: ``|measured top-m & predicted top-m| / m`` with ``m = min(k, n_g)``, averaged over groups;
      ties (in scores or times) at the cut are broken at random and the expectation is taken, so neither the
      order of the items nor a model that scores many candidates alike can bias it.

    Each is None when no group qualifies. ``n`` counts every item given.
    """
    s, t = np.asarray(scores, dtype=np.float64), np.asarray(us, dtype=np.float64)
    if not len(s) == len(t) == len(groups):
        raise ValueError(f"scores, us and groups differ in length: {len(s)}, {len(t)}, {len(groups)}")
    index: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        index.setdefault(g, []).append(i)
    rho_sum = weight = right = pairs = 0.0
    recalls = []
    for rows in index.values():
        gs, gt = s[rows], t[rows]
        if len(rows) < 2 or np.all(gt == gt[0]):
            continue
        rho_sum += len(rows) * _spearman(gs, 1.0 / gt)
        weight += len(rows)
        r, p = _pairs(gs, gt)
        right, pairs = right + r, pairs + p
        recalls.append(_topk_recall(gs, gt, k))
    return ModelMetrics(
        n=len(s),
        spearman=rho_sum / weight if weight else None,
        pairwise=right / pairs if pairs else None,
        topk_recall=float(np.mean(recalls)) if recalls else None,
        k=k,
    )
