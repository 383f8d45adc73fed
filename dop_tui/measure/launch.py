"""Resolve a sketch or baseline id to its kernel's bind function (imported lazily: triton loads on use)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

from dop_tui.operands import Operands
from dop_tui.space.sketches import BASELINE_BY_ID, SKETCH_BY_ID

Bind = Callable[[Operands, Mapping[str, int]], Callable[[], None]]


def resolve(kernel_id: str) -> Bind:
    """The ``bind`` function of a sketch id (``op/family/name``) or a baseline id (``op/baseline/name``)."""
    spec = SKETCH_BY_ID.get(kernel_id) or BASELINE_BY_ID.get(kernel_id)
    if spec is None:
        raise ValueError(f"unknown kernel {kernel_id!r}")
    module, func = spec.entry.split(":")
    return getattr(importlib.import_module(f"dop_tui.kernels.{module}"), func)


def bind(kernel_id: str, ops: Operands, config: Mapping[str, int] | None = None) -> Callable[[], None]:
    return resolve(kernel_id)(ops, dict(config or {}))
