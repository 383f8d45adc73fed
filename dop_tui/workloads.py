"""Segment-length generators for multi-LoRA batches.

Decode workloads follow Punica's ``benchmarks/benchmark_utils.py::get_lora_lens`` (the paper's four
traffic mixes); prefill draws segment lengths in a token range; a per-token adapter mapping (vLLM's
``token_lora_mapping``, -1 = no adapter) converts to contiguous segments by a stable sort.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

WORKLOADS = ("distinct", "uniform", "skewed", "identical")


def _check_batch(bs: int) -> None:
    if not isinstance(bs, int) or bs < 1:
        raise ValueError(f"empty batch: batch size must be a positive integer, got {bs!r}")


def distinct(bs: int) -> list[int]:
    """Every request has its own adapter: ``[1] * bs``."""
    _check_batch(bs)
    return [1] * bs


def identical(bs: int) -> list[int]:
    """All requests share one adapter: ``[bs]``."""
    _check_batch(bs)
    return [bs]


def uniform(bs: int) -> list[int]:
    """``n = ceil(sqrt(bs))`` near-equal segments summing to ``bs`` (the first ones one token longer)."""
    _check_batch(bs)
    n = math.ceil(math.sqrt(bs))
    lens = [bs // n] * n
    diff = bs - sum(lens)
    for i in range(abs(diff)):
        lens[i] += 1 if diff > 0 else -1
    return lens


def skewed(bs: int) -> list[int]:
    """Deterministic Zipf(1.5): lengths 1, 1, 2, 3, 5, ... (``a *= 1.5``) then the remainder, descending."""
    _check_batch(bs)
    lens: list[int] = []
    a = 1.0
    while sum(lens) + math.floor(a) < bs:
        lens.append(math.floor(a))
        a *= 1.5
    lens.append(bs - sum(lens))
    return sorted(lens, reverse=True)


def decode_lens(workload: str, bs: int) -> list[int]:
    """Segment lengths of a named decode workload."""
    table = {"distinct": distinct, "uniform": uniform, "skewed": skewed, "identical": identical}
    if workload not in table:
        raise ValueError(f"unknown workload {workload!r}; expected one of {', '.join(WORKLOADS)}")
    return table[workload](bs)


def prefill_lens(num_segments: int, lo: int = 128, hi: int = 2048, seed: int = 0) -> list[int]:
    """``num_segments`` prompt segments with lengths drawn uniformly in ``[lo, hi]`` (seeded)."""
    if num_segments < 1:
        raise ValueError(f"empty batch: need at least one prefill segment, got {num_segments}")
    if not 1 <= lo <= hi:
        raise ValueError(f"prefill length range must satisfy 1 <= lo <= hi, got [{lo}, {hi}]")
    rng = random.Random(seed)
    return [rng.randint(lo, hi) for _ in range(num_segments)]


@dataclass(frozen=True)
class TokenGrouping:
    """Contiguous segments made from a per-token adapter mapping.

    ``order[i]`` is the original index of the i-th token in segment order (tokens without an adapter are
    left out); segment ``j`` covers ``seg_lens[j]`` consecutive tokens of ``order`` and uses adapter
    ``adapters[j]``.
    """

    order: tuple[int, ...]
    seg_lens: tuple[int, ...]
    adapters: tuple[int, ...]
    unmapped: int


def from_token_mapping(mapping: Sequence[int], num_adapters: int | None = None) -> TokenGrouping:
    """Group tokens by adapter with a stable sort; ``-1`` marks a token that uses no adapter."""
    mapping = [int(m) for m in mapping]
    for i, m in enumerate(mapping):
        if m < -1 or (num_adapters is not None and m >= num_adapters):
            bound = f"[-1, {num_adapters})" if num_adapters is not None else ">= -1"
            raise ValueError(f"adapter index out of range: token {i} maps to {m}, expected {bound}")
    order = sorted((i for i, m in enumerate(mapping) if m >= 0), key=lambda i: mapping[i])
    if not order:
        raise ValueError("empty batch: no token of the mapping uses an adapter")
    seg_lens: list[int] = []
    adapters: list[int] = []
    for i in order:
        if adapters and adapters[-1] == mapping[i]:
            seg_lens[-1] += 1
        else:
            adapters.append(mapping[i])
            seg_lens.append(1)
    return TokenGrouping(tuple(order), tuple(seg_lens), tuple(adapters), len(mapping) - len(order))
