"""Tuned SGMV multi-LoRA kernels exported by dop-tui: ``add_lora``, ``shrink``, ``expand``,
``segments_from_token_mapping`` (see ``api``), dispatching at run time to the kernels a tuning session
measured fastest (``dispatch``). ``python -m <package>.selftest`` checks every kernel against torch."""

from .api import add_lora, expand, segments_from_token_mapping, shrink
from .dispatch import table


def info() -> dict:
    """What was tuned: device, shapes, layouts, and the speedups the session measured."""
    t = table()
    return {k: t[k] for k in ("name", "device", "env", "sessions", "summary")}


__all__ = ["add_lora", "expand", "info", "segments_from_token_mapping", "shrink"]
