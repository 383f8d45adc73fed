"""The trace mode of the serving benchmark: requests arriving over time, served with continuous batching.

The trace (``build_trace``, seeded): ``n`` requests whose arrivals are a Poisson process counted in scheduler
steps (exponential gaps of mean ``1 / rate`` steps; a request's ``arrival`` is the step its arrival time falls
in), prompt lengths uniform in ``PROMPT_LENS`` and output lengths uniform in ``OUTPUT_LENS`` (inclusive), and
adapters by the workload's popularity: ``distinct`` every request its own, ``identical`` one for all,
``uniform`` a pool of ``ceil(sqrt(n))`` equally likely, ``skewed`` the same pool with Zipf popularity
``p_k ~ k^-1.5`` (k = 1 the most popular). Arrivals and lengths do not depend on the workload (their random
stream is separate from the adapters'): the workloads serve the same requests.

The scheduler (``schedule``; vLLM's default scheduler without chunked prefill): a step is a prefill step or a
decode step. Before each, the requests that have arrived wait first come, first served; if some wait and fewer
than ``max_running`` requests run, as many as fit both the free slots and ``PREFILL_BUDGET`` prompt tokens (a
longer prompt alone) are admitted and prefilled in one step, which gives each its first output token;
otherwise every running request decodes one token. A request leaves once it has its output length. With
nothing running and nothing arrived the clock jumps to the next arrival (idle time is not counted). Arrivals
are counted in steps, so the schedule does not depend on the backend: every backend runs the same steps, and
only their times differ. A step's tokens are grouped by adapter as serving engines group them: requests
stably sorted by adapter, one segment per adapter present, as long as its requests' tokens in the step.

The measurement (``run``): every distinct step (kind, per-request tokens, segments and their adapters) is
built once on the trace's weights (all its adapters) and one KV cache of ``max_running`` requests, and each
backend is bound, checked against torch's logits and timed on it as in the decode benchmark
(``bench.measure_step``); a backend wrong on any step is ``wrong`` and gets no time. A backend's trace time is
the sum over the trace's steps of its step times; tokens/s counts prompt and output tokens. The scheduler's
own host work, sampling and the KV cache's growth are not counted (see ``serve.model`` for the decoder's
simplifications).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch

from dop_tui.serve.backends import Layout
from dop_tui.serve.bench import measure_step
from dop_tui.serve.model import DecoderShape, DecodeStep, KVCache, PrefillStep, Step, Weights
from dop_tui.workloads import WORKLOADS

RATE = 0.5  # requests per step, on average
PROMPT_LENS = (64, 512)  # prompt tokens, uniform, inclusive
OUTPUT_LENS = (16, 128)  # output tokens, uniform, inclusive
ZIPF = 1.5  # the skewed workload's popularity exponent
PREFILL_BUDGET = 4096  # prompt tokens one prefill step admits


@dataclass(frozen=True)
class Request:
    id: int
    arrival: int  # the scheduler step it arrives before
    prompt: int  # prompt tokens
    output: int  # output tokens, the first one from the prefill
    adapter: int


def adapter_pool(workload: str, n: int) -> int:
    """The number of adapters a trace of ``n`` requests of ``workload`` draws from."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; expected one of {', '.join(WORKLOADS)}")
    return {"distinct": n, "identical": 1}.get(workload, math.ceil(math.sqrt(n)))


def build_trace(
    n: int, workload: str, *, rate: float = RATE, prompt_lens: tuple[int, int] = PROMPT_LENS,
    output_lens: tuple[int, int] = OUTPUT_LENS, seed: int = 0,
) -> list[Request]:  # fmt: skip
    """``n`` requests in arrival order (ids 0 .. n-1), drawn as the module describes."""
    if n < 1:
        raise ValueError(f"a trace needs at least one request, got {n}")
    if not rate > 0:
        raise ValueError(f"the arrival rate must be positive, got {rate}")
    for name, (lo, hi) in (("prompt", prompt_lens), ("output", output_lens)):
        if not 1 <= lo <= hi:
            raise ValueError(f"{name} lengths must satisfy 1 <= lo <= hi, got [{lo}, {hi}]")
    pool = adapter_pool(workload, n)
    times, picks = random.Random(seed), random.Random(f"{seed}:adapters")
    if workload == "distinct":
        adapters = list(range(n))
    elif workload == "skewed":
        adapters = picks.choices(range(pool), weights=[k**-ZIPF for k in range(1, pool + 1)], k=n)
    else:  # uniform, identical (a pool of one)
        adapters = [picks.randrange(pool) for _ in range(n)]
    out, clock = [], 0.0
    for i in range(n):
        clock += times.expovariate(rate)
        prompt, output = times.randint(*prompt_lens), times.randint(*output_lens)
        out.append(Request(i, math.floor(clock), prompt, output, adapters[i]))
    return out


@dataclass(frozen=True)
class TraceStep:
    """One scheduler step: when it runs on the trace's clock, its requests in token order (stably sorted by
    adapter), each one's tokens in the step (decode: 1; prefill: its prompt), and the segments of those tokens
    with their adapters."""

    clock: int  # the step's number on the clock arrivals are counted on (idle stretches skipped)
    kind: str  # prefill | decode
    requests: tuple[int, ...]
    tokens: tuple[int, ...]
    seg_lens: tuple[int, ...]
    adapters: tuple[int, ...]

    @property
    def key(self) -> tuple:
        """What the step computes: equal keys, the same step (up to which requests they are)."""
        return self.kind, self.tokens, self.seg_lens, self.adapters


def _grouped(clock: int, kind: str, requests: Sequence[Request], tokens: Sequence[int]) -> TraceStep:
    order = sorted(range(len(requests)), key=lambda j: requests[j].adapter)
    segs = [(a, sum(tokens[j] for j in js)) for a, js in itertools.groupby(order, key=lambda j: requests[j].adapter)]
    return TraceStep(
        clock, kind, tuple(requests[j].id for j in order), tuple(tokens[j] for j in order), tuple(n for _, n in segs),
        tuple(a for a, _ in segs),
    )  # fmt: skip


def schedule(trace: Sequence[Request], *, max_running: int, budget: int = PREFILL_BUDGET) -> list[TraceStep]:
    """The steps that serve ``trace`` with continuous batching, as the module describes."""
    if max_running < 1 or budget < 1:
        raise ValueError(f"max_running and budget must be positive, got {max_running} and {budget}")
    pending = deque(sorted(trace, key=lambda r: (r.arrival, r.id)))
    waiting: deque[Request] = deque()
    running: list[Request] = []
    left = {r.id: r.output for r in trace}
    steps: list[TraceStep] = []
    clock = 0
    while pending or waiting or running:
        if not running and not waiting:
            clock = max(clock, pending[0].arrival)
        while pending and pending[0].arrival <= clock:
            waiting.append(pending.popleft())
        admitted: list[Request] = []
        while (
            waiting
            and len(running) + len(admitted) < max_running
            and (not admitted or sum(r.prompt for r in admitted) + waiting[0].prompt <= budget)
        ):
            admitted.append(waiting.popleft())
        if admitted:
            steps.append(_grouped(clock, "prefill", admitted, [r.prompt for r in admitted]))
            running += admitted
            served = admitted
        else:
            steps.append(_grouped(clock, "decode", running, [1] * len(running)))
            served = running
        for r in served:
            left[r.id] -= 1
        running = [r for r in running if left[r.id] > 0]
        clock += 1
    return steps


@dataclass(frozen=True)
class TraceRow:
    backend: str
    workload: str
    tokens: int  # prompt and output tokens of every request
    output_tokens: int
    ms: float | None  # the sum of the trace's step times
    tokens_per_s: float | None
    output_tokens_per_s: float | None
    lora_ms: float | None  # ms less the none backend's
    prefill_steps: int
    decode_steps: int
    distinct_steps: int
    error: float | None  # the largest over the distinct steps it was checked on; None for the base model
    status: str  # ok | wrong (not timed)

    @property
    def case(self) -> tuple[str]:
        return (self.workload,)

    def to_json(self) -> dict:
        return asdict(self)


def _built(weights: Weights, cache: KVCache, step: TraceStep) -> Step:
    return PrefillStep(weights, step.tokens) if step.kind == "prefill" else DecodeStep(weights, cache, len(step.tokens))


def run(
    shape: DecoderShape, *, layers: int, rank: int, ctx: int, trace: Sequence[Request], workload: str,
    max_running: int, backends: Sequence[str], device: torch.device, dtype: torch.dtype, tolerance: float,
    budget: int = PREFILL_BUDGET, replays: int = 20, repeats: int = 5,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[TraceRow]:  # fmt: skip
    """One row per backend (in ``backends``' order): the trace served by ``schedule``, every distinct step
    measured once per backend (``progress(done, total)`` after each)."""
    steps = schedule(trace, max_running=max_running, budget=budget)
    distinct = list(dict.fromkeys(s.key for s in steps))
    firsts = {s.key: s for s in reversed(steps)}
    weights = Weights(shape, layers=layers, rank=rank, adapters=max(r.adapter for r in trace) + 1, device=device,
                      dtype=dtype)  # fmt: skip
    cache = KVCache(weights, requests=max_running, ctx=ctx)
    times: dict[tuple, dict[str, float]] = {}
    errors: dict[str, float] = {}
    right = list(backends)  # the backends not yet found wrong
    for done, key in enumerate(distinct, 1):
        step = firsts[key]
        model = _built(weights, cache, step)
        where = f"{workload} trace, {step.kind} step of {len(step.tokens)} requests ({sum(step.tokens)} tokens)"
        times[key], errs = measure_step(model, Layout(step.seg_lens, device, step.adapters), right,
                                        tolerance=tolerance, replays=replays, repeats=repeats, where=where)  # fmt: skip
        for name, e in errs.items():
            errors[name] = max(errors.get(name, 0.0), e)
        right = [b for b in right if b == "none" or b in times[key]]
        del model
        progress(done, len(distinct))
    total_ms = {b: sum(times[s.key][b] for s in steps) for b in ["none", *right]}
    tokens, output = sum(r.prompt + r.output for r in trace), sum(r.output for r in trace)
    prefills = sum(s.kind == "prefill" for s in steps)
    rows = []
    for name in backends:
        ms = total_ms.get(name)
        rows.append(TraceRow(
            name, workload, tokens, output, ms, None if ms is None else tokens / ms * 1e3,
            None if ms is None else output / ms * 1e3, None if ms is None else ms - total_ms["none"], prefills,
            len(steps) - prefills, len(distinct), errors.get(name), "ok" if ms is not None else "wrong",
        ))  # fmt: skip
    return rows
