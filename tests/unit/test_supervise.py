import multiprocessing
import os
import time
from pathlib import Path

from supervise_tasks import die_in_init, fail_in_slot, run, set_env

from dop_tui.measure.supervise import Status, WorkerPool


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _leftover_children() -> list[str]:
    """Our child processes that are zombies or spawned workers (the multiprocessing resource tracker is neither)."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and (fields[0] == "Z" or b"spawn_main" in cmd):
            left.append(f"{stat.parent.name} {fields[0]}")
    return left


def test_mixed_batch_survives_hang_crashes_and_errors():
    tasks = [("value", 1), ("sleep", 60), ("exit", 3), ("value", 2), ("segv",), ("raise", "bad shape"), ("env",)]
    t0 = time.perf_counter()
    with WorkerPool(run, workers=2, timeout_s=1.0) as pool:
        outcomes = list(pool.map(tasks))
        pids = [pid for pid in pool.pids if pid]
        restarts = pool.restarts
    assert time.perf_counter() - t0 < 10
    assert sorted(o.index for o in outcomes) == list(range(len(tasks)))
    by = {o.index: o for o in outcomes}
    assert (by[0].status, by[0].value, by[0].error_type) == (Status.OK, 1, None)
    assert (by[3].status, by[3].value) == ("ok", 2)
    assert by[1].status == "timeout" and by[1].value is None and 1.0 <= by[1].seconds < 5
    assert (by[2].status, by[2].message) == ("crash", "exit code 3")
    assert (by[4].status, by[4].message) == ("crash", "SIGSEGV")
    assert (by[5].status, by[5].error_type, by[5].message) == ("error", "ValueError", "bad shape")
    assert by[6].status == "ok" and by[6].value[0] is None
    assert {o.worker for o in outcomes} <= {0, 1}
    assert restarts == 3
    assert multiprocessing.active_children() == []
    assert all(_gone(pid) for pid in [*pids, by[6].value[1]])
    assert _leftover_children() == []


def test_init_runs_once_per_worker_with_its_slot():
    tasks = [("env",)] * 6
    with WorkerPool(run, workers=2, init=set_env, init_args_per_worker=[("a",), ("b",)], timeout_s=5) as pool:
        outcomes = list(pool.map(tasks))
    assert {o.status for o in outcomes} == {"ok"}
    for o in outcomes:
        assert o.value[0] == f"{o.worker}:{'ab'[o.worker]}"


def test_replacement_runs_init_with_the_same_slot():
    with WorkerPool(run, workers=1, init=set_env, init_args_per_worker=[("x",)], timeout_s=5) as pool:
        first = pool.run(("env",))
        assert pool.run(("exit", 2)).message == "exit code 2"
        second = pool.run(("env",))
    assert first.value[0] == second.value[0] == "0:x"
    assert first.value[1] != second.value[1]


def test_two_workers_run_concurrently():
    with WorkerPool(run, workers=2, timeout_s=5) as pool:
        a, b = (o.value for o in pool.map([("sleep", 0.5), ("sleep", 0.5)]))
        assert min(a[1], b[1]) - max(a[0], b[0]) > 0.4  # the two sleeps overlapped
        t0 = time.perf_counter()  # both workers are ready now
        outcomes = list(pool.map([("sleep", 0.5), ("sleep", 0.5)]))
        assert time.perf_counter() - t0 < 0.9
    assert {o.worker for o in outcomes} == {0, 1}


def test_init_failure_in_one_slot_gives_it_up_and_others_carry_on():
    with WorkerPool(run, workers=2, init=fail_in_slot, init_args_per_worker=[(1,), (1,)], timeout_s=5) as pool:
        outcomes = list(pool.map([("sleep", 0.2)] * 6))  # long enough for slot 1 to fail three times
        assert pool.restarts == 2  # three attempts in slot 1
        assert pool.pids[1] is None
    assert sorted(o.index for o in outcomes) == list(range(6))
    assert {o.worker for o in outcomes} == {0} and {o.status for o in outcomes} == {"ok"}


def test_init_failure_everywhere_fails_every_task():
    with WorkerPool(run, workers=2, init=fail_in_slot, init_args_per_worker=[(0,), (1,)]) as pool:
        outcomes = list(pool.map([("value", i) for i in range(3)]))
        assert pool.restarts == 4
        assert pool.run(("value", 9)).error_type == "InitError"  # a given-up pool stays given up
    assert sorted(o.index for o in outcomes) == [0, 1, 2]
    for o in outcomes:
        assert (o.status, o.error_type, o.worker) == ("error", "InitError", -1)
        assert "init failed 3 times" in o.message and "RuntimeError: no device for slot" in o.message
    assert multiprocessing.active_children() == []


def test_worker_dying_in_init_counts_as_init_failure():
    with WorkerPool(run, workers=1, init=die_in_init, max_init_failures=2) as pool:
        (o,) = pool.map([("value", 1)])
    assert o.error_type == "InitError" and "died during init (exit code 7)" in o.message


def test_abandoned_map_kills_busy_worker():
    t0 = time.perf_counter()
    with WorkerPool(run, workers=2, timeout_s=60) as pool:
        it = pool.map([("sleep", 60), ("value", 1)])
        assert next(it).value == 1
        it.close()
        assert pool.run(("value", 2)).value == 2  # the pool is still usable
    assert time.perf_counter() - t0 < 10
    assert multiprocessing.active_children() == [] and _leftover_children() == []


def test_pick_chooses_the_task_and_may_hold_them_back():
    """``pick`` decides which pending task an idle worker takes (here the last), or none yet (here for the first
    0.2 s): held tasks wait, nothing is lost, and the pool polls again."""
    t0 = time.perf_counter()
    seen = []

    def pick(slot, pending):
        seen.append((slot, len(pending)))
        return None if time.perf_counter() - t0 < 0.2 else len(pending) - 1

    with WorkerPool(run, workers=1, timeout_s=10) as pool:
        out = list(pool.map([("value", i) for i in range(4)], pick=pick, poll_s=0.01))
    assert [o.value for o in out] == [3, 2, 1, 0]
    assert time.perf_counter() - t0 >= 0.2
    assert len([s for s in seen if s[1] == 4]) > 2  # asked again while it held them
