"""``bench/kernel_ablation.py`` still fits the kernels: its source patches apply and, in the interpreter, each
variant does what its name says: ``full`` passes the gate; ``empty`` and ``meta`` write nothing (the output is as
it was, or zero where the sketch zeroes it in a launch of its own); ``nowait`` and ``nosync`` still write but no
longer sum the partials of a split K (so the result is wrong)."""

import random
import sys

import pytest
import torch
from kernel_cases import small_scenario
from paths import ROOT

from dop_tui.measure.check import error_against, poisoned_start
from dop_tui.operands import make_operands
from dop_tui.reference import TOLERANCE, reference_loop
from dop_tui.space import sample_many
from dop_tui.space.sketches import SKETCH_BY_ID

sys.path.insert(0, str(ROOT / "bench"))
from kernel_ab import binder_for
from kernel_ablation import PATCHES, applies, variants

PATCHED = sorted(k for k, s in SKETCH_BY_ID.items() if s.entry and s.entry.module in PATCHES)


@pytest.fixture(scope="module")
def ablations(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ablation")
    return {module: variants(module, folder) for module in PATCHES}


def test_every_patched_module_has_sketches():
    assert {SKETCH_BY_ID[k].entry.module for k in PATCHED} == set(PATCHES)


@pytest.mark.parametrize("sketch", PATCHED)
def test_each_variant_does_what_it_says(sketch, ablations):
    entry = SKETCH_BY_ID[sketch].entry
    scn = small_scenario(sketch.split("/")[0], "skewed", "fp32", rank=16, h_outs=(72,))
    cfg = next(c.params for c in sample_many(sketch, scn, 30, random.Random(7)) if c.params.get("SPLIT_K", 2) > 1)
    ops = make_operands(scn, seed=3)
    ref, start = reference_loop(ops), poisoned_start(ops)
    for name, mod in ablations[entry.module].items():
        if not applies(name, sketch):
            continue
        binder = binder_for(getattr(mod, entry.function), sketch, cfg)
        err = error_against(sketch, ops, cfg, start, ref, binder=binder)
        if name == "full":
            assert err <= TOLERANCE[scn.dtype], f"{sketch} {cfg}: {err}"
        elif name in ("empty", "meta"):
            assert untouched(ops.out, start) or not ops.out.any(), f"{sketch} {name} wrote the output"
        else:
            assert not untouched(ops.out, start), f"{sketch} {name} wrote nothing"
            assert err > TOLERANCE[scn.dtype], f"{sketch} {name} {cfg}: still the whole sum"


def untouched(out: torch.Tensor, start: torch.Tensor) -> bool:
    """The output as it was before the run (NaN where the op overwrites, random values where it accumulates)."""
    return torch.equal(torch.nan_to_num(out, nan=7.0), torch.nan_to_num(start, nan=7.0))
