"""The scenario flags every command shares, and their translation into a Scenario."""

from __future__ import annotations

from typing import Annotated

import typer

from dop_tui.models import MODELS, get_model
from dop_tui.scenario import Scenario, make_scenario
from dop_tui.workloads import WORKLOADS, decode_lens

MAX_RANK, MAX_BATCH, MAX_HIDDEN = 1024, 4096, 131072  # far beyond any LoRA serving shape: typos, not problems

ModelOpt = Annotated[str, typer.Option("--model", help=f"Model preset: {', '.join(MODELS)}.")]
ProjOpt = Annotated[
    str,
    typer.Option("--proj", help="Projection: q, k, v, o, gate, up, down, or a group sharing x: qkv, gateup."),
]
HInOpt = Annotated[int | None, typer.Option("--h-in", help="Input hidden size (overrides --model/--proj).")]
HOutOpt = Annotated[
    str | None,
    typer.Option("--h-out", help="Output size; several projections as 4096,1024,1024 (with --h-in)."),
]
OpOpt = Annotated[str, typer.Option("--op", help="shrink, expand or fused (the whole LoRA delta).")]
RankOpt = Annotated[int, typer.Option("--rank", help="LoRA rank r.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Decode batch size (tokens).")]
WorkloadOpt = Annotated[str, typer.Option("--workload", help=f"Traffic mix: {', '.join(WORKLOADS)}.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="fp16, bf16 or fp32.")]


def scenario_from_flags(
    model: str,
    proj: str,
    h_in: int | None,
    h_out: str | None,
    op: str,
    rank: int,
    batch: int,
    workload: str,
    dtype: str,
) -> Scenario:
    """Build the decode scenario the flags describe; raises ValueError naming the bad flag."""
    for flag, value, top in (("--rank", rank, MAX_RANK), ("--batch-size", batch, MAX_BATCH),
                             ("--h-in", h_in or 1, MAX_HIDDEN)):  # fmt: skip
        if not 1 <= value <= top:
            raise ValueError(f"{flag} must be between 1 and {top}, got {value}")
    if (h_in is None) != (h_out is None):
        raise ValueError("--h-in and --h-out go together")
    if h_in is not None and h_out is not None:
        try:
            outs = tuple(int(h) for h in h_out.split(","))
        except ValueError:
            raise ValueError(f"--h-out must be integers separated by commas, got {h_out!r}") from None
        if not all(1 <= h <= MAX_HIDDEN for h in outs) or len(outs) > 8:
            raise ValueError(f"--h-out: 1 to 8 sizes between 1 and {MAX_HIDDEN}, got {h_out!r}")
        shape = (h_in, outs)
    else:
        shape = get_model(model).group_shape(proj)
    lens = decode_lens(workload, batch)
    return make_scenario(op, shape[0], shape[1], rank, dtype, lens, workload=workload)
