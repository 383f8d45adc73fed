"""vLLM's LoRA kernel configs: its defaults and its tuned-config files with their nearest-key lookup.

Written from vLLM's documented behaviour (``get_lora_op_configs``; shared/reference/sgmv-kernels.md, 2.2), no
vLLM code. A tuned-config file (``{GPU}_SHRINK.json``, ``{GPU}_EXPAND_{TRUE|FALSE}.json``, read from
``VLLM_TUNED_CONFIG_FOLDER``) nests ``[max_loras][num_slices][m][k][n] -> config`` with string keys; shrink has
``k = h_in, n = rank``, expand ``k = rank, n = widest slice``; ``max_loras`` is the length of vLLM's adapter-id
array (adapters + 1). The lookup takes ``num_slices`` exactly and each other level by its exact key, else the
key nearest in absolute distance (the first such key in file order on a tie). A config holds ``block_m,
block_n, block_k, num_warps, num_stages, num_ctas`` and, for shrink, ``split_k`` and ``group_size_m`` (8 if
absent); ``max_nreg`` is read and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SHRINK_KEYS = ("block_m", "block_n", "block_k", "split_k", "group_size_m", "num_warps", "num_stages")
EXPAND_KEYS = ("block_m", "block_n", "block_k", "num_warps", "num_stages")


def gpu_file_prefix(device_name: str) -> str:
    """vLLM's spelling of a device in config file names: spaces and dashes become underscores."""
    return device_name.replace(" ", "_").replace("-", "_")


def config_file_name(device_name: str, op: str, add_inputs: bool = True) -> str:
    """``{GPU}_SHRINK.json`` or ``{GPU}_EXPAND_{TRUE|FALSE}.json``."""
    suffix = "SHRINK" if op == "shrink" else f"EXPAND_{str(add_inputs).upper()}"
    return f"{gpu_file_prefix(device_name)}_{suffix}.json"


def _nearest(level: Mapping[str, Any], x: int) -> Any:
    hit = level.get(str(x))
    return hit if hit else level[min(level, key=lambda k: abs(int(k) - x))]


def lookup(table: Mapping[str, Any], max_loras: int, num_slices: int, m: int, k: int, n: int) -> dict[str, int] | None:
    """The config vLLM's nearest-key rule picks from ``table``, or None when ``num_slices`` has no entry."""
    if not table:
        return None
    per_slices = _nearest(table, max_loras)
    if str(num_slices) not in per_slices:
        return None
    node = per_slices[str(num_slices)]
    for x in (m, k, n):
        node = _nearest(node, x)
    return dict(node)


def default_shrink(num_tokens: int) -> dict[str, int]:
    """vLLM's default shrink config: split-K 64 over 256-wide K blocks below 128 tokens, 8 x 32 above."""
    small = num_tokens < 128
    return dict(block_m=32, block_n=16, block_k=256 if small else 32, split_k=64 if small else 8, group_size_m=8,
                num_warps=4, num_stages=2)  # fmt: skip


def default_expand(num_slices: int) -> dict[str, int]:
    """vLLM's default expand config (BLOCK_N 64 when several slices share the launch)."""
    return dict(block_m=64, block_n=64 if num_slices > 1 else 128, block_k=32, num_warps=4, num_stages=2)


def shrink_config(cfg: Mapping[str, int] | None, num_tokens: int) -> dict[str, int]:
    """A complete shrink config: ``cfg`` (a looked-up entry) over the defaults, without the ignored keys."""
    out = default_shrink(num_tokens)
    out.update({k: int(v) for k, v in (cfg or {}).items() if k in SHRINK_KEYS})
    return out


def expand_config(cfg: Mapping[str, int] | None, num_slices: int) -> dict[str, int]:
    out = default_expand(num_slices)
    out.update({k: int(v) for k, v in (cfg or {}).items() if k in EXPAND_KEYS})
    return out
