"""GPU runner: check, then time, each request in supervised GPU worker processes.

Before the GPU sees a request, a pool of CPU processes compiles it into Triton's cache
(``compile_pool.CompilePool``; ``prefetch`` lets the next scenario compile while this one is measured). Then
one worker process per visible GPU (pinned in its init to one entry of the parent's ``CUDA_VISIBLE_DEVICES``),
fed by ``supervise.WorkerPool`` from one queue: ``measure_round`` takes a whole round's requests across
scenarios, and each idle GPU takes the first request whose compile is done, preferring a scenario it has
already built (so no GPU waits for another's scenario, and operands are built once per GPU). The bar for a
short graph is the scenario's best full timing on any GPU so far, so it does not depend on which GPU measured
what; each measurement's ``env["gpu"]`` names the GPU. Workers are supervised: a kernel that hangs is killed
after ``timeout_s`` (``timeout``), one that faults takes its worker down (``crash``; a CUDA error poisons the
context, so the worker exits on purpose and is replaced), and the rest of the round goes on.

In a worker, per scenario: random operands, the float64 reference and the rotation pool are built once (kept
in a quarter of the GPU's memory); each request is then

1. checked: output poisoned (NaN when the op overwrites, random when it accumulates), one run, relative
   error against the reference; above the dtype's tolerance it is ``wrong`` and never timed;
2. timed as serving runs it (``timing.time_graph``: a CUDA graph of max(calls, copies) calls over copies
   larger than 3x L2, median of replays) and, when asked, launch-inclusive with L2 flushed (do_bench: for
   every request, for the baselines only, or never; it costs about 0.1 s a request). A candidate whose
   probe is ``slow_factor`` times slower than the scenario's best so far gets a short graph: 83% of a
   random sample's replay time went to candidates 3x slower than their scenario's best.

Every measurement records the device, the torch and triton versions and the SM clock when readable.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dop_tui.measure.compile_pool import CompilePool
from dop_tui.measure.record import DeviceLoad, Measurement
from dop_tui.measure.runners import Item, Request, RoundBook, Tally, classify_exception, invalid_measurement, pick_for
from dop_tui.measure.supervise import Status, WorkerPool
from dop_tui.scenario import Scenario

CUDA_FAULT_EXIT = 13  # a worker whose CUDA context faulted exits with this code and is replaced


_GPU = ""  # the CUDA device this worker process is pinned to, as its parent names it


def _pin_gpu(slot: int, gpu: str, threads: int | None) -> None:
    """Worker init: see only ``gpu`` (an init error when it cannot be used, so a slot without a GPU is given up
    instead of failing every request it would take from the queue) and use ``threads`` CPU threads."""
    global _GPU
    os.environ["CUDA_VISIBLE_DEVICES"] = _GPU = gpu
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    if threads:
        torch.set_num_threads(threads)
    if not torch.cuda.is_available():
        raise RuntimeError(f"CUDA device {gpu} is not usable in a worker")


def visible_gpus(count: int, devices: int) -> list[str]:
    """The device ids ``count`` workers pin, one each: the entries of ``CUDA_VISIBLE_DEVICES`` when it is set
    (ids or UUIDs, in order), else ``0 .. devices-1``; more workers than devices share them round-robin."""
    ids = [x.strip() for x in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if x.strip()]
    ids = ids or [str(i) for i in range(max(1, devices))]
    return [ids[i % len(ids)] for i in range(count)]


class LruCache:
    """Values built on demand and kept while their sizes sum to at most ``max_bytes``: the least recently used
    go first, and the newest always stays, whatever its size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()

    def get(self, key: str, build: Callable[[], tuple[Any, int]]) -> Any:
        """The value of ``key``; ``build()`` returns ``(value, nbytes)`` when it is not kept."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key][0]
        value, nbytes = build()
        while self._items and sum(n for _, n in self._items.values()) + nbytes > self.max_bytes:
            self._items.popitem(last=False)
        self._items[key] = (value, nbytes)
        return value

    def __len__(self) -> int:
        return len(self._items)


SCENARIO_MEMORY_SHARE = 0.25  # of the GPU's memory, for the scenario states a worker keeps (~180 MB each on an H200)
_STATES: LruCache | None = None


def _env() -> dict[str, str]:
    import torch
    import triton

    env = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__}
    env["gpu"] = _GPU or os.environ.get("CUDA_VISIBLE_DEVICES", "0")
    with contextlib.suppress(Exception):  # needs pynvml; clocks are optional
        env["sm_clock_mhz"] = str(torch.cuda.clock_rate())
    return env


def _scenario_state(scn: Scenario) -> dict[str, Any]:
    """The worker's operands, reference, rotation pool and best time so far for ``scn``. States stay built
    while they fit in ``SCENARIO_MEMORY_SHARE`` of the GPU's memory (a pool is about 3x L2), so a search that
    cycles over a family of scenarios builds each once."""
    import torch

    global _STATES
    if _STATES is None:
        _STATES = LruCache(int(SCENARIO_MEMORY_SHARE * torch.cuda.get_device_properties(0).total_memory))
    return _STATES.get(scn.key, lambda: build_state(scn))


def build_state(scn: Scenario) -> tuple[dict[str, Any], int]:
    """What measuring ``scn`` on this process's GPU needs, and its size in bytes: the operands (``base``), their
    float64 reference (``ref``), a copy for the check (``probe``) and its start (``start``), the rotation pool,
    the device's ceilings (``dev``), the environment record and the best time so far."""
    import torch

    from dop_tui.measure.calibrate import device_spec
    from dop_tui.measure.check import poisoned_start
    from dop_tui.measure.timing import make_pool, rotation_copies
    from dop_tui.operands import clone_operands, make_operands, touched_bytes
    from dop_tui.reference import reference_loop

    dev = device_spec(torch.cuda.get_device_name())  # calibrated ceilings when cached, else built-in
    base = make_operands(scn, "cuda", seed=0)
    pool = make_pool(base, rotation_copies(base, dev.l2_bytes))
    ref = reference_loop(base)
    state = dict(
        base=base,
        ref=ref,
        probe=clone_operands(base),
        start=poisoned_start(base),
        pool=pool,
        dev=dev,
        env={**_env(), "ceilings": dev.source},
        best_us=math.inf,  # fastest full graph timing of this scenario in this worker
    )
    return state, (len(pool) + 2) * touched_bytes(base) + ref.numel() * ref.element_size()  # + the fp64 reference


def _gpu_task(task: tuple[dict, str, dict, dict]) -> dict:
    """Check then time one request; returns a Measurement as JSON. Exits the process on a CUDA fault."""
    from dop_tui.measure.check import error_against
    from dop_tui.measure.roofline import roofline
    from dop_tui.measure.timing import time_do_bench, time_graph
    from dop_tui.reference import TOLERANCE

    scn_json, kid, cfg, opts = task
    scn = Scenario.from_json(scn_json)
    try:
        st = _scenario_state(scn)
        rf = roofline(scn, st["dev"])
        common = dict(bytes=rf.bytes, flops=rf.flops, floor_us=rf.floor_s * 1e6, env=st["env"])
        t0 = time.perf_counter()
        err = error_against(kid, st["probe"], cfg, st["start"], st["ref"])
        t_check = time.perf_counter() - t0
        if not err <= TOLERANCE[scn.dtype]:
            return Measurement(scn.key, kid, cfg, "wrong", rel_error=err, **common).to_json()
        slow = opts.get("slow_factor")
        best = min(st["best_us"], opts.get("best_us", math.inf))  # this worker's, or the runner's over all GPUs
        g = time_graph(
            kid, st["pool"], cfg, calls=opts.get("calls", 100), replays=opts.get("replays", 7),
            slow_us=slow * best if slow else None,  # inf until a full timing: never short
        )  # fmt: skip
        if not g.short:
            st["best_us"] = min(st["best_us"], g.us)
        t_graph = time.perf_counter() - t0 - t_check
        split = " ".join(f"{k} {v * 1e3:.0f}" for k, v in g.phases.items())
        msg = f"worker: check {t_check:.2f} s (load or compile included), graph {t_graph:.2f} s (ms: {split})"
        bench = opts.get("do_bench", True)
        db = (
            time_do_bench(kid, st["base"], cfg).us
            if bench is True or (bench == "baselines" and "/baseline/" in kid)
            else None
        )
        return Measurement(
            scn.key, kid, cfg, "ok", us=g.us, us_min=g.us_min, us_max=g.us_max, method=g.method,
            rel_error=err, message=msg, short=g.short, do_bench_us=db, **common,
        ).to_json()  # fmt: skip
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        if "CUDA error" in text or "illegal" in text.lower():
            os._exit(CUDA_FAULT_EXIT)  # the context is poisoned: let the pool replace this worker
        raise


class GpuRunner:
    """Measures requests on every visible GPU at once, one supervised worker process per GPU."""

    name = "gpu"

    def __init__(
        self, workers: int | None = None, timeout_s: float = 120.0, calls: int = 100, replays: int = 7,
        do_bench: bool | str = True, task_fn: Any = _gpu_task, compile_workers: int | None = None,
        slow_factor: float | None = 3.0, worker_threads: int | None = 1, init_fn: Any = _pin_gpu,
    ) -> None:  # fmt: skip
        """``do_bench``: True, False or "baselines" (the launch-inclusive figure for those only).
        ``slow_factor``: a candidate whose probe is this many times slower than the best full timing of its
        scenario so far gets a short graph (``timing.time_graph``); None: every candidate gets the full one.
        ``task_fn`` replaces the worker's task (test harnesses wrap ``_gpu_task`` to add fault kernels) and
        ``init_fn(slot, gpu, worker_threads)`` its init (``_pin_gpu``);
        ``compile_workers`` CPU processes compile ahead (default: the CPU cores not driving a GPU; 0: none).
        ``worker_threads``: CPU threads of each GPU worker's torch (None: torch's default, one per core, which
        several workers and the compile pool would fight over; a worker's CPU work is launching, not maths)."""
        if do_bench not in (True, False, "baselines"):
            raise ValueError(f"do_bench must be True, False or 'baselines', got {do_bench!r}")
        import torch

        if workers is None:
            workers = torch.cuda.device_count()
        if workers < 1:
            raise RuntimeError("the GPU runner needs a CUDA GPU and none is visible")
        if compile_workers is None:
            compile_workers = max(1, (os.cpu_count() or 2) - workers)
        self.compiler = None
        if compile_workers:
            major, minor = torch.cuda.get_device_capability()
            self.compiler = CompilePool(compile_workers, 10 * major + minor)
        self.opts = {"calls": calls, "replays": replays, "do_bench": do_bench, "slow_factor": slow_factor}
        self.gpus = visible_gpus(workers, torch.cuda.device_count())
        init_args = [(g, worker_threads) for g in self.gpus]
        self.pool = WorkerPool(task_fn, workers=workers, init=init_fn, init_args_per_worker=init_args,
                               timeout_s=timeout_s)  # fmt: skip
        self.pool.start()
        self._best: dict[str, float] = {}  # scenario key -> best full graph timing on any GPU
        self._tallies = [Tally(f"gpu{g}") for g in self.gpus]

    def notes(self) -> list[str]:
        """Lines on how the measuring went, for the end of a job."""
        return [self.compiler.stats.line(self.compiler.workers)] if self.compiler else []

    def prefetch(self, scn: Scenario, requests: Sequence[Request]) -> None:
        """Start compiling ``requests`` on the CPU pool; a later ``measure`` of them waits less."""
        if self.compiler:
            self.compiler.submit(scn, [(k, c) for k, c in requests if not invalid_measurement(scn, k, c)])

    def measure(self, scn: Scenario, requests: Sequence[Request]) -> list[Measurement]:
        ((_, ms),) = self.measure_round([(scn, requests)])  # the whole round: the pool is free again after
        return ms

    def measure_round(self, items: Sequence[Item]) -> Iterator[tuple[int, list[Measurement]]]:
        """Every item's measurements, yielded as each item completes; its requests spread over all GPUs."""
        book = RoundBook(items)
        tasks: list[tuple[Scenario, str, dict, dict]] = []
        where: list[tuple[int, int]] = []
        for i, (scn, reqs) in enumerate(items):
            valid = book.to_measure(i)
            tasks += [(scn, reqs[j][0], dict(reqs[j][1]), dict(self.opts)) for j in valid]
            where += [(i, j) for j in valid]
            if self.compiler:
                self.compiler.submit(scn, [reqs[j] for j in valid])
        yield from book.complete()
        payload = [(scn.to_json(), kid, cfg, opts) for scn, kid, cfg, opts in tasks]
        task_of = {id(p): t for p, t in zip(payload, tasks, strict=True)}

        def pick(slot: int, pending: Sequence[tuple]) -> int | None:
            pos = self._pick(slot, [task_of[id(p)] for p in pending])
            if pos is not None:
                scn, kid, cfg, opts = task_of[id(pending[pos])]
                opts["best_us"] = self._best.get(scn.key, math.inf)
                self._tallies[slot].held = scn.key
                self._tallies[slot].built.add(scn.key)
                if self.compiler:
                    self.compiler.wait(scn, [(kid, cfg)])  # compiled by now: only accounts for it
            return pos

        for o in self.pool.map(payload, pick=pick):
            i, j = where[o.index]
            scn, kid, cfg, _ = tasks[o.index]
            m = self._outcome(scn, kid, cfg, o)
            if o.worker >= 0:
                t = self._tallies[o.worker]
                t.held, t.measured, t.busy_s = "", t.measured + 1, t.busy_s + o.seconds
            if m.status == "ok" and m.us is not None and not m.short:
                self._best[scn.key] = min(self._best.get(scn.key, math.inf), m.us)
            done = book.fill(i, [j], [m])
            if done is not None:
                yield i, done

    def _pick(self, slot: int, pending: Sequence[tuple[Scenario, str, dict, dict]]) -> int | None:
        """The pending request an idle worker takes (``runners.pick_for``) among those compiled; None while
        every one is compiling."""
        ready = [
            (p, scn.key) for p, (scn, kid, cfg, _) in enumerate(pending)
            if not self.compiler or self.compiler.done(scn, kid, cfg)
        ]  # fmt: skip
        return pick_for(self._tallies[slot], self._tallies, ready)

    def _outcome(self, scn: Scenario, kid: str, cfg: dict, o: Any) -> Measurement:
        if o.status == Status.OK:
            return Measurement.from_json(o.value)
        if o.error_type == "InitError":
            raise RuntimeError(f"the GPU runner's workers could not start: {o.message}")
        if o.status == Status.ERROR:
            text = f"{o.error_type}: {o.message}"
            return Measurement(scn.key, kid, dict(cfg), classify_exception(text), message=text)
        if o.status == Status.TIMEOUT:
            return Measurement(scn.key, kid, dict(cfg), "timeout", message=o.message)
        fault = " (CUDA fault)" if o.message == f"exit code {CUDA_FAULT_EXIT}" else ""
        return Measurement(scn.key, kid, dict(cfg), "crash", message=o.message + fault)

    def loads(self) -> list[DeviceLoad]:
        """Each GPU's work in this runner so far, and the scenario it is measuring now."""
        return [t.load() for t in self._tallies]

    def close(self) -> None:
        self.pool.close()
        if self.compiler:
            self.compiler.close()

    def __enter__(self) -> GpuRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
