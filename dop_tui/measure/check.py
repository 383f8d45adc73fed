"""Correctness gate: run a kernel on fresh random operands and compare with the float64 reference.

For an overwriting op the output is poisoned with NaN first, so an element the kernel never writes makes
the relative error infinite; an accumulating op starts from random values, so a skipped element keeps a
wrong value. Either way a wrong kernel fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from dop_tui.measure.launch import bind
from dop_tui.operands import Operands, make_operands
from dop_tui.reference import TOLERANCE, reference_loop, relative_error
from dop_tui.scenario import Scenario


@dataclass(frozen=True)
class CheckResult:
    kernel: str
    config: dict[str, int]
    rel_error: float
    tolerance: float
    error: str | None = None  # an exception raised while binding or running

    @property
    def ok(self) -> bool:
        return self.error is None and self.rel_error <= self.tolerance


def poisoned_start(ops: Operands) -> torch.Tensor:
    """What the output holds before a checked run: NaN where the op overwrites, its random values where it
    accumulates."""
    return ops.out.clone() if ops.scenario.accumulate else torch.full_like(ops.out, float("nan"))


def error_against(kernel_id: str, ops: Operands, config: Mapping[str, int], start: torch.Tensor, ref: torch.Tensor,
                  binder: Callable[[Operands], Callable[[], None]] | None = None) -> float:  # fmt: skip
    """Relative error of one run of ``kernel_id`` on ``ops``, its output reset to ``start`` first, against
    ``ref`` (the float64 reference of the same operands). The one gate: the CPU checker and the GPU workers
    both run it; exceptions propagate. ``binder`` replaces ``bind(kernel_id, ops, config)`` (another version
    of the kernel, as in ``timing.time_graph``)."""
    ops.out.copy_(start)
    (binder(ops) if binder else bind(kernel_id, ops, config))()
    if ops.out.is_cuda:
        torch.cuda.synchronize()
    return relative_error(ops.out, ref)


def check_kernel(
    kernel_id: str,
    scn: Scenario,
    config: Mapping[str, int] | None = None,
    *,
    device: str = "cpu",
    seed: int = 0,
) -> CheckResult:
    """Run ``kernel_id`` with ``config`` once on fresh operands for ``scn`` and compare with the reference."""
    cfg = dict(config or {})
    tol = TOLERANCE[scn.dtype]
    ops = make_operands(scn, device=device, seed=seed)
    ref = reference_loop(ops)
    try:
        err = error_against(kernel_id, ops, cfg, poisoned_start(ops), ref)
    except Exception as exc:  # a failing kernel is a result, not a crash of the checker
        return CheckResult(kernel_id, cfg, float("inf"), tol, f"{type(exc).__name__}: {exc}")
    return CheckResult(kernel_id, cfg, err, tol)
