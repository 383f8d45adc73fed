"""Run-time dispatch: from what the host knows about a call to the tuned kernel for it, without a device sync.

The table (``dispatch.json``, data written by ``dop export``) lists, per op and problem shape, the kernel the
tuning session measured fastest at each (tokens, segments) layout it covered. A call's key is its shape
(shrink: ``h_in`` and the stacked rank ``N``; expand: rank and the projections' widths; lora: all of them) and
dtype; among the entries of that key the nearest layout wins, by ``|log2 T - log2 T'| + |log2 (T/S) -
log2 (T'/S')|`` (tokens, and mean segment length). A key the session never tuned, or a device other than the
session's, gets the op's safe kernel: a general configuration that is correct for every shape, never a
wrong one; a foreign device is reported once (a warning).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).resolve().parent / "dispatch.json"


@dataclass(frozen=True)
class Choice:
    """One kernel to launch: its module in ``kernels/``, its launcher and its config; ``tuned`` is False for a
    safe fallback, ``why`` says which entry or which fallback."""

    module: str
    launcher: str
    config: dict[str, int]
    tuned: bool
    why: str


@cache
def table() -> dict[str, Any]:
    return json.loads(TABLE_PATH.read_text())


def _distance(tokens: int, segments: int, e: dict[str, Any]) -> float:
    t, s = max(tokens, 1), max(segments, 1)
    return abs(math.log2(t) - math.log2(e["tokens"])) + abs(math.log2(t / s) - math.log2(e["tokens"] / e["segments"]))


_warned: set[str] = set()


def _device_ok(device_name: str) -> bool:
    tuned_on = table()["device"]
    if device_name == tuned_on:
        return True
    if device_name not in _warned:
        _warned.add(device_name)
        warnings.warn(f"kernels tuned on {tuned_on}, running on {device_name}: using the safe kernels", stacklevel=3)
    return False


def nearest(op: str, key: dict[str, Any], tokens: int, segments: int, device_name: str) -> dict[str, Any] | None:
    """The tuned entry of ``op`` (``shrink``, ``expand`` or ``lora``) whose shape matches ``key`` and whose
    layout is nearest to ``tokens``/``segments``; None off the tuned family or on another device. Answers are
    remembered per call shape (the hot path pays one dictionary lookup)."""
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in key.items()))
    return _nearest(op, frozen, tokens, segments, device_name)


@cache
def _nearest(op: str, key: tuple, tokens: int, segments: int, device_name: str) -> dict[str, Any] | None:
    if not _device_ok(device_name):
        return None
    want = {k: list(v) if isinstance(v, tuple) else v for k, v in key}
    same = [e for e in table()["entries"][op] if all(e[k] == v for k, v in want.items())]
    if not same:
        return None
    return min(same, key=lambda e: (_distance(tokens, segments, e), e["tokens"], e["segments"]))


def safe(op: str) -> Choice:
    """The op's general kernel (``shrink`` or ``expand``; the LoRA delta falls back to both)."""
    s = table()["safe"][op]
    return Choice(s["module"], s["launcher"], dict(s["config"]), False, "safe kernel (outside the tuned family)")


def choice(entry: dict[str, Any], why: str) -> Choice:
    return Choice(entry["module"], entry["launcher"], dict(entry["config"]), True, why)
