"""LoRA backends of the serving benchmark: who computes ``y += scale * (x A[w]^T) B[w]^T`` in a step.

- ``none``: the base model only (no LoRA call);
- ``torch``: gather each token's adapter weights and two batched matmuls, as PEFT does (``baselines_torch``);
- ``vllm``, ``vllm-tuned``, ``sglang``, ``punica``: our calibrated reproductions of those systems' whole LoRA
  delta (``kernels/baselines_*``: vLLM's zeroing + shrink + expand with default or H100-tuned configs,
  SGLang's chunked SGMV, Punica's SGMV);
- ``package:PATH``: a package written by ``dop export`` (its ``add_lora``, dispatch included): PATH is the
  export's folder or the name of the installed package.

A backend binds one closure per (layer, group) on a step's static buffers for one segment layout; the
closures launch without host work, so a CUDA graph captures them. ``NAME+overlap`` runs backend NAME beside the
base GEMM on a side stream (``_overlapped``).
"""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import torch

from dop_tui.serve.model import Step
from dop_tui.space import BASELINE_BY_ID, BASELINES

BASELINE_NAMES = tuple(dict.fromkeys(b.name for b in BASELINES))  # every baseline of the search space
BACKENDS = ("none", *BASELINE_NAMES)
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
        if str(path.resolve()) not in sys.path:
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
    """The segment layout of one batch on the device: tokens sorted by adapter, segment s of ``seg_lens[s]``
    tokens uses adapter ``adapters[s]`` (default: adapter s)."""

    def __init__(self, seg_lens: Sequence[int], device: torch.device, adapters: Sequence[int] | None = None) -> None:
        self.seg_lens = tuple(int(n) for n in seg_lens)
        self.adapters = tuple(range(len(self.seg_lens))) if adapters is None else tuple(int(a) for a in adapters)
        if len(self.adapters) != len(self.seg_lens):
            raise ValueError(f"{len(self.seg_lens)} segments and {len(self.adapters)} adapters: expected one each")
        bounds = list(itertools.accumulate(self.seg_lens, initial=0))
        self.seg_indptr = torch.tensor(bounds, dtype=torch.int32, device=device)
        self.weight_indices = torch.tensor(self.adapters, dtype=torch.int32, device=device)


def _offsets(model: Step) -> dict[str, torch.Tensor]:
    """Each group's projection offsets into its output's columns (prefix sums of its widths), on the device."""
    return {g: torch.tensor(list(itertools.accumulate(outs, initial=0)), dtype=torch.int32, device=model.device)
            for g, _, outs in model.shape.groups()}  # fmt: skip


OVERLAP = "+overlap"


class Lora:
    """One backend's LoRA calls in a step. The step calls ``before(layer, group)`` just before the group's
    base GEMM and ``after(layer, group)`` just after it; a plain backend does all its work in ``after``."""

    def __init__(self, after: Callable[[int, str], None], before: Callable[[int, str], None] | None = None) -> None:
        self.after = after
        self.before = before or (lambda layer, group: None)


def bind_backend(name: str, model: Step, layout: Layout) -> Lora:
    """Backend ``name`` bound on ``layout``: one closure per (layer, group), each bound once here. A name ending in
    ``+overlap`` runs its LoRA on a side CUDA stream while the base GEMM runs (see ``_overlapped``)."""
    if name == "none":
        return Lora(lambda layer, group: None)
    if name.endswith(OVERLAP):
        return _overlapped(name.removesuffix(OVERLAP), model, layout)
    bound = _bind_delta(name, model, layout, {g: model.buf_out[g] for g in model.buf_out})
    return Lora(lambda layer, group: bound[layer, group]())


def _bind_delta(
    name: str, model: Step, layout: Layout, outputs: dict[str, torch.Tensor]
) -> dict[tuple[int, str], Callable[[], None]]:
    """``outputs[group] += delta`` per (layer, group) by backend ``name``'s whole-delta call."""
    groups = {g: outs for g, _, outs in model.shape.groups()}
    seg = (layout.seg_indptr, layout.weight_indices)
    bound: dict[tuple[int, str], Callable[[], None]] = {}
    if name.startswith("package:"):
        pkg = _package(name.removeprefix("package:"))
        for layer, weights in enumerate(model.lora):
            for g, (a, b) in weights.items():
                x, y = model.buf_in[g], outputs[g]

                def call(x: torch.Tensor = x, y: torch.Tensor = y, a: torch.Tensor = a, b: torch.Tensor = b,
                         outs: tuple[int, ...] = groups[g]) -> None:  # fmt: skip
                    pkg.add_lora(y, x, a, b, *seg, SCALE, h_outs=outs, max_seg_len=max(layout.seg_lens))

                bound[layer, g] = call
        return bound
    launcher, offsets = BASELINE_BY_ID[f"fused/baseline/{name}"].entry.resolve(), _offsets(model)
    for layer, weights in enumerate(model.lora):
        for g, (a, b) in weights.items():
            bound[layer, g] = launcher(
                model.buf_in[g], a, b, outputs[g], *seg, offsets[g], seg_lens=layout.seg_lens, h_outs=groups[g],
                scale=SCALE, accumulate=True, inter_dtype=torch.float32,
            )  # fmt: skip
    return bound


def _overlapped(name: str, model: Step, layout: Layout) -> Lora:
    """The LoRA beside the base GEMM, the way vLLM's dual-stream mode runs it.

    A baseline: its shrink (into its own intermediate: fp32, SGLang's 16-bit) on a side stream that starts when
    the GEMM's input is ready, its expand into the GEMM's output after both. A package (one fused launch): the
    whole delta into a zeroed side buffer on the side stream, then one add into the GEMM's output. On a CPU the
    same work runs in order."""
    gpu = model.device.type == "cuda"
    side = torch.cuda.Stream(model.device) if gpu else None
    groups = {g: outs for g, _, outs in model.shape.groups()}
    seg = (layout.seg_indptr, layout.weight_indices)
    first: dict[tuple[int, str], Callable[[], None]] = {}  # on the side stream
    then: dict[tuple[int, str], Callable[[], None]] = {}  # on the main stream, after the GEMM
    if name.startswith("package:"):
        deltas = {g: torch.empty_like(model.buf_out[g]) for g in model.buf_out}
        whole = _bind_delta(name, model, layout, deltas)
        for key, call in whole.items():
            d, y = deltas[key[1]], model.buf_out[key[1]]
            first[key] = lambda d=d, call=call: (d.zero_(), call())
            then[key] = lambda d=d, y=y: y.add_(d)
    else:
        shrink, expand = (BASELINE_BY_ID[f"{op}/baseline/{name}"].entry.resolve() for op in ("shrink", "expand"))
        offsets = _offsets(model)
        inter = model.dtype if name == "sglang" else torch.float32
        for layer, weights in enumerate(model.lora):
            for g, (a, b) in weights.items():
                v = torch.empty(model.tokens, a.shape[1], dtype=inter, device=model.device)
                kw = {"seg_lens": layout.seg_lens, "h_outs": groups[g]}
                first[layer, g] = shrink(model.buf_in[g], a, v, *seg, scale=SCALE, accumulate=False, **kw)
                then[layer, g] = expand(v, b, model.buf_out[g], *seg, offsets[g], scale=1.0, accumulate=True,
                                        **kw)  # fmt: skip

    def before(layer: int, group: str) -> None:
        if side is None:
            first[layer, group]()
            return
        side.wait_stream(torch.cuda.current_stream())  # the GEMM's input is ready
        with torch.cuda.stream(side):
            first[layer, group]()

    def after(layer: int, group: str) -> None:
        if side is not None:
            torch.cuda.current_stream().wait_stream(side)
        then[layer, group]()

    return Lora(after, before)
