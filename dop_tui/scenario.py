"""The tuning scenario: which SGMV operator, on which shapes, dtype and batch of adapter segments.

Operator semantics (DESIGN.md section 2), for segment ``s`` covering tokens ``seg`` and adapter ``w[s]``,
projection ``p`` of ``P`` projections that share the input ``x``:

- shrink: ``v[seg, p*r:(p+1)*r] (+)= scale * x[seg] @ A[w, p*r:(p+1)*r]^T``
  with ``x[T, h_in]`` and ``A[L, P*r, h_in]`` (shrink of P projections is one shrink of rank ``P*r``);
- expand: ``y[seg, off_p:off_p+h_p] (+)= scale * v[seg, p*r:(p+1)*r] @ B[w, off_p:off_p+h_p]^T``
  with ``v[T, P*r]``, ``B[L, sum h_p, r]`` and ``y[T, sum h_p]``;
- fused: ``y (+)= scale * (x @ A^T) @ B^T`` per projection, in one launch or shrink then expand.

``(+)=`` is ``+=`` when ``accumulate`` else ``=``. ``inter_dtype`` is the dtype of ``v`` (fp32, or the
input dtype). A scenario is plain immutable data with a JSON form and a short stable key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

OPS = ("shrink", "expand", "fused")
DTYPES = ("fp16", "bf16", "fp32")
INTER_DTYPES = ("fp32", "input")
DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp32": 4}
DEFAULT_ACCUMULATE = {"shrink": False, "expand": True, "fused": True}


@dataclass(frozen=True)
class Scenario:
    """One SGMV problem. ``h_outs`` has one entry per projection sharing the input (one for the plain case)."""

    op: str
    h_in: int
    h_outs: tuple[int, ...]
    rank: int
    dtype: str
    seg_lens: tuple[int, ...]
    seg_adapters: tuple[int, ...]
    num_adapters: int
    accumulate: bool
    scale: float = 1.0
    inter_dtype: str = "fp32"
    workload: str = "custom"
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "h_outs", tuple(int(h) for h in self.h_outs))
        object.__setattr__(self, "seg_lens", tuple(int(n) for n in self.seg_lens))
        object.__setattr__(self, "seg_adapters", tuple(int(a) for a in self.seg_adapters))
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}; expected one of {', '.join(OPS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unsupported dtype {self.dtype!r}; expected one of {', '.join(DTYPES)}")
        if self.inter_dtype not in INTER_DTYPES:
            raise ValueError(f"unsupported intermediate dtype {self.inter_dtype!r}; expected fp32 or input")
        if self.h_in < 1 or not self.h_outs or min(self.h_outs) < 1:
            raise ValueError(f"hidden sizes must be positive, got h_in={self.h_in}, h_outs={self.h_outs}")
        if self.rank < 1:
            raise ValueError(f"rank must be positive, got {self.rank}")
        if not self.seg_lens:
            raise ValueError("empty batch: a scenario needs at least one segment")
        for i, n in enumerate(self.seg_lens):
            if n < 1:
                raise ValueError(f"segment {i} has length {n}; every segment needs at least one token")
        if len(self.seg_adapters) != len(self.seg_lens):
            raise ValueError(
                f"{len(self.seg_lens)} segments but {len(self.seg_adapters)} adapter indices; one per segment"
            )
        if self.num_adapters < 1:
            raise ValueError(f"num_adapters must be positive, got {self.num_adapters}")
        for i, a in enumerate(self.seg_adapters):
            if not 0 <= a < self.num_adapters:
                raise ValueError(
                    f"adapter index out of range: segment {i} uses adapter {a}, expected [0, {self.num_adapters})"
                )

    # -- derived sizes -------------------------------------------------------------------------------
    @property
    def num_tokens(self) -> int:
        return sum(self.seg_lens)

    @property
    def num_segments(self) -> int:
        return len(self.seg_lens)

    @property
    def max_seg_len(self) -> int:
        return max(self.seg_lens)

    @property
    def num_proj(self) -> int:
        return len(self.h_outs)

    @property
    def total_rank(self) -> int:
        """Columns of the intermediate ``v``: ``P * r``."""
        return self.num_proj * self.rank

    @property
    def total_h_out(self) -> int:
        return sum(self.h_outs)

    @property
    def distinct_adapters(self) -> int:
        return len(set(self.seg_adapters))

    @property
    def elem_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def inter_bytes(self) -> int:
        return 4 if self.inter_dtype == "fp32" else self.elem_bytes

    @property
    def seg_indptr(self) -> tuple[int, ...]:
        out = [0]
        for n in self.seg_lens:
            out.append(out[-1] + n)
        return tuple(out)

    # -- serialisation -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("h_outs", "seg_lens", "seg_adapters", "tags"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scenario:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown scenario fields: {', '.join(sorted(unknown))}")
        d = dict(d)
        for k in ("h_outs", "seg_lens", "seg_adapters", "tags"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    @cached_property
    def key(self) -> str:
        """Short stable key: readable prefix plus a hash of every semantic field (tags excluded)."""
        payload = self.to_json()
        payload.pop("tags")
        payload.pop("workload")
        digest = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]
        outs = "+".join(str(h) for h in self.h_outs)
        return (
            f"{self.op}-{self.h_in}x{outs}-r{self.rank}-{self.dtype}"
            f"-t{self.num_tokens}s{self.num_segments}-{self.workload}-{digest}"
        )

    def describe(self) -> str:
        outs = "+".join(str(h) for h in self.h_outs)
        return (
            f"{self.op} {self.h_in}->{outs} r={self.rank} {self.dtype} {self.workload} "
            f"T={self.num_tokens} segs={self.num_segments}"
        )


def make_scenario(
    op: str,
    h_in: int,
    h_outs: tuple[int, ...] | list[int] | int,
    rank: int,
    dtype: str,
    seg_lens: list[int] | tuple[int, ...],
    *,
    seg_adapters: list[int] | tuple[int, ...] | None = None,
    num_adapters: int | None = None,
    accumulate: bool | None = None,
    scale: float = 1.0,
    inter_dtype: str = "fp32",
    workload: str = "custom",
) -> Scenario:
    """Build a scenario with serving defaults: one adapter per segment, per-op accumulate default."""
    if isinstance(h_outs, int):
        h_outs = (h_outs,)
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    adapters = tuple(range(len(seg_lens))) if seg_adapters is None else tuple(seg_adapters)
    n_adapters = num_adapters if num_adapters is not None else (max(adapters) + 1 if adapters else 1)
    return Scenario(
        op=op,
        h_in=h_in,
        h_outs=tuple(h_outs),
        rank=rank,
        dtype=dtype,
        seg_lens=tuple(seg_lens),
        seg_adapters=adapters,
        num_adapters=n_adapters,
        accumulate=DEFAULT_ACCUMULATE[op] if accumulate is None else accumulate,
        scale=scale,
        inter_dtype=inter_dtype,
        workload=workload,
    )


def scenario_label(key: str, short: bool = False) -> str:
    """A scenario key without its hash, spaced: ``shrink 4096x16 r16 bf16 t64s8 skewed``; ``short`` keeps
    op, shape, rank, tokens and workload: ``shrink 4096x16 r16 T64 skewed``."""
    body, _, digest = key.rpartition("-")
    parts = (body if body and len(digest) == 8 else key).split("-")
    if short and len(parts) == 6:
        op, dims, rank, _, ts, workload = parts
        parts = [op, dims, rank, "T" + ts[1:].split("s")[0], workload]
    return " ".join(parts)
