"""Write a kernel package from tuned sessions: ``export_package(sessions, out, name)``.

The package (``out/``): ``pyproject.toml``, ``README.md`` (what was tuned and what it measured), and the
importable ``<name>/``: the API and dispatch code (``template/``, copied as is), ``dispatch.json`` (the
table, data), ``kernels/`` (the Triton files the table launches plus their helper, copied as they are:
they import only torch, triton and each other) and ``selftest.py``. It installs with pip and imports without
dop-tui. ``out`` must not exist, or hold an earlier export of the same name (replaced), unless ``force``:
then the export's files are written into it and nothing else there is touched.
"""

from __future__ import annotations

import json
import keyword
import shutil
import tempfile
from pathlib import Path
from typing import Any

import dop_tui.kernels
from dop_tui.export.table import ExportError, build_table, kernel_modules
from dop_tui.export.vllm import vllm_config_files, write_vllm_configs
from dop_tui.session.store import Session

TEMPLATE = Path(__file__).resolve().parent / "template"
MARKER = "dop-export.json"


def check_name(name: str) -> str:
    """A package name: a Python identifier in lower case, not a keyword."""
    if not name.isidentifier() or keyword.iskeyword(name) or name != name.lower():
        raise ExportError(f"package name {name!r} must be a lower-case Python identifier (letters, digits, _)")
    return name


def _check_target(out: Path, name: str, force: bool) -> list[str]:
    """The files of an earlier export of ``name`` at ``out`` (to replace); raises unless ``out`` is free, such
    an export, or ``force``."""
    if not out.exists():
        if not out.parent.is_dir():
            raise ExportError(f"{out.parent} does not exist: create it, or choose another -o")
        return []
    if not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory; choose another -o (or --force)")
    marker = out / MARKER
    if marker.is_file():
        try:
            earlier = json.loads(marker.read_text())
        except (OSError, ValueError):
            earlier = {}
        if earlier.get("name") == name:
            return [f for f in earlier.get("files", []) if isinstance(f, str)]
    if force or not any(out.iterdir()):
        return []
    what = f"an export of {earlier.get('name')!r}" if marker.is_file() else "files that are not an export"
    raise ExportError(f"{out} holds {what}; choose another -o, or --force to write the export's files into it")


def _pyproject(name: str, table: dict[str, Any]) -> str:
    return f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name.replace("_", "-")}"
version = "0.1.0"
description = "SGMV multi-LoRA Triton kernels tuned by dop-tui for {table["device"]}"
readme = "README.md"
requires-python = ">=3.10"
# Bring your own torch build (CUDA or CPU); no version is forced. numpy: the self-test on a CPU runs the kernels
# in Triton's interpreter, which imports it.
dependencies = ["torch", "triton", "numpy"]

[tool.setuptools]
packages = ["{name}", "{name}.kernels"]

[tool.setuptools.package-data]
"{name}" = ["dispatch.json"]
"""


def _readme(name: str, table: dict[str, Any]) -> str:
    e = table["entries"]
    lora = e["lora"]
    shapes = sorted({f"{x['h_in']} -> {'+'.join(map(str, x['h_outs']))}" for x in lora})
    ranks = sorted({x["rank"] for x in e["shrink"] + e["expand"] + lora})
    layouts = sorted({(x["tokens"], x["workload"]) for x in e["shrink"] + e["expand"] + lora})
    batches = sorted({t for t, _ in layouts})
    workloads = sorted({w for _, w in layouts})
    lines = [f"# {name}", "",
             f"SGMV multi-LoRA kernels in Triton, tuned by dop-tui on **{table['device']}** "
             f"(torch {table['env'].get('torch', '?')}, triton {table['env'].get('triton', '?')}) from "
             f"{', '.join(table['sessions'])}.", "",
             f"- LoRA delta shapes (h_in -> h_out): {', '.join(shapes) or 'none'}",
             f"- ranks: {', '.join(map(str, ranks))}; dtypes: {', '.join(sorted({x['dtype'] for x in lora}) or ['-'])}",
             f"- batch sizes (tokens): {', '.join(map(str, batches))}; workloads: {', '.join(workloads)}",
             f"- tuned entries: {len(e['shrink'])} shrink, {len(e['expand'])} expand, {len(lora)} LoRA delta",
             ""]  # fmt: skip
    if table["summary"]:
        lines += ["Measured speedup of the LoRA delta (this package's kernels against each baseline's own delta, "
                  "same GPU, CUDA-graph timing; geo-mean over the tuned cases):", "",
                  "| against | geo-mean | min | max | cases |", "|---|---|---|---|---|"]  # fmt: skip
        for k, r in table["summary"].items():
            label = "the best baseline per case" if k == "best" else k
            lines.append(f"| {label} | {r['geomean']:.2f}x | {r['min']:.2f}x | {r['max']:.2f}x | {r['n']} |")
        lines.append("")
    lines += ["## Use", "", "```python", f"import {name}", "",
              "# y[T, h_out] += scale * (x[T, h_in] @ A[w]^T) @ B[w]^T per segment of tokens",
              "# A[L, r, h_in], B[L, h_out, r]; seg_indptr[S+1], weight_indices[S]: int32 on the tensors' device",
              f"{name}.add_lora(y, x, A, B, seg_indptr, weight_indices, scale)",
              f"{name}.add_lora(y_qkv, x, A_qkv, B_qkv, seg_indptr, weight_indices, scale, h_outs=(4096, 4096, 4096))",
              f"{name}.shrink(v, x, A, seg_indptr, weight_indices, scale)   # v[T, r] fp32",
              f"{name}.expand(y, v, B, seg_indptr, weight_indices)          # y += v @ B^T",
              f"order, seg_indptr, weight_indices = {name}.segments_from_token_mapping(token_lora_mapping, 'cuda')",
              "```", "",
              "Dispatch uses only what the host knows (shapes, dtype, tokens, segments, the device's name): "
              "the nearest tuned layout of the same shape, else a safe general kernel (correct for every "
              "shape); on another GPU it uses the safe kernels and warns once. Calls are stream-ordered and "
              "can be captured in a CUDA graph (make one call per shape before capturing: the first allocates "
              "the intermediate). The overlapped form (shrink on a side stream during the base GEMM, expand "
              f"after it) is in `{name}/api.py`.", "",
              f"Check every kernel: `python -m {name}.selftest` (on a CPU the kernels run in the Triton "
              "interpreter).", ""]  # fmt: skip
    return "\n".join(lines)


FORMATS = ("package", "vllm", "both")
VLLM_FOLDER = "vllm_configs"


def export_package(
    sessions: list[tuple[str, Session]], out: Path, name: str, force: bool = False, fmt: str = "package"
) -> dict[str, Any]:
    """Write the package (``fmt`` "package"), vLLM's tuned-config files (``"vllm"``: into ``out`` itself) or
    both (the files in ``out/vllm_configs``); returns the dispatch table (empty for "vllm") and, under
    ``"vllm_files"``, the vLLM file names. ``ExportError`` names what is wrong."""
    if fmt not in FORMATS:
        raise ExportError(f"--format: unknown {fmt!r}; expected one of {', '.join(FORMATS)}")
    name = check_name(name)
    earlier = _check_target(out, name, force)
    table = build_table(sessions, name) if fmt != "vllm" else {}
    vllm_files = vllm_config_files(sessions) if fmt != "package" else {}
    kernels_dir = Path(dop_tui.kernels.__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix=".dop-export-", dir=out.parent if out.parent.is_dir() else None) as tmp:
        root = Path(tmp)
        if table:
            pkg = root / name
            (pkg / "kernels").mkdir(parents=True)
            for f in ("__init__.py", "api.py", "dispatch.py", "selftest.py"):
                shutil.copyfile(TEMPLATE / f, pkg / f)
            for mod in ("__init__", "_common", *kernel_modules(table)):
                shutil.copyfile(kernels_dir / f"{mod}.py", pkg / "kernels" / f"{mod}.py")
            (pkg / "dispatch.json").write_text(json.dumps(table, indent=1) + "\n")
            (root / "pyproject.toml").write_text(_pyproject(name, table))
            (root / "README.md").write_text(_readme(name, table))
        if vllm_files:
            write_vllm_configs(vllm_files, root / VLLM_FOLDER if table else root)
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        (root / MARKER).write_text(json.dumps({"name": name, "files": [*files, MARKER]}, indent=1) + "\n")
        out.mkdir(exist_ok=True)
        for rel in earlier:  # an earlier export of this name: its own files only
            old = out / rel
            if old.is_file() and old.resolve().is_relative_to(out.resolve()):
                old.unlink()
        for rel in [*files, MARKER]:
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(root / rel, dest)
    return {**table, "vllm_files": sorted(vllm_files)}
