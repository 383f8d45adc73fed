"""Correctness gate: run a kernel on fresh random operands and compare with the float64 reference.

For an overwriting op the output is poisoned with NaN first, so an element the kernel never writes makes
the relative error infinite; an accumulating op starts from random values, so a skipped element keeps a
wrong value. Either way a wrong kernel fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from dop_tui.measure.launch import bind
from dop_tui.operands import make_operands
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
    if not scn.accumulate:
        ops.out.fill_(float("nan"))
    try:
        run = bind(kernel_id, ops, cfg)
        run()
        if ops.x.is_cuda:
            torch.cuda.synchronize()
    except Exception as exc:  # a failing kernel is a result, not a crash of the checker
        return CheckResult(kernel_id, cfg, float("inf"), tol, f"{type(exc).__name__}: {exc}")
    return CheckResult(kernel_id, cfg, relative_error(ops.out, ref), tol)
