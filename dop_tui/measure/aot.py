"""Ahead-of-time compilation of a kernel's launches for Hopper (sm_90) on a machine without a GPU.

A bind closure is run with ``JITFunction.run`` replaced by a recorder, so the exact arguments and
constexprs of every launch are captured without a driver; each launch is then compiled with
``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))``. The compiled kernel reports
registers, spills and shared memory. Must run in a process without ``TRITON_INTERPRET=1`` (interpreter
runs and AOT compiles cannot share one process).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

PTR_TYPE = {
    torch.float16: "*fp16",
    torch.bfloat16: "*bf16",
    torch.float32: "*fp32",
    torch.int32: "*i32",
    torch.int64: "*i64",
}


@dataclass(frozen=True)
class CompiledLaunch:
    kernel: str
    registers: int | None  # per thread, from cuobjdump's resource report (None if the tool is missing)
    local_bytes: int | None  # per-thread local memory: register spills and stack arrays
    shared_bytes: int
    num_warps: int
    loads_before_exit: int | None = None  # global loads issued before the first exit in the machine code


def _cuobjdump(cubin: bytes, flag: str) -> str | None:
    """``cuobjdump FLAG`` of the cubin (the tool ships with triton), or None without the tool."""
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not tool.exists():
        return None
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([str(tool), flag, f.name], capture_output=True, text=True, check=False).stdout


def _resource_usage(cubin: bytes) -> tuple[int | None, int | None]:
    """(registers, local bytes) from ``cuobjdump -res-usage``."""
    text = _cuobjdump(cubin, "-res-usage")
    if text is None:
        return None, None
    reg, local = re.search(r"REG:(\d+)", text), re.search(r"LOCAL:(\d+)", text)
    return (int(reg.group(1)) if reg else None), (int(local.group(1)) if local else None)


def loads_before_exit(cubin: bytes) -> int | None:
    """How many global loads (``LDG``) the SASS issues before its first ``EXIT``: the metadata a program
    fetches in its first round trip to memory when an early exit depends on it."""
    text = _cuobjdump(cubin, "-sass")
    if text is None:
        return None
    n = 0
    for op in re.findall(r"\b(LDG|EXIT)\b", text):
        if op == "EXIT":
            return n
        n += 1
    return n


@contextlib.contextmanager
def recording_launches() -> Iterator[list[tuple[Any, tuple, dict]]]:
    """Within the block, Triton launches are recorded as (JITFunction, args, kwargs) instead of run."""
    from triton.runtime.jit import JITFunction

    recorded: list[tuple[Any, tuple, dict]] = []
    original = JITFunction.run

    def record(self: Any, *args: Any, grid: Any, warmup: bool, **kwargs: Any) -> None:
        recorded.append((self, args, dict(kwargs)))

    JITFunction.run = record  # type: ignore[method-assign]
    try:
        yield recorded
    finally:
        JITFunction.run = original  # type: ignore[method-assign]


def _signature(
    fn: Any, args: tuple, kwargs: Mapping[str, Any]
) -> tuple[dict[str, str], dict[tuple[int], Any], dict[tuple[int], list]]:
    """Signature, constexprs and specialisation attributes as the JIT derives them at launch: pointers
    and integers divisible by 16 carry ``tt.divisibility``, and an integer equal to 1 becomes a constant."""
    bound = dict(zip(fn.arg_names, args, strict=False))
    bound.update(kwargs)
    constexpr_idx = {p.num for p in fn.params if p.is_constexpr}
    sig: dict[str, str] = {}
    const: dict[tuple[int], Any] = {}
    attrs: dict[tuple[int], list] = {}
    for i, name in enumerate(fn.arg_names):
        v = bound[name]
        if i in constexpr_idx or (isinstance(v, int) and not isinstance(v, bool) and v == 1):
            sig[name], const[(i,)] = "constexpr", v
        elif isinstance(v, torch.Tensor):
            sig[name] = PTR_TYPE[v.dtype]
            if v.data_ptr() % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(v, bool):
            sig[name] = "i1"
        elif isinstance(v, int):
            sig[name] = "i32" if -(2**31) <= v < 2**31 else "i64"
            if v % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(v, float):
            sig[name] = "fp32"
        else:
            raise TypeError(f"cannot type argument {name}={v!r} of {fn.__name__}")
    return sig, const, attrs


def compile_launches(recorded: list[tuple[Any, tuple, dict]], capability: int = 90) -> list[CompiledLaunch]:
    """Compile every launch in ``recorded`` for ``sm_<capability>`` and report its resources."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    out = []
    for fn, args, kwargs in recorded:
        kw = dict(kwargs)
        opts = {k: kw.pop(k) for k in ("num_warps", "num_stages") if k in kw}
        sig, const, attrs = _signature(fn, args, kw)
        src = ASTSource(fn, sig, constexprs=const, attrs=attrs)
        k = triton.compile(src, target=GPUTarget("cuda", capability, 32), options=opts)
        regs, local = _resource_usage(k.asm["cubin"])
        out.append(CompiledLaunch(fn.__name__, regs, local, int(k.metadata.shared), int(k.metadata.num_warps),
                                  loads_before_exit(k.asm["cubin"])))  # fmt: skip
    return out


class _CompileOnlyDriver:
    """Stands in for the GPU driver in a process without a GPU: the JIT asks it only for the device, the stream
    and the target before compiling, and a warm-up run launches nothing."""

    def __init__(self, capability: int) -> None:
        from triton.backends.compiler import GPUTarget

        self.target = GPUTarget("cuda", capability, 32)

    def get_current_device(self) -> int:
        return 0

    def get_current_stream(self, device: int | None = None) -> int:
        return 0

    def get_current_target(self) -> Any:
        return self.target


def warm_jit_cache(recorded: list[tuple[Any, tuple, dict]], capability: int) -> None:
    """Compile ``recorded`` launches through the JIT itself (warm-up runs), without a GPU, for
    ``sm_<capability>``: the kernels land in Triton's on-disk cache under exactly the keys the JIT computes when
    it launches them on the GPU later, which then only loads the binaries."""
    from triton.runtime.driver import driver

    driver.set_active(_CompileOnlyDriver(capability))
    try:
        for fn, args, kwargs in recorded:
            fn.run(*args, grid=(1,), warmup=True, **kwargs)
    finally:
        driver._active = None  # back to the real driver, created on first use (none exists without a GPU)


def record_kernel(kernel_id: str, scn: Any, config: Mapping[str, int] | None = None) -> list[tuple[Any, tuple, dict]]:
    """The Triton launches ``kernel_id`` makes on CPU operands of ``scn`` (none for a torch baseline)."""
    from dop_tui.measure.launch import bind
    from dop_tui.operands import make_operands

    ops = make_operands(scn, device="cpu")
    with recording_launches() as recorded:
        bind(kernel_id, ops, config)()
    return recorded


def compile_kernel(
    kernel_id: str, scn: Any, config: Mapping[str, int] | None = None, capability: int = 90
) -> list[CompiledLaunch]:
    """Record ``kernel_id``'s launches on CPU operands of ``scn`` and compile them for ``sm_<capability>``."""
    recorded = record_kernel(kernel_id, scn, config)
    if not recorded:
        raise RuntimeError(f"{kernel_id} launched no Triton kernel")
    return compile_launches(recorded, capability)
