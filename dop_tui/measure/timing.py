"""GPU timing as serving runs it: a CUDA graph of back-to-back calls over rotated input copies.

``time_graph`` binds the kernel on ``n_copies`` copies of the operands (together larger than a multiple
of L2, so no call finds its inputs in cache), captures ``calls`` consecutive calls cycling through the
copies in one CUDA graph, replays it ``replays`` times and reports microseconds per call (median of the
replays, with min and max). ``time_do_bench`` is the launch-inclusive figure: ``triton.testing.do_bench``
flushes L2 before every call and times each call with events (median).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from dop_tui.measure.launch import bind
from dop_tui.measure.record import SHORT_MARK
from dop_tui.operands import Operands, clone_operands, touched_bytes


@dataclass(frozen=True)
class Timing:
    us: float  # median microseconds per call
    us_min: float
    us_max: float
    method: str
    phases: dict[str, float] = field(default_factory=dict)  # host seconds: bind, probe, capture, replay
    short: bool = False  # the short graph of a candidate slower than the caller's bar


def rotation_copies(ops: Operands, l2_bytes: int, l2_multiple: float = 3.0, max_copies: int = 4096) -> int:
    """Copies needed so the rotation's working set exceeds ``l2_multiple`` times L2."""
    return max(1, min(max_copies, math.ceil(l2_multiple * l2_bytes / touched_bytes(ops))))


def make_pool(ops: Operands, n_copies: int) -> list[Operands]:
    return [ops] + [clone_operands(ops) for _ in range(n_copies - 1)]


def time_graph(
    kernel_id: str,
    pool: list[Operands],
    config: Mapping[str, int] | None = None,
    *,
    calls: int = 100,
    replays: int = 5,
    graph_ms: float = 50.0,
    slow_us: float | None = None,
    short_ms: float = 4.0,
    short_replays: int = 3,
    binder: Callable[[Operands], Callable[[], None]] | None = None,
) -> Timing:
    """Median microseconds per call of ``calls`` graph-captured calls rotating through ``pool``.

    A probe graph of up to 16 calls (their inputs may sit in L2, so it can only flatter) estimates the time
    per call. The calls cover every copy at least once, except that a slow kernel gets fewer calls, about
    ``graph_ms`` per replay, so a bad candidate costs a bounded time (its inputs may then sit in L2, which
    matters little at that speed). A candidate whose probe is already slower than ``slow_us`` (the caller's
    bar, e.g. a multiple of the best so far) gets about ``short_ms`` per replay and ``short_replays`` replays:
    it cannot become the best, so its figure needs less precision. If the short graph then reads at or under the
    bar, the probe was slowed (a stall, not the kernel: a 2.4 us expand once probed at 89 us), and the candidate
    is timed again in full. The pool is only needed for fast kernels.
    ``binder`` replaces ``bind(kernel_id, ops, config)`` (a composite call, e.g. a benchmark's own sequence)."""
    full = dict(calls=calls, replays=replays, graph_ms=graph_ms, binder=binder)
    t_start = time.perf_counter()
    runs: list[Callable[[], None]] = [binder(ops) if binder else bind(kernel_id, ops, config) for ops in pool]
    t_bound = time.perf_counter()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        runs[0]()  # compile and load outside the capture and outside the estimate
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    probe = runs[1:17] or runs
    est_us = _replay_us(_capture(probe, len(probe)), len(probe), 1)[0]
    short = slow_us is not None and est_us > slow_us
    if short:
        graph_ms, replays = short_ms, short_replays
    per_replay_calls = max(1, math.ceil(graph_ms * 1e3 / max(est_us, 1e-3)))
    if per_replay_calls < max(calls, len(runs)):
        runs = runs[: min(len(runs), per_replay_calls)]
        calls = max(3, min(calls, per_replay_calls))
    calls = max(calls, len(runs))
    t_probed = time.perf_counter()
    graph = _capture(runs, calls)
    t_captured = time.perf_counter()
    per_call = _replay_us(graph, calls, replays)
    del graph
    if short and statistics.median(per_call) <= slow_us:
        return time_graph(kernel_id, pool, config, **full)
    t_end = time.perf_counter()
    phases = {"bind": t_bound - t_start, "probe": t_probed - t_bound, "capture": t_captured - t_probed,
              "replay": t_end - t_captured}  # fmt: skip
    method = f"cuda-graph x{calls} / {len(runs)} copies" + (f"{SHORT_MARK} (probe {est_us:.1f} us)" if short else "")
    return Timing(statistics.median(per_call), min(per_call), max(per_call), method, phases, short)


def _capture(runs: list[Callable[[], None]], calls: int) -> torch.cuda.CUDAGraph:
    """A CUDA graph of ``calls`` calls cycling through ``runs``, replayed once (the first replay uploads it)."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(calls):
            runs[i % len(runs)]()
    graph.replay()
    torch.cuda.synchronize()
    return graph


def _replay_us(graph: torch.cuda.CUDAGraph, calls: int, replays: int) -> list[float]:
    """Microseconds per call of each of ``replays`` event-timed replays of ``graph``."""
    per_call = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        per_call.append(start.elapsed_time(end) * 1e3 / calls)
    return per_call


def time_do_bench(
    kernel_id: str,
    ops: Operands,
    config: Mapping[str, int] | None = None,
    *,
    warmup_ms: int = 25,
    rep_ms: int = 100,
) -> Timing:
    """Launch-inclusive median microseconds per call with L2 flushed before each call (do_bench)."""
    import triton.testing

    run = bind(kernel_id, ops, config)
    q = triton.testing.do_bench(run, warmup=warmup_ms, rep=rep_ms, quantiles=[0.5, 0.0, 1.0])
    return Timing(q[0] * 1e3, q[1] * 1e3, q[2] * 1e3, "do_bench, L2 flushed")
