"""Test doubles shared by several test files."""

import numpy as np


class TinyModel:
    """Test double of ``dop_tui.cost.model.CostModel``: scores a candidate by the mean normalised throughput
    its sketch reached in training (untrained below ``min_train`` rows: zeros)."""

    def __init__(self, min_train: int = 16) -> None:
        self.min_train, self.n_train, self._table = min_train, 0, {}

    @property
    def trained(self) -> bool:
        return self.n_train >= self.min_train

    def fit(self, data):
        rows = [(s, m) for s, m in data if m.status == "ok" and m.us]
        best = {}
        for s, m in rows:
            best[s.key] = min(best.get(s.key, m.us), m.us)
        sums = {}
        for s, m in rows:
            total, n = sums.get(m.kernel, (0.0, 0))
            sums[m.kernel] = (total + best[s.key] / m.us, n + 1)
        self.n_train, self._table = len(rows), {k: t / n for k, (t, n) in sums.items()}

    def score(self, scn, items):
        return np.array([self._table.get(k, 0.0) if self.trained else 0.0 for k, _ in items])
