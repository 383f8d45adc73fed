"""vLLM's tuned-config files from sessions that tuned vLLM's own kernels (the ``vllm`` sketch family).

vLLM (``VLLM_TUNED_CONFIG_FOLDER``, read by ``get_lora_op_configs``) looks its LoRA kernels' configs up in
``{GPU}_SHRINK.json`` and ``{GPU}_EXPAND_{TRUE|FALSE}.json``, nested ``[max_loras][num_slices][m][k][n]`` with
string keys (``kernels/vllm_configs.py`` holds the layout and its nearest-key rule): ``max_loras`` the length
of its adapter-id array (the batch's adapters + 1), ``num_slices`` the projections, ``m`` the tokens, and
``k``, ``n`` = ``h_in``, rank for shrink and rank, widest output for expand. Per scenario the fastest timed
``shrink/vllm/triton`` or ``expand/vllm/triton`` config becomes the entry of its key; where two scenarios
share a key (the same counts in another layout) the faster entry stays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dop_tui.export.table import ExportError, merge, only
from dop_tui.kernels.vllm_configs import EXPAND_KEYS, SHRINK_KEYS, config_file_name
from dop_tui.session.store import Session
from dop_tui.session.summary import best_per_scenario

FAMILY = {"shrink/vllm/triton": ("shrink", SHRINK_KEYS), "expand/vllm/triton": ("expand", EXPAND_KEYS)}


def vllm_config_files(sessions: list[tuple[str, Session]]) -> dict[str, dict[str, Any]]:
    """File name -> vLLM's nested table, from the best vLLM-family config of every scenario."""
    merged = merge(sessions)
    chosen: dict[tuple, tuple[float, dict[str, int]]] = {}
    for b in best_per_scenario(only(merged, FAMILY.__contains__)):
        op, keys = FAMILY[b.measurement.kernel]
        s = merged.scenarios[b.scenario]
        k, n = (s.h_in, s.rank) if op == "shrink" else (s.rank, max(s.h_outs))
        add_inputs = s.accumulate if op == "expand" else True
        key = (config_file_name(merged.device, op, add_inputs), s.distinct_adapters + 1, s.num_proj, s.num_tokens, k, n)
        cfg = {name: int(b.measurement.config[name]) for name in keys if name in b.measurement.config}
        if key not in chosen or b.measurement.us < chosen[key][0]:
            chosen[key] = (b.measurement.us, cfg)
    if not chosen:
        raise ExportError("no vLLM-family sketch (shrink/vllm/triton, expand/vllm/triton) was timed in these "
                          "sessions: tune that family first (sessions/h200-vllm-configs.toml)")  # fmt: skip
    files: dict[str, dict[str, Any]] = {}
    for (fname, *levels), (_, cfg) in sorted(chosen.items()):
        node = files.setdefault(fname, {})
        for level in levels[:-1]:
            node = node.setdefault(str(level), {})
        node[str(levels[-1])] = cfg
    return files


def write_vllm_configs(files: dict[str, dict[str, Any]], folder: Path) -> list[Path]:
    """Write the files into ``folder`` (created); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, table in files.items():
        path = folder / name
        path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        out.append(path)
    return out
