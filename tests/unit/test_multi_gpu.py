"""Several GPUs behind one queue: the GPU runner's round dispatch with a stand-in task (no GPU needed), and the
tuning loop over it giving the same results as one GPU."""

import pytest
from doubles import TinyModel
from supervise_tasks import fake_gpu_task, fake_pin_gpu

from dop_tui.measure.gpu_runner import GpuRunner, visible_gpus
from dop_tui.measure.runners import measure_round
from dop_tui.scenario import Scenario, make_scenario
from dop_tui.search.events import DeviceProgress, Measured
from dop_tui.search.loop import tune
from dop_tui.space import BASELINES


def _scenarios() -> list[Scenario]:
    return [
        make_scenario(op, 4096, (4096,), 16, "bf16", lens)
        for op in ("shrink", "expand")
        for lens in ([1] * 8, [4, 4, 4, 4])
    ]


def _runner(workers: int) -> GpuRunner:
    return GpuRunner(workers=workers, compile_workers=0, task_fn=fake_gpu_task, init_fn=fake_pin_gpu, do_bench=False)


def test_visible_gpus_follow_the_parents_list(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpus(2, 2) == ["0", "1"]
    assert visible_gpus(3, 1) == ["0", "0", "0"]  # more workers than GPUs share them, never a GPU that is not there
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, GPU-ab12")
    assert visible_gpus(3, 2) == ["3", "GPU-ab12", "3"]


def test_a_round_spreads_over_every_gpu_and_answers_each_item_once(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    scns = _scenarios()
    items = [(s, [(b.id, {}) for b in BASELINES if b.op == s.op]) for s in scns]
    with _runner(2) as runner:
        got = dict(measure_round(runner, items))
        loads = runner.loads()
    assert sorted(got) == list(range(len(items)))
    for i, (scn, reqs) in enumerate(items):
        assert [(m.scenario, m.kernel) for m in got[i]] == [(scn.key, k) for k, _ in reqs]
    used = {m.env["gpu"] for ms in got.values() for m in ms}
    assert used == {"2", "5"}  # pinned to the parent's entries, not to 0 and 1
    assert [d.device for d in loads] == ["gpu2", "gpu5"]
    assert sum(d.measured for d in loads) == sum(len(r) for _, r in items)
    assert all(d.in_flight == "" and d.busy_s > 0 for d in loads)


def test_invalid_requests_are_answered_without_a_worker():
    scn = _scenarios()[0]
    with _runner(2) as runner:
        ((i, ms),) = list(runner.measure_round([(scn, [("shrink/tile/dot", {"BLOCK_N": 3})])]))
    assert i == 0 and ms[0].status == "invalid"
    assert sum(d.measured for d in runner.loads()) == 0


def test_two_gpus_tune_to_the_same_measurements_as_one():
    scns = _scenarios()

    def run(workers: int) -> tuple[list, list[DeviceProgress]]:
        with _runner(workers) as runner:
            events = list(tune(scns, runner, budget=48, seed=3, model=TinyModel(), batch_size=4))
        ms = [
            (m.scenario, m.kernel, m.config, m.us) for ev in events if isinstance(ev, Measured) for m in ev.measurements
        ]
        return ms, [ev for ev in events if isinstance(ev, DeviceProgress)]

    one, one_progress = run(1)
    two, two_progress = run(2)
    assert one == two
    assert len(one) == 48 + sum(1 for s in scns for b in BASELINES if b.op == s.op)
    assert len(one_progress[-1].devices) == 1 and len(two_progress[-1].devices) == 2
    last = two_progress[-1]
    assert sum(d.measured for d in last.devices) == len(two)
    assert all(d.measured > 0 for d in last.devices)
    assert "gpu0" in last.line() and "/min" in last.line()


def test_the_short_graph_bar_is_the_best_over_all_gpus():
    """The runner hands each request its scenario's best full timing so far, from whichever GPU took it."""
    scn = _scenarios()[0]
    with _runner(2) as runner:
        first = runner.measure(scn, [("shrink/baseline/torch", {})])
        second = runner.measure(scn, [("shrink/baseline/vllm", {})] * 2)
    assert first[0].env["best_seen"] == "inf"
    assert {m.env["best_seen"] for m in second} == {str(first[0].us)}


@pytest.mark.parametrize("workers", [1, 2])
def test_measure_is_a_round_of_one(workers):
    scn = _scenarios()[1]
    reqs = [(b.id, {}) for b in BASELINES if b.op == scn.op]
    with _runner(workers) as runner:
        assert [m.kernel for m in runner.measure(scn, reqs)] == [k for k, _ in reqs]


def test_a_gpu_that_cannot_start_takes_no_request_from_the_queue(monkeypatch):
    """A worker whose GPU is unusable fails its init and its slot is given up; it never takes (and fails)
    requests the good GPU would have measured."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,gone")
    scn = _scenarios()[0]
    reqs = [(b.id, {}) for b in BASELINES if b.op == scn.op] * 3
    with _runner(2) as runner:
        ms = runner.measure(scn, reqs)
        loads = runner.loads()
    assert {m.status for m in ms} == {"ok"} and {m.env["gpu"] for m in ms} == {"0"}
    assert [d.measured for d in loads] == [len(reqs), 0]


def test_a_hang_and_a_fault_in_a_round_cost_their_requests_only():
    """Across a round on two GPUs, a kernel that never returns is a ``timeout`` and one that faults is a
    ``crash`` (its worker replaced); every other request of every scenario is measured."""
    scns = _scenarios()[:2]
    bad = [("shrink/test/hang", {}), ("shrink/test/fault", {})]
    items = [(scns[0], [*((b.id, {}) for b in BASELINES if b.op == "shrink"), *bad]),
             (scns[1], [(b.id, {}) for b in BASELINES if b.op == "shrink"])]  # fmt: skip
    runner = GpuRunner(workers=2, compile_workers=0, task_fn=fake_gpu_task, init_fn=fake_pin_gpu, do_bench=False,
                       timeout_s=2.0)  # fmt: skip
    with runner:
        got = dict(runner.measure_round(items))
        restarts = runner.pool.restarts
    statuses = {m.kernel: m.status for m in got[0]}
    assert statuses["shrink/test/hang"] == "timeout" and statuses["shrink/test/fault"] == "crash"
    assert "(CUDA fault)" in next(m.message for m in got[0] if m.kernel == "shrink/test/fault")
    assert all(m.status == "ok" for m in got[0] if "/test/" not in m.kernel)
    assert all(m.status == "ok" for m in got[1]) and restarts == 2
