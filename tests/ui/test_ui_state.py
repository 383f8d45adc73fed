"""The workbench's aggregation of events (pure Python: no Textual, no runner)."""

from __future__ import annotations

import math

import pytest

from dop_tui.cost.metrics import ModelMetrics
from dop_tui.measure.record import Measurement
from dop_tui.scenario import OPS, make_scenario, scenario_label
from dop_tui.search.events import (
    CandidatesProposed,
    Finished,
    JobStarted,
    Measured,
    ModelRetrained,
    NewBest,
    RoundDone,
    RoundStarted,
)
from dop_tui.space import Candidate
from dop_tui.ui.state import Prior, Scope, Workbench, geomean, scenario_labels, short_config

A = "shrink-4096x16-r16-bf16-t8s8-distinct-0123abcd"
B = "shrink-4096x16-r16-bf16-t64s9-skewed-89abcdef"
SPLITK, TILE = "shrink/splitk/dot", "shrink/tile/dot"


def m(scenario: str, kernel: str, us: float | None, status: str = "ok", **kw: object) -> Measurement:
    cfg = {"BLOCK_K": 256, "num_warps": 4} if "/baseline/" not in kernel else {}
    return Measurement(scenario, kernel, cfg, status, us=us, bytes=1e6, flops=2e6, floor_us=0.25, **kw)


def base(scenario: str, vllm: float, punica: float) -> Measured:
    return Measured(
        0, scenario, (m(scenario, "shrink/baseline/vllm", vllm), m(scenario, "shrink/baseline/punica", punica))
    )


def job() -> Workbench:
    """Two scenarios; baselines; one round of two sketches each; the model's metrics; a new best; the end."""
    wb = Workbench()
    events = [
        JobStarted({"name": "unit", "ops": ["shrink"]}, (A, B), 100, "evolution", "replay of x.json.gz", "NVIDIA H200"),
        RoundStarted(0, (A, B), 0),
        base(A, vllm=8.0, punica=10.0),
        base(B, vllm=20.0, punica=16.0),
        RoundDone(0, 0, 1.0),
        RoundStarted(1, (A, B), 0),
        CandidatesProposed(
            1,
            A,
            (Candidate.make(SPLITK, {"BLOCK_K": 256}), Candidate.make(TILE, {"BLOCK_K": 64})),
            (0.9, 0.2),
            population=((SPLITK, 3), (TILE, 1)),
        ),
        Measured(1, A, (m(A, SPLITK, 4.0), m(A, TILE, 16.0)), (0.9, 0.2)),
        CandidatesProposed(1, B, (Candidate.make(TILE, {"BLOCK_K": 64}),), (0.5,), population=((TILE, 4),)),
        Measured(1, B, (m(B, TILE, 8.0), m(B, SPLITK, None, "wrong", message="rel error 0.3")), (0.5, 0.1)),
        ModelRetrained(1, 40, ModelMetrics(2, 0.8, 0.9, 0.5, k=2)),
        NewBest(1, A, m(A, SPLITK, 4.0), None),
        RoundDone(1, 4, 3.0),
        Finished("budget", 4, 3.5),
    ]
    for ev in events:
        wb.apply(ev)
    return wb


def test_header_and_tree_figures() -> None:
    wb = job()
    h = wb.header_view()
    assert (h.job, h.state, h.round, h.budget_used, h.spent_here, h.scenarios) == ("unit", "finished", 1, 4, 4, 2)
    # speedups compare with the best baseline of each scenario: A 8/4 = 2, B 16/8 = 2
    assert h.best_speedup == pytest.approx(2.0) and h.scored == 2
    assert h.delta is None and h.delta_cases == 0  # JobStarted gave no scenarios: no LoRA delta to show
    shrink = wb.node_stats("shrink")
    assert shrink.measured == 4 and shrink.best_speedup == pytest.approx(2.0) and shrink.share == 1.0
    splitk = wb.node_stats(SPLITK)
    assert splitk.measured == 2 and splitk.best_speedup == pytest.approx(2.0)  # only A has a timed split-K
    assert splitk.share == pytest.approx(3 / 8) and splitk.statuses == {"ok": 1, "wrong": 1}
    assert wb.node_stats(TILE, A).best_us == 16.0 and wb.node_stats(TILE, A).share == pytest.approx(1 / 4)
    assert wb.node_stats("", B).best_us == 8.0


def test_fitness_view() -> None:
    v = job().fitness_view(Scope())
    assert v.rounds == [1]
    assert v.measured_best == [pytest.approx(2.0)]
    assert v.measured_median == [pytest.approx(2.0)]  # A: 2.0, 0.5; B: 2.0
    assert v.predicted_best == [0.9] and v.predicted_median == [0.5]
    assert v.best_so_far == [pytest.approx(2.0)]
    assert v.baselines == {"vllm": pytest.approx(math.sqrt(1.0 * 0.8)), "punica": pytest.approx(math.sqrt(0.8))}
    tile = job().fitness_view(Scope(TILE, A))
    assert tile.measured_best == [pytest.approx(0.5)] and tile.predicted_best == [0.2]


def test_cost_and_accuracy_views() -> None:
    wb = job()
    v = wb.cost_view(Scope())
    assert v.round == 1 and sorted(zip(v.predicted, v.measured, strict=True)) == [(0.2, 0.5), (0.5, 2.0), (0.9, 2.0)]
    assert [(a.round, a.spearman, a.topk_recall, a.k, a.n_train) for a in v.accuracy] == [(1, 0.8, 0.5, 2, 40)]
    assert wb.n_train == 40


def test_roofline_view_uses_the_measurements_own_rates() -> None:
    v = job().roofline_view(Scope(), launch_us=0.5)
    assert len(v.candidates) == 3 and {p.intensity for p in v.candidates} == {2.0}
    assert v.candidates[0].tflops == pytest.approx(2e6 / 4.0 / 1e6)
    assert set(v.baselines) == {"vllm", "punica"} and len(v.baselines["vllm"]) == 2
    assert len(v.best) == 2
    assert v.launch_caps[0].tflops == pytest.approx(2e6 / 0.5e-6 / 1e12)


def test_leaderboard_rows() -> None:
    wb = job()
    rows = wb.leaderboard(Scope())
    assert [(r.scenario, r.kernel, r.us) for r in rows] == [(A, SPLITK, 4.0), (B, TILE, 8.0)]
    assert rows[0].speedup == {"vllm": 2.0, "punica": 2.5} and rows[0].floor_fraction == pytest.approx(0.25 / 4)
    one = wb.leaderboard(Scope("", A))
    assert [r.us for r in one] == [4.0, 16.0]
    assert wb.leaderboard(Scope("shrink/tile", A))[0].kernel == TILE


def test_log_has_one_line_per_round_and_every_failed_measurement() -> None:
    wb = job()
    kinds = [e.kind for e in wb.log]
    assert kinds.count("round") == 2 and kinds.count("best") == 1 and kinds.count("model") == 1
    (error,) = wb.log_entries("error")
    assert "wrong" in error.text and "rel error 0.3" in error.text and "K256" in error.text
    assert "round 1: 4 measured (3 ok, 1 wrong)" in wb.log_entries("round")[1].text
    assert "finished (budget)" in wb.log[-1].text and "2.00x" in wb.log[-1].text


def test_a_resumed_sessions_prior_is_shown() -> None:
    wb = Workbench()
    wb.apply(
        Prior(
            (m(A, "shrink/baseline/vllm", 8.0), m(A, SPLITK, 2.0)),
            ({"round": 1, "n_train": 5, "metrics": {"n": 3, "spearman": 0.5, "pairwise": 0.6, "topk_recall": 1.0}},),
        )
    )
    assert wb.node_stats(SPLITK).measured == 1 and wb.reference_us(A) == 8.0
    assert wb.accuracy[0].spearman == 0.5 and "2 measurements in 1 rounds" in wb.log[-1].text


def test_labels_and_helpers() -> None:
    assert scenario_label(A) == "shrink 4096x16 r16 bf16 t8s8 distinct"
    assert scenario_label(A, short=True) == "shrink 4096x16 r16 T8 distinct"
    assert scenario_labels([A, B]) == {A: "shrink T8 distinct", B: "shrink T64 skewed"}
    assert scenario_label("not-a-key") == "not a key"
    assert short_config({"num_warps": 4, "BLOCK_M": 16, "SPLIT_K": 8, "extra": 1}) == "M16 SK8 w4 extra1"
    assert geomean([2.0, 8.0]) == pytest.approx(4.0) and geomean([]) is None


def test_header_shows_the_lora_delta_against_the_best_baseline_per_case() -> None:
    lens = [1, 1]
    specs = [make_scenario(op, 4096, (4096,), 16, "bf16", lens, workload="distinct") for op in OPS]
    shrink, expand, fused = (s.key for s in specs)  # OPS order
    wb = Workbench()
    for ev in (
        JobStarted({"name": "delta"}, tuple(s.key for s in specs), 10, "evolution", "gpu", "H200", 0, tuple(specs)),
        Measured(0, fused, (m(fused, "fused/baseline/vllm", 12.0), m(fused, "fused/baseline/sglang", 9.0))),
        Measured(1, shrink, (m(shrink, "shrink/tile/dot", 2.0),)),
    ):
        wb.apply(ev)
    assert wb.header_view().delta is None  # no expand yet: no delta case
    wb.apply(Measured(1, expand, (m(expand, "expand/tile/dot", 1.0),)))
    h = wb.header_view()
    assert h.delta_cases == 1 and h.delta.n == 1 and h.delta.geomean == pytest.approx(3.0)  # sglang 9 / (2 + 1)


def test_a_reopened_session_keeps_its_rounds_and_its_clock() -> None:
    """Search measurements land in their rounds by the rounds' budgets: the fitness chart has every round."""
    wb = Workbench()
    wb.scenarios = (A,)
    prior = (
        m(A, "shrink/baseline/vllm", 8.0),
        m(A, SPLITK, 6.0), m(A, SPLITK, 5.0),  # round 1: budget 2
        m(A, TILE, 4.0), m(A, TILE, 3.0), m(A, TILE, 2.0),  # round 2: budget 5
    )  # fmt: skip
    rounds = ({"round": 0, "budget_used": 0, "elapsed_s": 0.5}, {"round": 1, "budget_used": 2, "elapsed_s": 3.0},
              {"round": 2, "budget_used": 5, "elapsed_s": 7.5})  # fmt: skip
    wb.apply(Prior(prior, rounds))
    fit = wb.fitness_view(Scope())
    assert fit.rounds == [1, 2] and fit.best_so_far == [pytest.approx(8 / 5), pytest.approx(8 / 2)]
    assert (wb.round, wb.budget_used, wb.elapsed_s) == (2, 5, 7.5)


def test_several_devices_show_their_rates_while_running_and_in_each_round_line() -> None:
    from dop_tui.measure.record import DeviceLoad
    from dop_tui.search.events import DeviceProgress

    wb = Workbench()
    wb.apply(JobStarted({"name": "two"}, (A,), 100, "evolution", "gpu", "NVIDIA H200"))
    wb.apply(RoundStarted(1, (A,), 0))
    wb.apply(DeviceProgress(1, 30.0, (DeviceLoad("gpu0", 100, 29.0, A), DeviceLoad("gpu1", 90, 28.0))))
    assert wb.header_view().devices == "gpu0 200/min · gpu1 180/min"
    wb.apply(RoundDone(1, 190, 30.0))
    assert wb.log[-1].text.endswith("; gpu0 200/min · gpu1 180/min")
    wb.apply(Finished("budget", 190, 31.0, notes=("compile pool (2 CPU processes): 190 kernels",)))
    assert wb.header_view().devices == ""  # rates of a job that no longer runs would mislead
    assert wb.log[-1].text == "compile pool (2 CPU processes): 190 kernels"  # the runner's notes end the log
    assert wb.log[-2].text.startswith("finished (budget)")
    one = Workbench()
    one.apply(JobStarted({"name": "one"}, (A,), 100, "evolution", "gpu", "NVIDIA H200"))
    one.apply(DeviceProgress(1, 30.0, (DeviceLoad("gpu0", 100, 29.0, A),)))
    assert one.header_view().devices == ""  # one device: the header's rate says it all
