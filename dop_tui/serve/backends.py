"""LoRA backends of the serving benchmark: who computes ``y += scale * (x A[w]^T) B[w]^T`` in a decode step.

- ``none``: the base model only (no LoRA call);
- ``torch``: gather each token's adapter weights and two batched matmuls, as PEFT does (``baselines_torch``);
- ``vllm``, ``vllm-tuned``, ``sglang``, ``punica``: our calibrated reproductions of those systems' whole LoRA
  delta (``kernels/baselines_*``: vLLM's zeroing + shrink + expand with default or H100-tuned configs,
  SGLang's chunked SGMV, Punica's SGMV);
- ``package:PATH``: a package written by ``dop export`` (its ``add_lora``, dispatch included): PATH is the
  export's folder or the name of the installed package.

A backend binds one closure per (layer, group) on the decoder's static buffers for one segment layout; the
closures launch without host work, so a CUDA graph captures them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from dop_tui.serve.model import Decoder

BASELINE_BACKENDS = {
    "torch": ("baselines_torch", "bind_fused"),
    "vllm": ("baselines_vllm", "bind_fused"),
    "vllm-tuned": ("baselines_vllm", "bind_fused_tuned"),
    "sglang": ("baselines_sglang", "bind_fused"),
    "punica": ("baselines_punica", "bind_fused"),
}
BACKENDS = ("none", *BASELINE_BACKENDS)
SCALE = 0.5  # the LoRA scaling (alpha / r) every backend applies


class BackendError(ValueError):
    """A backend name or package that cannot be used, with the reason."""


def _package(spec: str) -> ModuleType:
    """The exported package named by ``spec``: a folder written by ``dop export`` or an importable name."""
    path = Path(spec)
    if path.is_dir():
        found = [p.parent.name for p in path.glob("*/dispatch.py") if (p.parent / "api.py").exists()]
        if len(found) != 1:
            raise BackendError(f"package:{spec}: not a folder written by dop export (no single package with a "
                               "dispatch table in it)")  # fmt: skip
        sys.path.insert(0, str(path.resolve()))
        spec = found[0]
    try:
        module = importlib.import_module(spec)
    except ImportError as exc:
        raise BackendError(f"package:{spec}: cannot import it ({exc})") from exc
    if not hasattr(module, "add_lora"):
        raise BackendError(f"package:{spec}: has no add_lora (is it a package written by dop export?)")
    return module


def parse_backends(text: str) -> list[str]:
    """Backend names from a comma-separated list; ``package:PATH`` entries are checked by importing them."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BackendError("--backends: no backend named")
    for n in names:
        if n.startswith("package:"):
            _package(n.removeprefix("package:"))
        elif n not in BACKENDS:
            raise BackendError(f"--backends: unknown backend {n!r}; expected {', '.join(BACKENDS)} or package:PATH")
    if "torch" not in names:
        raise BackendError("--backends: torch is needed (every backend's logits are checked against it)")
    return names


class Layout:
    """The segment layout of one batch on the device: requests sorted by adapter, segment s uses adapter s."""

    def __init__(self, seg_lens: Sequence[int], device: torch.device) -> None:
        self.seg_lens = tuple(int(n) for n in seg_lens)
        bounds = [0]
        for n in self.seg_lens:
            bounds.append(bounds[-1] + n)
        self.seg_indptr = torch.tensor(bounds, dtype=torch.int32, device=device)
        self.weight_indices = torch.arange(len(self.seg_lens), dtype=torch.int32, device=device)


def _offsets(h_outs: tuple[int, ...], device: torch.device) -> torch.Tensor:
    offs = [0]
    for h in h_outs:
        offs.append(offs[-1] + h)
    return torch.tensor(offs, dtype=torch.int32, device=device)


def bind_backend(name: str, model: Decoder, layout: Layout) -> Callable[[int, str], None]:
    """The LoRA call of the decoder's step for backend ``name`` on ``layout``: one closure per (layer, group),
    each bound once here."""
    if name == "none":
        return lambda layer, group: None
    groups = {g: outs for g, _, outs in model.shape.groups()}
    offsets = {g: _offsets(outs, model.device) for g, outs in groups.items()}
    seg = (layout.seg_indptr, layout.weight_indices)
    bound: dict[tuple[int, str], Callable[[], None]] = {}
    if name.startswith("package:"):
        pkg = _package(name.removeprefix("package:"))
        for layer, weights in enumerate(model.lora):
            for g, (a, b) in weights.items():
                x, y = model.buf_in[g], model.buf_out[g]

                def call(x: torch.Tensor = x, y: torch.Tensor = y, a: torch.Tensor = a, b: torch.Tensor = b,
                         outs: tuple[int, ...] = groups[g]) -> None:  # fmt: skip
                    pkg.add_lora(y, x, a, b, *seg, SCALE, h_outs=outs, max_seg_len=max(layout.seg_lens))

                bound[layer, g] = call
    else:
        module, function = BASELINE_BACKENDS[name]
        launcher: Any = getattr(importlib.import_module(f"dop_tui.kernels.{module}"), function)
        for layer, weights in enumerate(model.lora):
            for g, (a, b) in weights.items():
                bound[layer, g] = launcher(
                    model.buf_in[g], a, b, model.buf_out[g], *seg, offsets[g], seg_lens=layout.seg_lens,
                    h_outs=groups[g], scale=SCALE, accumulate=True, inter_dtype=torch.float32,
                )  # fmt: skip
    return lambda layer, group: bound[layer, group]()
