"""The measurement backends (gpu, interpret, replay): enabling one in this process and opening its runner.

Nothing heavy is imported here at module level: the interpreter must be switched on (``TRITON_INTERPRET``)
before triton is first imported, which the runners' modules do.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from dop_tui.measure.record import Measurement

BACKENDS = ("gpu", "replay", "interpret", "ray")
RAY_MISSING = "the ray backend needs Ray: pip install 'dop-tui[ray]' (on every node of the cluster)"


def gpu_available() -> bool:
    """True when torch sees a CUDA GPU."""
    import torch

    return torch.cuda.is_available()


def enable_backend(backend: str) -> None:
    """Make ``backend`` usable in this process: the interpreter needs ``TRITON_INTERPRET`` before triton is
    imported, the GPU runner a CUDA GPU. ``RuntimeError`` when it cannot be, ``ValueError`` for an unknown one."""
    if backend == "interpret":
        if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
            raise RuntimeError("triton was imported before the interpreter could be enabled; run in a new process")
        os.environ["TRITON_INTERPRET"] = "1"
    elif backend == "gpu":
        if not gpu_available():
            raise RuntimeError("no CUDA GPU is visible: the gpu backend needs a CUDA GPU (try interpret or replay)")
    elif backend == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise RuntimeError(RAY_MISSING)
    elif backend != "replay":
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


@contextlib.contextmanager
def open_runner(
    backend: str, *, seed: int = 0, replay: Iterable[Measurement] = (), replay_label: str = "replay",
    replay_device: str = "", do_bench: bool | str = True, ray: dict[str, Any] | None = None,
) -> Iterator[tuple[Any, str, str]]:  # fmt: skip
    """``(runner, label, device)`` of ``backend``: a replay of the ``replay`` measurements (recorded on
    ``replay_device``, labelled ``replay_label``), the interpreter, the GPU runner, or the Ray runner with
    ``ray`` (``address``, ``measure``, ``workers``) (closed on exit; ``do_bench`` as the GPU runner takes it)."""
    enable_backend(backend)
    if backend == "replay":
        from dop_tui.measure.runners import ReplayRunner

        yield ReplayRunner(replay), replay_label, replay_device
    elif backend == "interpret":
        from dop_tui.measure.runners import InterpretRunner

        yield InterpretRunner(seed), "interpret", "CPU (Triton interpreter, correctness only)"
    elif backend == "ray":
        from dop_tui.measure.ray_runner import RayRunner

        opts = dict(ray or {})
        with RayRunner(opts.get("address", "local"), measure=opts.get("measure", "gpu"),
                       workers=opts.get("workers") or None, do_bench=do_bench, seed=seed) as runner:  # fmt: skip
            n = len(runner.loads())
            yield runner, f"ray ({opts.get('address', 'local')}, {n} workers)", " + ".join(runner.devices)
    else:
        import torch

        from dop_tui.measure.gpu_runner import GpuRunner

        with GpuRunner(do_bench=do_bench) as runner:
            yield runner, "gpu", torch.cuda.get_device_name()
