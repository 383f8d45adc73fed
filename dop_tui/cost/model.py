"""The XGBoost cost model: learns from measured candidates, scores unmeasured ones (higher = predicted faster).

Training data are the ``ok``, timed, non-screening measurements of sketches (``is_trainable``), grouped by
scenario (``training_set``): only orders within a scenario matter to the search. Two objectives:

- ``"rank"``: pairwise LambdaMART (``rank:pairwise``, 8 sampled pairs per row), query groups = scenarios,
  relevance = the normalised throughput below; only the order within a scenario is learned.
- ``"regression"``: Ansor's label, normalised throughput ``y = min_g(us) / us`` in (0, 1] per scenario ``g``,
  fitted with squared error weighted by ``y`` (fast candidates dominate the loss, as in Ansor's model).

Default ``"rank"``, from grouped 5-fold cross-validation on the H200 decode session (204 scenarios held out
whole, ``bench/results/cost_model_cv.md``): trained on 1,000 or 3,000 rows, the sizes a search retrains on,
it beats the regression on Spearman, pairwise accuracy and top-1 recall and ties it on top-10 recall; the
evolutionary search selects parents by score over the whole population, so the global order matters too.
The regression only pulls ahead on top-k recall with all 17,000 rows of the session (a warm start from
screening data may prefer it). Also tried: the default top-k pair method (as good at 3,000 rows, Spearman
0.93 instead of 0.98 on all rows) and ``rank:ndcg`` on graded labels (Spearman 0.87, no better top-k).

The model retrains from scratch on every ``fit`` (Ansor does the same); below ``min_train`` usable rows it
stays untrained and ``score`` returns seeded random scores (a random ranking, stable per seed, scenario and
candidate) instead of pretending. Trees use ``NTHREAD`` threads and the seed: fits are deterministic.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from dop_tui.cost.features import feature_names, featurize_many
from dop_tui.measure.record import Measurement
from dop_tui.scenario import Scenario
from dop_tui.space.device import DEFAULT_DEVICE, DeviceSpec

OBJECTIVES = ("rank", "regression")
FORMAT = "dop-cost-model"
VERSION = 1
# One thread: on a 2-core machine shared with the runner and the UI, two OpenMP threads measured 3x slower.
NTHREAD = 1
ROUNDS = 200
TREE = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "min_child_weight": 1.0, "max_bin": 128}
OBJECTIVE_PARAMS: dict[str, dict[str, Any]] = {
    "rank": {"objective": "rank:pairwise", "lambdarank_pair_method": "mean", "lambdarank_num_pair_per_sample": 8},
    "regression": {"objective": "reg:squarederror"},
}

Item = tuple[str, Mapping[str, int]]


def is_trainable(m: Measurement, *, screening: bool = False) -> bool:
    """An ``ok``, timed measurement of a sketch (not a baseline); screening times only when asked for."""
    return (
        m.status == "ok"
        and m.us is not None
        and m.us > 0
        and "/baseline/" not in m.kernel
        and (screening or not m.screening)
    )


@dataclass(frozen=True)
class TrainingSet:
    """Feature rows ``X[n, F]``, times ``us[n]`` and scenario group ids ``groups[n]`` (rows of a group are
    contiguous, ids count up from 0 in the order of ``keys``)."""

    X: np.ndarray
    us: np.ndarray
    groups: np.ndarray
    keys: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.us)

    def take(self, rows: np.ndarray) -> TrainingSet:
        """The given rows (in group order), groups renumbered from 0."""
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        kept, groups = np.unique(self.groups[rows], return_inverse=True)
        return TrainingSet(self.X[rows], self.us[rows], groups, tuple(self.keys[g] for g in kept))


def training_set(data: Iterable[tuple[Scenario, Measurement]], device: DeviceSpec) -> TrainingSet:
    """Featurize ``(scenario, measurement)`` pairs, grouped by scenario in first-seen order. The caller
    selects the measurements (``is_trainable``); this only builds the matrix."""
    scenarios: dict[str, Scenario] = {}
    rows: dict[str, list[Measurement]] = {}
    for scn, m in data:
        scenarios.setdefault(scn.key, scn)
        rows.setdefault(scn.key, []).append(m)
    if not rows:
        return TrainingSet(np.zeros((0, len(feature_names()))), np.zeros(0), np.zeros(0, dtype=np.int64), ())
    X = [featurize_many(scenarios[k], [(m.kernel, m.config) for m in ms], device) for k, ms in rows.items()]
    us = np.array([m.us for ms in rows.values() for m in ms], dtype=np.float64)
    groups = np.repeat(np.arange(len(rows)), [len(ms) for ms in rows.values()])
    return TrainingSet(np.vstack(X), us, groups, tuple(rows))


def normalised_throughput(us: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``min(us of the row's group) / us``: 1 for the fastest of each group, in (0, 1]."""
    best = np.full(groups.max() + 1, np.inf)
    np.minimum.at(best, groups, us)
    return best[groups] / us


def _random_scores(seed: int, scn: Scenario, items: Sequence[Item]) -> np.ndarray:
    """Uniform [0, 1) scores from a hash of (seed, scenario, candidate): random, order-independent, repeatable."""
    out = np.empty(len(items))
    for i, (kernel, config) in enumerate(items):
        text = f"{seed}|{scn.key}|{kernel}|{sorted(config.items())}"
        out[i] = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") / 2.0**64
    return out


class CostModel:
    """XGBoost model over ``features.feature_names()``; ``score`` is higher for candidates predicted faster."""

    def __init__(
        self, objective: str = "rank", seed: int = 0, min_train: int = 32, *, device: DeviceSpec = DEFAULT_DEVICE,
        screening: bool = False,
    ) -> None:  # fmt: skip
        """``screening=True`` also learns from screening-pass times (``is_trainable``): a replay of a dataset
        whose candidates were mostly screened answers with those, consistent within a scenario."""
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")
        self.objective, self.seed, self.min_train, self.device = objective, seed, min_train, device
        self.screening = screening
        self._booster: xgb.Booster | None = None
        self._n_train = 0
        self._warm: list[tuple[Scenario, Measurement]] = []  # a warm start's data, kept in every later fit

    @property
    def trained(self) -> bool:
        return self._booster is not None

    @property
    def n_train(self) -> int:
        """Usable rows given to the last fit (the model is untrained while this is below ``min_train``)."""
        return self._n_train

    def fit(self, data: Iterable[tuple[Scenario, Measurement]]) -> None:
        """Retrain from scratch on the trainable measurements of ``data`` (``is_trainable``), plus those of the
        examples the model was warm-started with (``warm_started``), so a warm start informs the whole job."""
        pairs = [*self._warm, *data]
        self.fit_set(training_set(((s, m) for s, m in pairs if is_trainable(m, screening=self.screening)), self.device))

    def fit_set(self, ts: TrainingSet) -> None:
        """Retrain from scratch on a prepared training set; fewer than ``min_train`` rows leave it untrained."""
        self._n_train = len(ts)
        if len(ts) < max(1, self.min_train):
            self._booster = None
            return
        y = normalised_throughput(ts.us, ts.groups)
        dm = xgb.DMatrix(ts.X, label=y, nthread=NTHREAD)
        if self.objective == "rank":
            dm.set_group(np.bincount(ts.groups))
        else:
            dm.set_weight(y)
        params = {**TREE, **OBJECTIVE_PARAMS[self.objective], "seed": self.seed, "nthread": NTHREAD}
        self._booster = xgb.train(params, dm, num_boost_round=ROUNDS)

    def score(self, scn: Scenario, items: Sequence[Item]) -> np.ndarray:
        """Scores of ``(sketch id, config)`` items of one scenario, higher = predicted faster; seeded random
        scores while untrained."""
        if self._booster is None or not items:
            return _random_scores(self.seed, scn, items)
        return self.predict(featurize_many(scn, items, self.device))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scores of feature rows (a trained model only)."""
        if self._booster is None:
            raise RuntimeError("the cost model is untrained")
        return self._booster.predict(xgb.DMatrix(X, nthread=NTHREAD)).astype(np.float64)

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """One JSON file, written atomically: the settings, the feature layout and the booster (UBJSON, base64).
        A warm start's data is not saved: a loaded model scores as saved, and a retrain learns from new data
        only (warm-start from the session instead to keep it)."""
        booster = None if self._booster is None else base64.b64encode(self._booster.save_raw("ubj")).decode()
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "objective": self.objective,
            "seed": self.seed,
            "min_train": self.min_train,
            "screening": self.screening,
            "n_train": self._n_train,
            "device": asdict(self.device),
            "features": feature_names(),
            "booster": booster,
        }
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, path)  # atomic: a crash leaves the previous model whole

    @classmethod
    def load(cls, path: str | Path) -> CostModel:
        """A model saved by ``save``; ValueError when the file is not one or its feature layout is outdated."""
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read cost model {path}: {exc}") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("version") != VERSION:
            raise ValueError(f"{path} is not a version-{VERSION} dop cost model")
        if d["features"] != feature_names():
            raise ValueError(f"{path} was trained on another feature layout: retrain it")
        model = cls(d["objective"], d["seed"], d["min_train"], device=DeviceSpec(**d["device"]),
                    screening=bool(d.get("screening", False)))  # fmt: skip
        model._n_train = d["n_train"]
        if d["booster"] is not None:
            model._booster = xgb.Booster(params={"nthread": NTHREAD})
            model._booster.load_model(bytearray(base64.b64decode(d["booster"])))
        return model

    @classmethod
    def warm_started(cls, examples: Iterable[tuple[Scenario, Measurement]], **kw: Any) -> CostModel:
        """Warm start: a model fitted on earlier ``(scenario, measurement)`` pairs (a session's, say); they stay
        in its training data when it is retrained on new measurements. ``kw`` as the constructor takes them."""
        model = cls(**kw)
        model._warm = list(examples)
        model.fit(())
        return model
