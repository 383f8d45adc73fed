"""Compiling candidates ahead of time, in parallel, in CPU processes that never touch the GPU.

Each compile process records a request's launches on CPU operands and runs them through Triton's JIT in
warm-up mode against a stand-in driver that names the GPU's architecture (``aot.warm_jit_cache``): the kernels
land in Triton's on-disk cache under the keys the JIT computes, so the GPU worker's JIT finds them there and
only loads the binary. The pool is an accelerator, never a judge: a request
it fails to compile goes to the GPU worker unchanged, whose JIT reports the real compile error (so a compile
path that drifts from the JIT's can cost time, never correctness). ``CompileStats`` says how it went.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from dop_tui.scenario import Scenario

Request = tuple[str, dict]


def _compile_process_env() -> None:
    """A compile process is CPU work: no CUDA context, no GPU memory, the compiler, not the interpreter, and one
    CPU thread (a pool fills every core not driving a GPU: torch's default of one thread per core in each would
    take those cores from the GPU workers)."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.pop("TRITON_INTERPRET", None)
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def _compile(task: tuple[dict, str, dict, int]) -> tuple[int, str]:
    """``(launches compiled, error text or "")`` for one request."""
    from dop_tui.measure.aot import record_kernel, warm_jit_cache

    scn_json, kid, cfg, capability = task
    try:
        recorded = record_kernel(kid, Scenario.from_json(scn_json), cfg)
        warm_jit_cache(recorded, capability)
        return len(recorded), ""
    except Exception as exc:
        return 0, f"{type(exc).__name__}: {exc}"


@dataclass
class CompileStats:
    requests: int = 0
    launches: int = 0  # kernels compiled into the cache
    failed: int = 0  # left to the GPU worker's JIT
    seconds: float = 0.0  # wall time spent waiting for compiles (overlapped compiles cost none)
    first_error: str = ""

    def line(self, workers: int) -> str:
        """One line for a job's end: what the pool compiled and how long the measuring waited for it."""
        text = (f"compile pool ({workers} CPU processes): {self.launches} kernels for {self.requests} requests, "
                f"{self.seconds:.0f} s waited")  # fmt: skip
        if self.failed:
            text += f"; {self.failed} left to the GPU's JIT (first: {self.first_error[:160]})"
        return text


class CompilePool:
    """``workers`` CPU processes compiling for ``sm_<capability>`` into the shared Triton cache.

    ``submit`` starts compiling a batch and returns at once (so the next scenario compiles while the GPU measures
    this one); ``done`` says whether a request is still compiling; ``wait`` returns the batch's error texts
    ("" per request whose launches are now cached)."""

    def __init__(self, workers: int, capability: int) -> None:
        self.workers = workers
        self.capability = capability
        self.stats = CompileStats()
        self._pool = self._start()
        self._pending: dict[tuple, Future] = {}

    def _start(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_compile_process_env)

    @staticmethod
    def _key(scn: Scenario, kid: str, cfg: dict) -> tuple:
        return scn.key, kid, tuple(sorted(cfg.items()))

    def submit(self, scn: Scenario, requests: Sequence[Request]) -> None:
        scn_json = scn.to_json()
        for kid, cfg in requests:
            key = self._key(scn, kid, cfg)
            if key not in self._pending:
                self._pending[key] = self._pool.submit(_compile, (scn_json, kid, dict(cfg), self.capability))

    def done(self, scn: Scenario, kid: str, cfg: dict) -> bool:
        """True when the request is not compiling (finished, failed, or never submitted): ``wait`` won't block."""
        fut = self._pending.get(self._key(scn, kid, cfg))
        return fut is None or fut.done()

    def wait(self, scn: Scenario, requests: Sequence[Request]) -> list[str]:
        t0 = time.perf_counter()
        self.submit(scn, requests)
        results = []
        for kid, cfg in requests:
            fut = self._pending.pop(self._key(scn, kid, cfg), None)
            try:
                results.append(fut.result() if fut else (0, "compiled in an earlier batch"))
            except BrokenProcessPool:  # a compiler process died: leave the request to the GPU worker's JIT
                results.append((0, "BrokenProcessPool: a compile process died"))
        if any(err.startswith("BrokenProcessPool") for _, err in results):
            self._restart()
        st = self.stats
        st.requests += len(results)
        st.launches += sum(n for n, _ in results)
        st.failed += sum(bool(e) for _, e in results)
        st.seconds += time.perf_counter() - t0
        st.first_error = st.first_error or next((e for _, e in results if e), "")
        return [err for _, err in results]

    def _restart(self) -> None:
        self._pool.shutdown(cancel_futures=True)
        self._pending.clear()
        self._pool = self._start()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
