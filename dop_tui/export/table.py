"""The dispatch table an export ships: per op and shape, the fastest kernel the sessions measured per layout.

Plain data (JSON). ``entries["shrink"]``: keyed by ``h_in``, ``n`` (the stacked rank P*r) and dtype;
``entries["expand"]``: by rank, ``h_outs`` and dtype; ``entries["lora"]``: the whole delta by ``h_in``,
``h_outs``, rank and dtype, with the kernels that make it (one fused launch, or a shrink then an expand) as
``session.summary.lora_delta`` chose them. Each entry has its layout (``tokens``, ``segments``), the kernel's
module, launcher and config, its time and its speedups over the baselines. ``safe``: per op a general kernel,
correct for every shape, used outside the tuned family.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dop_tui.measure.record import Measurement
from dop_tui.scenario import Scenario
from dop_tui.session.store import Session
from dop_tui.session.summary import Best, best_per_scenario, delta_summary, session_delta
from dop_tui.space import SKETCH_BY_ID

SAFE = {
    "shrink": ("shrink", "bind_tile_dot",
               {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 64, "WEIGHT_HINT": 0, "num_warps": 4, "num_stages": 2}),
    "expand": ("expand", "bind_tile_dot",
               {"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 16, "WEIGHT_HINT": 0, "num_warps": 4, "num_stages": 2}),
}  # fmt: skip


class ExportError(ValueError):
    """Sessions that cannot be exported, with the reason."""


def kernel_ref(m: Measurement) -> dict[str, Any]:
    """Where a measured sketch's launcher lives in ``kernels/``, and its config."""
    entry = SKETCH_BY_ID[m.kernel].entry
    module, launcher = entry.module, entry.function
    return {"op": m.kernel.split("/")[0], "sketch": m.kernel, "module": module, "launcher": launcher,
            "config": {k: int(v) for k, v in m.config.items()}}  # fmt: skip


def _layout(s: Scenario) -> dict[str, Any]:
    return {"dtype": s.dtype, "rank": s.rank, "tokens": s.num_tokens, "segments": s.num_segments,
            "workload": s.workload}  # fmt: skip


def _timing(b: Best) -> dict[str, Any]:
    return {"us": b.measurement.us, "speedup": b.speedup, "vs_best": b.vs_best}


def merge(sessions: list[tuple[str, Session]]) -> Session:
    """One session of every scenario and measurement; all must come from one device, with GPU timings."""
    devices = {s.device for _, s in sessions}
    if len(devices) != 1:
        raise ExportError(f"sessions from different devices ({', '.join(sorted(devices))}): export one device")
    device = devices.pop()
    merged = Session(device=device, env=dict(sessions[0][1].env))
    for name, s in sessions:
        if not any(m.status == "ok" and m.us is not None for m in s.measurements):
            raise ExportError(f"{name}: no timed result to export (a session measured on a GPU is needed)")
        for key, scn in s.scenarios.items():
            merged.scenarios.setdefault(key, scn)
        merged.measurements.extend(s.measurements)
    if not device or device in ("interpret", "cpu"):
        raise ExportError(f"the sessions name no GPU (device {device!r}): nothing was timed on a GPU to export")
    return merged


def only(session: Session, keep: Callable[[str], bool]) -> Session:
    """The session's scenarios with the measurements of the baselines and of the sketches ``keep`` accepts."""
    kept = [m for m in session.measurements if "/baseline/" in m.kernel or keep(m.kernel)]
    return Session(device=session.device, env=session.env, scenarios=session.scenarios, measurements=kept)


def packaged(kernel: str) -> bool:
    """The sketches a package ships: ours (the vllm family's results are exported as vLLM's config files)."""
    return kernel in SKETCH_BY_ID and SKETCH_BY_ID[kernel].family != "vllm"


def build_table(sessions: list[tuple[str, Session]], name: str) -> dict[str, Any]:
    """The dispatch table of ``sessions`` (``(file name, session)`` pairs) for the package ``name``."""
    merged = only(merge(sessions), packaged)
    best = {b.scenario: b for b in best_per_scenario(merged)}
    if not best:
        raise ExportError("no sketch was timed in these sessions: nothing tuned to export")
    entries: dict[str, list] = {"shrink": [], "expand": [], "lora": []}
    for key, b in best.items():
        s = merged.scenarios[key]
        if s.op == "shrink":
            shape = {"h_in": s.h_in, "n": s.total_rank, "projections": s.num_proj}
        elif s.op == "expand":
            shape = {"h_outs": list(s.h_outs)}
        else:
            continue
        entries[s.op].append({**shape, **_layout(s), **kernel_ref(b.measurement), **_timing(b)})
    cases = session_delta(merged)
    for c in cases:
        s = c.scenario
        kernels = [kernel_ref(best[k].measurement) for k in c.parts]
        entries["lora"].append({"h_in": s.h_in, "h_outs": list(s.h_outs), **_layout(s), "how": c.how,
                                "kernels": kernels, "us": c.ours_us, "baselines": c.baselines,
                                "vs_best": c.vs_best})  # fmt: skip
    for op in entries:
        entries[op].sort(key=lambda e: (e.get("h_in", 0), str(e.get("h_outs")), e["rank"], e["tokens"], e["segments"]))
    summary = {k: vars(r) for k, r in delta_summary(cases).items()}
    safe = {op: {"module": m, "launcher": f, "config": c} for op, (m, f, c) in SAFE.items()}
    return {"format": "dop-export", "version": 1, "name": name, "device": merged.device, "env": merged.env,
            "sessions": [n for n, _ in sessions], "summary": summary, "entries": entries, "safe": safe}  # fmt: skip


def kernel_modules(table: dict[str, Any]) -> list[str]:
    """The kernel modules the table launches (the safe kernels' included)."""
    mods = {e["module"] for op in ("shrink", "expand") for e in table["entries"][op]}
    mods |= {k["module"] for e in table["entries"]["lora"] for k in e["kernels"]}
    mods |= {s["module"] for s in table["safe"].values()}
    return sorted(mods)
