"""Grouped k-fold cross-validation of the cost model on a session: whole scenarios are held out.

    python bench/cost_model_cv.py SESSION [--folds 5] [--seed 0] [--train-rows 1000,3000,all]
                                  [--static-cache FILE] [--out bench/results/cost_model_cv.md]

Ground truth: every ``ok`` timed sketch measurement, screening passes included (``is_trainable(...,
screening=True)``). When a session holds both a screening time and a full re-timing of a candidate, only the
screening time is kept, so every scenario is ranked by one timing method (screening times are consistent
within a scenario, which is all a ranking needs). ``CostModel.fit`` itself never trains on screening times;
this script builds the same training matrix (``training_set``) over its own selection.

Each fold trains on the other folds' scenarios, optionally on a seeded random sample of their rows (a search
retrains on hundreds to a few thousand measurements), and scores the held-out scenarios; the metrics
(``dop_tui.cost.metrics.evaluate``) pool the held-out scores of all folds. Fit time: median wall seconds of
``CostModel.fit_set`` over the folds. Two references need no training: seeded random scores (what an
untrained model does) and "fewest tile steps" (score = minus the ``steps`` feature, the best single analytic
feature on the H200 session).

``--static-cache FILE`` adds the static features of the compiled kernel (registers per thread and shared
memory of the sm_90 compile, ``dop_tui.measure.aot.compile_kernel``) as two extra columns and repeats every
model row with them. Compiles run in worker processes without ``TRITON_INTERPRET`` and are cached in FILE
(JSON), one per (op, shapes, rank, dtypes, accumulate, sketch, config): the segment layout does not change
the compiled code of these sketches beyond the walk kernel's segment-count specialisation.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dop_tui.cost.features import feature_names
from dop_tui.cost.metrics import evaluate
from dop_tui.cost.model import OBJECTIVES, CostModel, TrainingSet, is_trainable, training_set
from dop_tui.measure.record import Measurement
from dop_tui.scenario import Scenario
from dop_tui.session.store import Session, load
from dop_tui.space.device import device_for_name

Row = dict[str, float | str | None]
Scorer = Callable[[TrainingSet, TrainingSet], tuple[np.ndarray, float]]


def ground_truth(session: Session) -> tuple[TrainingSet, list[Measurement]]:
    """One time per (scenario, candidate): the screening time when there is one, else the full time. Also
    returns the chosen measurements in the training set's row order."""
    chosen: dict[tuple, Measurement] = {}
    for m in session.measurements:
        if m.scenario not in session.scenarios or not is_trainable(m, screening=True):
            continue
        if m.key not in chosen or (m.screening and not chosen[m.key].screening):
            chosen[m.key] = m
    by_scenario: dict[str, list[Measurement]] = {}
    for m in chosen.values():
        by_scenario.setdefault(m.scenario, []).append(m)
    rows = [m for ms in by_scenario.values() for m in ms]
    ts = training_set(((session.scenarios[m.scenario], m) for m in rows), device_for_name(session.device))
    return ts, rows


def _compile_key(scn: Scenario, m: Measurement) -> str:
    shape = (scn.op, scn.h_in, scn.h_outs, scn.rank, scn.dtype, scn.inter_dtype, scn.accumulate)
    return json.dumps([*shape, m.kernel, sorted(m.config.items())])


def _compile(job: tuple[str, dict, dict]) -> tuple[str, dict[str, int | str]]:
    from dop_tui.measure.aot import compile_kernel

    kernel, scn, config = job
    try:
        launches = compile_kernel(kernel, Scenario.from_json(scn), config)
    except Exception as exc:  # a failed compile is recorded, not fatal
        return kernel, {"error": f"{type(exc).__name__}: {exc}"}
    return kernel, {
        "registers": max(x.registers or 0 for x in launches),
        "shared": sum(x.shared_bytes for x in launches),
    }


def static_columns(session: Session, rows: list[Measurement], cache: Path) -> np.ndarray:
    """``[registers, shared bytes]`` per row from the sm_90 compile, NaN where it failed; compiles what the
    cache lacks (2 worker processes) and saves the cache."""
    known = json.loads(cache.read_text()) if cache.exists() else {}
    todo = {}
    for m in rows:
        key = _compile_key(session.scenarios[m.scenario], m)
        if key not in known:
            todo[key] = (m.kernel, session.scenarios[m.scenario].to_json(), m.config)
    if todo:
        os.environ.pop("TRITON_INTERPRET", None)  # inherited by the workers: compiles need the real backend
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            for key, (_, res) in zip(todo, pool.imap(_compile, todo.values(), chunksize=4), strict=True):
                known[key] = res
        cache.write_text(json.dumps(known))
    out = [known[_compile_key(session.scenarios[m.scenario], m)] for m in rows]
    return np.array([[r.get("registers", np.nan), r.get("shared", np.nan)] for r in out], dtype=np.float64)


def cross_validate(ts: TrainingSet, scorer: Scorer, folds: int, train_rows: int | None, seed: int) -> Row:
    """Pooled held-out metrics of ``scorer(train, test) -> (scores, fit seconds)`` over grouped folds."""
    rng = np.random.default_rng(seed)
    scores, us, groups, fit_s, n_train = [], [], [], [], []
    for held in np.array_split(rng.permutation(len(ts.keys)), folds):
        is_held = np.isin(ts.groups, held)
        train_idx = np.flatnonzero(~is_held)
        if train_rows is not None and train_rows < len(train_idx):
            train_idx = rng.choice(train_idx, train_rows, replace=False)
        train, test = ts.take(train_idx), ts.take(np.flatnonzero(is_held))
        s, seconds = scorer(train, test)
        scores.append(s)
        us.append(test.us)
        groups.extend(test.keys[g] for g in test.groups)
        fit_s.append(seconds)
        n_train.append(len(train))
    s, t = np.concatenate(scores), np.concatenate(us)
    top1, top10 = evaluate(s, t, groups, k=1), evaluate(s, t, groups, k=10)
    return {
        "train rows": f"{statistics.median(n_train):.0f}",
        "spearman": top10.spearman,
        "pairwise": top10.pairwise,
        "top-1 recall": top1.topk_recall,
        "top-10 recall": top10.topk_recall,
        "fit (s)": statistics.median(fit_s),
    }


def model_scorer(objective: str, seed: int) -> Scorer:
    """``CostModel.fit_set`` on the fold's training rows (whatever their columns), scores of the test rows."""

    def scorer(train: TrainingSet, test: TrainingSet) -> tuple[np.ndarray, float]:
        model = CostModel(objective, seed=seed, min_train=1)
        t0 = time.perf_counter()
        model.fit_set(train)
        seconds = time.perf_counter() - t0
        return model.predict(test.X), seconds

    return scorer


def random_scorer(seed: int) -> Scorer:
    rng = np.random.default_rng(seed)
    return lambda train, test: (rng.random(len(test)), 0.0)


def fewest_steps(train: TrainingSet, test: TrainingSet) -> tuple[np.ndarray, float]:
    return -test.X[:, feature_names().index("steps")], 0.0


def table(rows: dict[str, Row]) -> str:
    cols = list(next(iter(rows.values())))
    lines = ["| scorer | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        cells = ["-" if v is None else v if isinstance(v, str) else f"{v:.3f}" for v in r.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("session", type=Path)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-rows", default="1000,3000,all", help="training rows per fold, comma-separated")
    p.add_argument("--static-cache", type=Path, help="also compare static features, compiled into this cache")
    p.add_argument("--out", type=Path, default=Path("bench/results/cost_model_cv.md"))
    args = p.parse_args()
    session = load(args.session)
    ts, measured = ground_truth(session)
    feature_sets = {"": ts}
    if args.static_cache:
        extra = static_columns(session, measured, args.static_cache)
        rows = np.flatnonzero(~np.isnan(extra).any(axis=1))  # a failed compile drops the row from both sets
        wide = TrainingSet(np.c_[ts.X, extra], ts.us, ts.groups, ts.keys)
        feature_sets = {"": ts.take(rows), " + static": wide.take(rows)}
    base = feature_sets[""]
    sizes = [None if s == "all" else int(s) for s in args.train_rows.split(",")]
    results = {
        "random (untrained)": cross_validate(base, random_scorer(args.seed), args.folds, None, args.seed),
        "fewest tile steps": cross_validate(base, fewest_steps, args.folds, None, args.seed),
    }
    for n in sizes:
        for obj in OBJECTIVES:
            for suffix, data in feature_sets.items():
                name = f"{obj}{suffix}, {'all' if n is None else n} rows"
                results[name] = cross_validate(data, model_scorer(obj, args.seed), args.folds, n, args.seed)
    static = f" --static-cache {args.static_cache}" if args.static_cache else ""
    text = (
        f"# Cost model: grouped {args.folds}-fold cross-validation\n\n"
        f"`python bench/cost_model_cv.py {args.session} --folds {args.folds} --seed {args.seed} "
        f"--train-rows {args.train_rows}{static}`\n\n"
        f"{len(base)} timed sketch candidates of {len(base.keys)} scenarios ({session.device}). Whole scenarios "
        "are held out per fold. Ground truth: screening times (one timing method per scenario). Metrics within "
        "each held-out scenario, pooled over folds; fit: median wall seconds per fold (XGBoost on one thread).\n\n"
        + table(results)
        + "\n"
    )
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
