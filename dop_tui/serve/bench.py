"""The serving benchmark: decode steps of a LoRA-serving decoder under each backend, checked, then timed.

For each batch size and workload (Punica's segment layouts, one adapter per segment), every backend is bound to
the same decoder and the same layout. The torch backend's logits are the reference: the benchmark refuses to
time a backend whose logits differ from them by more than ``tolerance`` (max |difference| / max |reference|),
and refuses the whole case if the LoRA changes nothing (torch's logits equal the base model's). On a GPU one
decode step is captured in a CUDA graph (as vLLM and SGLang run decode) and replayed: ``ms_per_step`` is the
median over ``repeats`` timings of ``replays`` replays. On a CPU (the ``tiny`` preset, kernels in the Triton
interpreter) the time is the checked eager step's: a check, not a speed.

``lora_ms`` is a backend's step time less the ``none`` backend's; ``lora_floor_ms`` the time reading the LoRA
weights of the batch's adapters takes at the device's copy bandwidth.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import torch

from dop_tui.serve.backends import BASELINE_NAMES, OVERLAP, Layout, Lora, bind_backend
from dop_tui.serve.model import DecoderShape, DecodeStep, KVCache, Step, Weights
from dop_tui.workloads import decode_lens


@dataclass(frozen=True)
class ServeCase:
    batch: int
    workload: str
    seg_lens: tuple[int, ...]


@dataclass(frozen=True)
class Row:
    backend: str
    batch: int
    workload: str
    ms_per_step: float | None
    tokens_per_s: float | None
    lora_ms: float | None
    lora_floor_ms: float
    error: float | None  # max |logits - torch's| / max |torch's|; None for the base model
    status: str  # ok | wrong (not timed)

    @property
    def case(self) -> tuple[int, str]:
        return self.batch, self.workload

    def to_json(self) -> dict:
        return asdict(self)


def cases(batch_sizes: Sequence[int], workloads: Sequence[str]) -> list[ServeCase]:
    """One case per batch size and workload; workloads with the same layout (all of them at batch 1) once."""
    out, seen = [], set()
    for bs in batch_sizes:
        for wl in workloads:
            lens = tuple(decode_lens(wl, bs))
            if (bs, lens) not in seen:
                seen.add((bs, lens))
                out.append(ServeCase(bs, wl, lens))
    return out


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """``max |out - ref| / max |ref|``."""
    return float((out.float() - ref.float()).abs().max() / ref.float().abs().max().clamp_min(1e-30))


def time_step(step: Callable[[], object], replays: int, repeats: int) -> float:
    """Milliseconds per step on the GPU: one step captured in a CUDA graph, the median of ``repeats`` timings of
    ``replays`` replays."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    for _ in range(3):
        graph.replay()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(replays):
            graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / replays)
    del graph
    return statistics.median(times)


def checked_step(model: Step, lora: Lora) -> tuple[torch.Tensor, float]:
    """The logits of one eager step and its wall time in milliseconds (the CPU's only timing)."""
    t0 = time.perf_counter()
    logits = model.step(lora).clone()
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return logits, (time.perf_counter() - t0) * 1e3


def measure_step(
    model: Step, layout: Layout, backends: Sequence[str], *, tolerance: float, replays: int, repeats: int,
    where: str,
) -> tuple[dict[str, float], dict[str, float]]:  # fmt: skip
    """``none``, ``torch`` (the reference), then the other ``backends``, each bound on ``layout`` and its eager
    step's logits checked against torch's: (ms per step of ``none`` and of every backend within ``tolerance``,
    every backend's error but ``none``'s). On a GPU the time is ``time_step``'s, on a CPU the eager step's.
    Refuses (``RuntimeError``, naming the step by ``where``) a failing backend and a LoRA that barely moves the
    logits."""
    on_gpu = model.device.type == "cuda"
    ref: torch.Tensor | None = None
    errors: dict[str, float] = {}
    times: dict[str, float] = {}
    for name in ["none", "torch", *(b for b in backends if b not in ("none", "torch"))]:
        try:
            lora = bind_backend(name, model, layout)
            logits, eager_ms = checked_step(model, lora)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise RuntimeError(f"backend {name} failed at {where}: {exc}") from exc
        if name == "none":
            base_logits = logits
        elif ref is None:  # torch: the reference
            ref, effect = logits, rel_error(base_logits, logits)
            if effect <= 3 * tolerance:
                raise RuntimeError(f"{where}: the LoRA changes the logits by only {effect:.1e}; the check could "
                                   "not tell a wrong backend")  # fmt: skip
        if name != "none":
            errors[name] = rel_error(logits, ref)
        if name == "none" or errors[name] <= tolerance:
            times[name] = time_step(lambda lora=lora: model.step(lora), replays, repeats) if on_gpu else eager_ms
    return times, errors


def run(
    shape: DecoderShape, *, layers: int, rank: int, ctx: int, serve_cases: Sequence[ServeCase],
    backends: Sequence[str], device: torch.device, dtype: torch.dtype, bandwidth: float, tolerance: float,
    replays: int = 20, repeats: int = 5,
) -> Iterator[list[Row]]:  # fmt: skip
    """Each case's rows (one per backend, in ``backends``' order) once the case is measured; the base model and
    the torch backend (whose logits are the reference) run first."""
    by_batch: dict[int, list[ServeCase]] = {}
    for c in serve_cases:
        by_batch.setdefault(c.batch, []).append(c)
    for batch, group in by_batch.items():
        adapters = max(len(c.seg_lens) for c in group)
        weights = Weights(shape, layers=layers, rank=rank, adapters=adapters, device=device, dtype=dtype)
        model = DecodeStep(weights, KVCache(weights, requests=batch, ctx=ctx), batch)
        for case in group:
            layout = Layout(case.seg_lens, device)
            times, errors = measure_step(model, layout, backends, tolerance=tolerance, replays=replays,
                                         repeats=repeats, where=f"batch {case.batch} {case.workload}")  # fmt: skip
            floor_ms = weights.lora_bytes(len(case.seg_lens)) / bandwidth * 1e3
            yield [_row(name, case, times, errors, floor_ms) for name in backends]
        del model, weights
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _row(name: str, case: ServeCase, times: dict[str, float], errors: dict[str, float], floor_ms: float) -> Row:
    ms = times.get(name)
    return Row(
        name, case.batch, case.workload, ms, None if ms is None else case.batch / ms * 1e3,
        None if ms is None else ms - times["none"], floor_ms, errors.get(name), "ok" if ms is not None else "wrong",
    )  # fmt: skip


class Measured(Protocol):
    """A row ``summary`` reads: a backend's result in one case (rows of one case compare)."""

    @property
    def backend(self) -> str: ...
    @property
    def case(self) -> tuple: ...
    @property
    def status(self) -> str: ...
    @property
    def tokens_per_s(self) -> float | None: ...
    @property
    def lora_ms(self) -> float | None: ...


def summary(rows: Sequence[Measured]) -> dict[str, dict[str, float]]:
    """Per backend that is not a baseline (an exported package): geo-means over the cases of its LoRA cost over
    the best baseline's (``lora_vs_best``, lower is better; cases where a LoRA cost is not positive are left out)
    and of its tokens/s over each baseline's (``tokens_vs_<name>``) and the best one's (``tokens_vs_best``).
    Every backend counts at its faster form, plain or ``+overlap``, when both ran."""
    best: dict[tuple, dict[str, Measured]] = {}
    for r in rows:
        if r.status != "ok" or r.tokens_per_s is None:
            continue
        case = best.setdefault(r.case, {})
        family = r.backend.removesuffix(OVERLAP)
        if family not in case or r.tokens_per_s > case[family].tokens_per_s:
            case[family] = r
    families = {r.backend.removesuffix(OVERLAP) for r in rows}
    out: dict[str, dict[str, float]] = {}
    for name in sorted(families - set(BASELINE_NAMES) - {"none"}):
        ratios: dict[str, list[float]] = {}
        for case in best.values():
            ours, base = case.get(name), {b: case[b] for b in BASELINE_NAMES if b in case}
            if ours is None or not base:
                continue
            lowest = min(b.lora_ms for b in base.values() if b.lora_ms is not None)
            if lowest > 0 and ours.lora_ms is not None and ours.lora_ms > 0:
                ratios.setdefault("lora_vs_best", []).append(ours.lora_ms / lowest)
            for b, row in base.items():
                ratios.setdefault(f"tokens_vs_{b}", []).append(ours.tokens_per_s / row.tokens_per_s)
            ratios.setdefault("tokens_vs_best", []).append(
                ours.tokens_per_s / max(r.tokens_per_s for r in base.values())
            )
        out[name] = {k: statistics.geometric_mean(v) for k, v in ratios.items()}
    return out
