"""Ray runner: the runner protocol over a Ray cluster, one supervised measuring worker per GPU of every node.

``RayRunner(address)`` joins a cluster: ``"local"`` starts a one-node cluster for the job, every server bound
to the loopback interface and no dashboard, and stops it on close; ``"auto"`` joins the cluster ``ray start``
runs on this host; ``"HOST:PORT"`` joins that head node. Ray runs the code it is sent and its security is the
cluster's (README: "Several hosts with Ray"); this runner sends only plain data: scenarios, requests and
measurements as JSON text, never a pickled object of its own.

On each node, one Ray actor per GPU (``num_gpus=1``: Ray pins its ``CUDA_VISIBLE_DEVICES``) holds a
``GpuRunner`` with one worker and a compile pool of the node's CPUs over its GPUs, so the GPU runner's
isolation holds everywhere: a hung or crashed kernel costs a worker process, never the actor or the job. With
``measure="interpret"`` each actor (one CPU) runs the Triton interpreter instead: correctness only, which is
how CI tests this runner on a local cluster.

``measure_round`` keeps one queue for the whole round: requests in chunks of at most ``chunk`` of one scenario.
Each actor holds one chunk and has the next one reserved and compiling (``prefetch``), and takes the first
pending chunk by the runners' shared rule (``runners.pick_for``: a scenario it has built first), or another
actor's reservation when nothing else is left (work stealing).
An actor that dies (its node lost) has its chunk handed to another, once; then its requests are ``crash``.
When no actor is left the round fails with the cause.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dop_tui.measure.backends import RAY_MISSING
from dop_tui.measure.record import DeviceLoad, Measurement
from dop_tui.measure.runners import Item, Request, RoundBook, Tally, pick_for
from dop_tui.scenario import Scenario

MEASURES = ("gpu", "interpret")
# Set before ray is first imported: Ray then takes 127.0.0.1 as the node address of a cluster it starts and
# binds every server to it (by default it binds them to all interfaces).
LOOPBACK_ENV = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


class Measurer:
    """The actor: measures chunks with a local runner. Arguments and results are JSON text."""

    def __init__(self, measure: str, options: str) -> None:
        import ray

        opts = json.loads(options)
        node = ray.util.get_node_ip_address()
        if measure == "gpu":
            from dop_tui.measure.gpu_runner import GpuRunner

            self.runner: Any = GpuRunner(workers=1, **opts)
            import torch

            self.device = torch.cuda.get_device_name()
            self.where = f"{node}/gpu{os.environ.get('CUDA_VISIBLE_DEVICES', '')}"
        else:
            from dop_tui.measure.runners import InterpretRunner

            self.runner = InterpretRunner(opts.get("seed", 0))
            self.device = "CPU (Triton interpreter, correctness only)"
            self.where = f"{node}/cpu{os.getpid()}"
        self.node = node

    def describe(self) -> str:
        return json.dumps({"where": self.where, "device": self.device})

    def prefetch(self, scn_json: str, requests_json: str) -> None:
        if hasattr(self.runner, "prefetch"):
            self.runner.prefetch(Scenario.from_json(json.loads(scn_json)), _requests(requests_json))

    def measure(self, scn_json: str, requests_json: str) -> str:
        t0 = time.perf_counter()
        ms = self.runner.measure(Scenario.from_json(json.loads(scn_json)), _requests(requests_json))
        out = [{**m.to_json(), "env": {**m.env, "node": self.node}} for m in ms]
        return json.dumps({"seconds": time.perf_counter() - t0, "measurements": out})

    def close(self) -> None:
        if hasattr(self.runner, "close"):
            self.runner.close()


def _requests(text: str) -> list[Request]:
    return [(str(k), {str(n): int(v) for n, v in c.items()}) for k, c in json.loads(text)]


@dataclass
class _Chunk:
    item: int
    positions: list[int]  # of the item's requests
    scn: Scenario
    requests: list[Request]
    tries: int = 0

    def payload(self) -> tuple[str, str]:
        return json.dumps(self.scn.to_json()), json.dumps([[k, dict(c)] for k, c in self.requests])


@dataclass
class _Actor:
    handle: Any
    tally: Tally  # named ``node/gpuN`` (``node/cpuPID`` when interpreting)
    alive: bool = True
    held: _Chunk | None = None
    reserved: _Chunk | None = None


class RayRunner:
    """Measures on every GPU (or CPU worker) of a Ray cluster; see the module docstring."""

    name = "ray"

    def __init__(
        self, address: str = "local", *, measure: str = "gpu", workers: int | None = None, chunk: int = 4,
        timeout_s: float = 120.0, do_bench: bool | str = True, seed: int = 0, num_cpus: int | None = None,
    ) -> None:  # fmt: skip
        """``workers``: actors to start (default: every GPU of the cluster, or its CPUs less one when
        interpreting); ``num_cpus`` of a local cluster (default: this host's)."""
        if measure not in MEASURES:
            raise ValueError(f"unknown measure {measure!r}; expected one of {', '.join(MEASURES)}")
        ray = _import_ray(address == "local")
        self.address, self.measure_kind, self.chunk = address, measure, max(1, chunk)
        self._own = address == "local"
        if ray.is_initialized():
            raise RuntimeError("this process is already connected to a Ray cluster; the Ray runner makes its own")
        init: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False, "logging_level": logging.WARNING}
        with _stderr_with_fd():
            if self._own:
                ray.init(num_cpus=num_cpus or os.cpu_count() or 2, **init)
            else:
                ray.init(address=address, **init)
        try:
            self._actors = self._start(ray, measure, workers, timeout_s, do_bench, seed)
        except BaseException:
            ray.shutdown()
            raise
        self._ray = ray

    def _start(self, ray: Any, measure: str, workers: int | None, timeout_s: float, do_bench: bool | str,
               seed: int) -> list[_Actor]:  # fmt: skip
        res = ray.cluster_resources()
        gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 1))
        if measure == "gpu":
            n = workers or gpus
            if n < 1 or gpus < 1:
                raise RuntimeError(f"the Ray cluster at {self.address} has no GPU (resources: {res})")
            per_node_cpus = max(1, cpus // max(1, gpus) - 1)
            opts = {"timeout_s": timeout_s, "do_bench": do_bench, "compile_workers": per_node_cpus}
            cls = ray.remote(num_gpus=1, num_cpus=1, max_concurrency=2)(Measurer)
        else:
            n = workers or max(1, cpus - 1)
            opts = {"seed": seed}
            cls = ray.remote(num_cpus=1, max_concurrency=2, runtime_env={"env_vars": {"TRITON_INTERPRET": "1"}})(
                Measurer
            )
        handles = [cls.remote(measure, json.dumps(opts)) for _ in range(n)]
        described = [json.loads(d) for d in ray.get([h.describe.remote() for h in handles])]
        self.devices = sorted({d["device"] for d in described})
        return [_Actor(h, Tally(d["where"])) for h, d in zip(handles, described, strict=True)]

    # -- the runner protocol -----------------------------------------------------------------------------

    def measure(self, scn: Scenario, requests: Sequence[Request]) -> list[Measurement]:
        ((_, ms),) = self.measure_round([(scn, requests)])
        return ms

    def measure_round(self, items: Sequence[Item]) -> Iterator[tuple[int, list[Measurement]]]:
        """Every item's measurements, yielded as each item completes, its requests spread over the cluster."""
        book = RoundBook(items)
        pending: list[_Chunk] = []
        for i, (scn, reqs) in enumerate(items):
            valid = book.to_measure(i)
            for s in range(0, len(valid), self.chunk):
                pos = valid[s : s + self.chunk]
                pending.append(_Chunk(i, pos, scn, [(reqs[p][0], dict(reqs[p][1])) for p in pos]))
        yield from book.complete()
        inflight: dict[Any, _Actor] = {}
        while pending or inflight or any(a.reserved for a in self._actors):
            for a in self._actors:
                if a.alive and a.held is None:
                    self._hand(a, pending, inflight)
            if not inflight:
                raise RuntimeError(f"no Ray worker is left to measure on (cluster {self.address})")
            ready, _ = self._ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                a = inflight.pop(ref)
                chunk, a.held, a.tally.held = a.held, None, ""
                assert chunk is not None
                ms = self._answer(a, ref, chunk, pending)
                if ms is not None and (done := book.fill(chunk.item, chunk.positions, ms)) is not None:
                    yield chunk.item, done

    def _hand(self, a: _Actor, pending: list[_Chunk], inflight: dict[Any, _Actor]) -> None:
        """Give the idle actor its reserved chunk, else the best pending one, else another actor's reservation
        (stealing); then reserve its next and start compiling it."""
        chunk, a.reserved = a.reserved, None
        if chunk is None and pending:
            chunk = pending.pop(self._choose(a, pending))
        if chunk is None:
            other = next((x for x in self._actors if x.reserved is not None), None)
            if other is None:
                return
            chunk, other.reserved = other.reserved, None
        a.held, a.tally.held = chunk, chunk.scn.key
        a.tally.built.add(chunk.scn.key)
        inflight[a.handle.measure.remote(*chunk.payload())] = a
        if pending:
            a.reserved = pending.pop(self._choose(a, pending))
            a.handle.prefetch.remote(*a.reserved.payload())

    def _choose(self, a: _Actor, pending: list[_Chunk]) -> int:
        """The pending chunk the actor takes (``runners.pick_for``; ``pending`` is not empty)."""
        pos = pick_for(a.tally, [x.tally for x in self._actors], [(p, c.scn.key) for p, c in enumerate(pending)])
        return pos or 0

    def _answer(self, a: _Actor, ref: Any, chunk: _Chunk, pending: list[_Chunk]) -> list[Measurement] | None:
        """The chunk's measurements, or None when it went back to the queue after its actor died."""
        try:
            res = json.loads(self._ray.get(ref))
        except self._ray.exceptions.RayError as exc:
            a.alive = False
            if a.reserved is not None:
                pending.insert(0, a.reserved)
                a.reserved = None
            chunk.tries += 1
            if chunk.tries < 2 and any(x.alive for x in self._actors):
                pending.insert(0, chunk)
                return None
            first = str(exc).splitlines()[0] if str(exc) else ""
            msg = f"Ray worker {a.tally.device} lost: {type(exc).__name__}: {first}"
            return [Measurement(chunk.scn.key, k, dict(c), "crash", message=msg) for k, c in chunk.requests]
        a.tally.measured += len(chunk.requests)
        a.tally.busy_s += float(res["seconds"])
        return [Measurement.from_json(m) for m in res["measurements"]]

    def loads(self) -> list[DeviceLoad]:
        """Each worker's work so far, named ``node/gpuN`` (``node/cpuPID`` when interpreting)."""
        return [a.tally.load() for a in self._actors]

    def close(self) -> None:
        for a in self._actors:
            if a.alive:
                with contextlib.suppress(Exception):  # a worker that cannot close cleanly is killed below
                    self._ray.get(a.handle.close.remote(), timeout=30)
                self._ray.kill(a.handle)
        self._ray.shutdown()

    def __enter__(self) -> RayRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _stderr_with_fd() -> Iterator[None]:
    """``ray.init`` enables faulthandler on ``sys.stderr``, which needs a file descriptor: the workbench captures
    stderr with an object that has none, so Ray sees the process's own stderr meanwhile."""
    try:
        usable = sys.stderr.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        usable = False
    if usable or sys.__stderr__ is None:
        yield
        return
    saved, sys.stderr = sys.stderr, sys.__stderr__
    try:
        yield
    finally:
        sys.stderr = saved


def _import_ray(local: bool) -> Any:
    """``ray``, imported with ``LOOPBACK_ENV`` set when this process starts a local cluster. ``RuntimeError``
    when Ray is missing, or was imported earlier without it (the cluster would listen on every interface)."""
    if local:
        key, value = LOOPBACK_ENV
        if "ray" in sys.modules and os.environ.get(key) != value:
            raise RuntimeError(f"ray was imported before a loopback-only cluster could be set up; set {key}={value} "
                               "before starting, or run in a new process")  # fmt: skip
        os.environ[key] = value
    try:
        import ray
    except ImportError:
        raise RuntimeError(RAY_MISSING) from None
    return ray
