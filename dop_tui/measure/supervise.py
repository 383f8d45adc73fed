"""A supervised pool of worker processes, for tasks that may hang or kill their process.

Each worker is a separate process (spawned by default) talking to the parent over its own Pipe, so a
kernel that never returns or an illegal memory access loses one process, never the batch. The parent
sends one task at a time to each idle worker and watches every pipe and process sentinel with
``multiprocessing.connection.wait``:

- the task returns: ``ok`` with its value; it raises: ``error`` with the exception's type name and message;
- it runs past ``timeout_s``: the worker gets SIGKILL, the task is a ``timeout`` and a fresh worker
  takes the slot;
- the worker dies under it: ``crash`` with the signal name ("SIGSEGV") or "exit code 3", and a fresh
  worker takes the slot.

``map`` hands tasks out in order; a ``pick(slot, pending)`` hook may instead choose which pending task an
idle worker takes (its position), or none yet (``None``: the pool looks again within ``poll_s``), which is how
a caller keeps tasks back until they are ready and keeps a worker on work it has warmed up.

``init(slot, *init_args_per_worker[slot])`` runs first in every worker process of a slot, replacements
included, and a task is sent only once init has finished, so the time limit covers the task alone.
An init that raises, dies or runs past ``init_timeout_s`` costs no task: the slot is restarted, and after
``max_init_failures`` consecutive failures it is given up. While any slot lives the tasks go there; once
every slot is given up, each task still waiting is reported as ``error`` with ``error_type`` "InitError"
and a message quoting the last init failure. Nothing is raised for a failing task or worker.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any


class Status(StrEnum):
    OK = "ok"
    ERROR = "error"  # the task raised
    TIMEOUT = "timeout"  # the task ran past its limit; its worker was killed and replaced
    CRASH = "crash"  # the worker died while running the task

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Outcome:
    index: int  # position of the task in the submitted list
    status: Status
    value: Any  # the function's return value when ok, else None
    error_type: str | None  # exception type name for error, "InitError" when no worker could start
    message: str  # exception message, "exit code 3" / "SIGSEGV", or why the task timed out
    seconds: float  # wall time of the task: in the worker for ok/error, in the parent for timeout/crash
    worker: int  # slot that ran it; -1 when no worker was left to run it


def _worker_main(
    conn: Connection, fn: Callable[[Any], Any], init: Callable[..., Any] | None, slot: int, args: tuple
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if init is not None:
        try:
            init(slot, *args)
        except BaseException as exc:
            conn.send(("init_error", f"{type(exc).__name__}: {exc}"))
            return
    conn.send(("ready",))
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent is gone
            return
        if task is None:
            return
        t0 = time.perf_counter()
        try:
            reply = ("done", Status.OK, fn(task), None, "", time.perf_counter() - t0)
        except Exception as exc:
            reply = ("done", Status.ERROR, None, type(exc).__name__, str(exc), time.perf_counter() - t0)
        try:
            conn.send(reply)  # pickling happens before anything is written
        except Exception as exc:
            conn.send(("done", Status.ERROR, None, type(exc).__name__, f"result not sendable: {exc}", reply[-1]))


def exit_reason(exitcode: int | None) -> str:
    """How a process ended: the signal name ("SIGSEGV") if a signal killed it, else "exit code N"."""
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


@dataclass
class _Worker:
    slot: int
    proc: BaseProcess
    conn: Connection
    since: float  # when started (before ready) or when the current task was sent
    ready: bool = False
    task: int | None = None  # index of the task it holds


class WorkerPool:
    """Supervised worker processes running ``fn(task)``; see the module docstring for the contract."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        workers: int = 1,
        init: Callable[..., Any] | None = None,
        init_args_per_worker: Sequence[tuple] | None = None,
        timeout_s: float | None = 60.0,
        start_method: str = "spawn",
        *,
        init_timeout_s: float | None = 300.0,
        max_init_failures: int = 3,
    ):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if init_args_per_worker is not None and len(init_args_per_worker) != workers:
            raise ValueError(f"init_args_per_worker has {len(init_args_per_worker)} entries for {workers} workers")
        self.fn, self.init, self.workers = fn, init, workers
        self.init_args = [tuple(a) for a in init_args_per_worker] if init_args_per_worker else [()] * workers
        self.timeout_s, self.init_timeout_s, self.max_init_failures = timeout_s, init_timeout_s, max_init_failures
        self.restarts = 0  # workers started to replace one that died, hung or failed init
        self._ctx = mp.get_context(start_method)
        self._slots: list[_Worker | None] = [None] * workers
        self._init_failures = [0] * workers
        self._given_up = [False] * workers
        self._last_init_error = ""
        self._dying: list[BaseProcess] = []  # killed but not yet gone
        self._closed = self._mapping = False

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> WorkerPool:
        """Start a worker in every empty slot not given up (init runs in the background); map calls this."""
        if self._closed:
            raise RuntimeError("WorkerPool is closed")
        for slot in range(self.workers):
            if self._slots[slot] is None and not self._given_up[slot]:
                self._spawn(slot)
        return self

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, the rest are killed; all are joined."""
        self._closed = True
        live = [w for w in self._slots if w is not None]
        self._slots = [None] * self.workers
        for w in live:
            if w.task is None:
                with contextlib.suppress(OSError):
                    w.conn.send(None)
            else:
                w.proc.kill()
        deadline = time.perf_counter() + 1.0
        for w in live:
            w.proc.join(max(0.0, deadline - time.perf_counter()))
            if w.proc.exitcode is None:
                w.proc.kill()
                w.proc.join()
            w.conn.close()
        for proc in self._dying:
            proc.join()
        self._dying.clear()

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int | None]:
        """Process id of the current worker in each slot (None where none runs)."""
        return [w.proc.pid if w else None for w in self._slots]

    # -- running -----------------------------------------------------------------------------------------

    def run(self, task: Any) -> Outcome:
        """Run one task and return its outcome."""
        (outcome,) = self.map([task])
        return outcome

    def map(
        self, tasks: Iterable[Any], pick: Callable[[int, Sequence[Any]], int | None] | None = None,
        poll_s: float = 0.02,
    ) -> Iterator[Outcome]:  # fmt: skip
        """Yield one Outcome per task, in completion order. Closing the iterator early kills busy workers.
        ``pick(slot, pending tasks)``: the position of the task the idle worker of ``slot`` takes, or None."""
        if self._mapping:
            raise RuntimeError("WorkerPool.map is already running")
        self.start()
        self._mapping = True
        pending = list(enumerate(tasks))
        try:
            while pending or any(w and w.task is not None for w in self._slots):
                out: list[Outcome] = []
                held = False  # an idle worker was given nothing by ``pick``
                for w in self._slots:  # hand a task to every ready idle worker
                    if pending and w and w.ready and w.task is None:
                        j = 0 if pick is None else pick(w.slot, [t for _, t in pending])
                        if j is None:
                            held = True
                            continue
                        index, task = pending.pop(j)
                        try:
                            w.conn.send(task)
                        except Exception as exc:  # unpicklable task: nothing was written
                            out.append(Outcome(index, Status.ERROR, None, type(exc).__name__, str(exc), 0.0, w.slot))
                            continue
                        w.task, w.since = index, time.perf_counter()
                if all(self._given_up):
                    msg = f"init failed {self.max_init_failures} times in every slot; last: {self._last_init_error}"
                    out += [Outcome(i, Status.ERROR, None, "InitError", msg, 0.0, -1) for i, _ in pending]
                    pending.clear()
                if out:
                    yield from out
                    continue
                for w, item in self._wait(poll_s if held else None):
                    if self._slots[w.slot] is w:
                        out += self._handle(w, item)
                out += self._expire()
                yield from out
        finally:
            self._mapping = False
            for w in self._slots:
                if w and w.task is not None:  # abandoned: nobody wants its outcome; start() refills the slot
                    self._kill(w)

    # -- internals ---------------------------------------------------------------------------------------

    def _spawn(self, slot: int) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, self.fn, self.init, slot, self.init_args[slot]),
            name=f"dop-worker-{slot}",
            daemon=True,  # terminated at interpreter exit even if the pool was never closed
        )
        proc.start()
        child.close()
        self._slots[slot] = _Worker(slot, proc, parent, time.perf_counter())

    def _replace(self, w: _Worker) -> None:
        self._kill(w)
        self.restarts += 1
        self._spawn(w.slot)

    def _kill(self, w: _Worker) -> None:
        if w.proc.exitcode is None:
            w.proc.kill()
        w.proc.join(10.0)  # a process stuck in the driver may take a while to go; close() joins it then
        if w.proc.exitcode is None:
            self._dying.append(w.proc)
        w.conn.close()
        self._slots[w.slot] = None

    def _wait(self, at_most_s: float | None = None) -> list[tuple[_Worker, str]]:
        """Block until a pipe or sentinel is ready, the nearest deadline or ``at_most_s``; pipes come first."""
        live = [w for w in self._slots if w is not None]
        limits = [w.since + self.timeout_s for w in live if w.task is not None and self.timeout_s is not None]
        limits += [time.perf_counter() + at_most_s] if at_most_s is not None else []
        limits += [w.since + self.init_timeout_s for w in live if not w.ready and self.init_timeout_s is not None]
        timeout = max(0.0, min(limits) - time.perf_counter()) if limits else None
        ready = set(wait([w.conn for w in live] + [w.proc.sentinel for w in live], timeout))
        return [(w, "conn") for w in live if w.conn in ready] + [(w, "exit") for w in live if w.proc.sentinel in ready]

    def _handle(self, w: _Worker, item: str) -> list[Outcome]:
        if item == "conn":
            try:
                msg = w.conn.recv()
            except (EOFError, OSError):
                return self._died(w)
            if msg[0] == "ready":
                w.ready, self._init_failures[w.slot] = True, 0
            elif msg[0] == "init_error":
                self._init_failed(w, msg[1])
            else:
                _, status, value, error_type, message, seconds = msg
                index, w.task = w.task, None
                return [Outcome(index, status, value, error_type, message, seconds, w.slot)]
            return []
        if w.conn.poll():  # a last message sent before exiting (an init error) comes first
            return self._handle(w, "conn") + (self._died(w) if self._slots[w.slot] is w else [])
        return self._died(w)

    def _died(self, w: _Worker) -> list[Outcome]:
        w.proc.join()
        reason = exit_reason(w.proc.exitcode)
        if not w.ready:
            self._init_failed(w, f"worker died during init ({reason})")
            return []
        index = w.task
        self._replace(w)
        if index is None:
            return []
        return [Outcome(index, Status.CRASH, None, None, reason, time.perf_counter() - w.since, w.slot)]

    def _init_failed(self, w: _Worker, message: str) -> None:
        self._last_init_error = f"slot {w.slot}: {message}"
        self._init_failures[w.slot] += 1
        if self._init_failures[w.slot] >= self.max_init_failures:
            self._kill(w)
            self._given_up[w.slot] = True
        else:
            self._replace(w)

    def _expire(self) -> list[Outcome]:
        now, out = time.perf_counter(), []
        for w in [w for w in self._slots if w is not None]:
            if w.task is not None and self.timeout_s is not None and now - w.since > self.timeout_s:
                msg = f"exceeded {self.timeout_s:g} s; worker killed"
                out.append(Outcome(w.task, Status.TIMEOUT, None, None, msg, now - w.since, w.slot))
                self._replace(w)
            elif not w.ready and self.init_timeout_s is not None and now - w.since > self.init_timeout_s:
                self._init_failed(w, f"init exceeded {self.init_timeout_s:g} s")
        return out
