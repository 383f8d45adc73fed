"""The hierarchical search space (Dop's Search Space Constructor): sketches, domains, legality."""

from dop_tui.space.candidate import Candidate
from dop_tui.space.device import DEFAULT_DEVICE, DEVICES, DeviceSpec
from dop_tui.space.sketches import BASELINE_BY_ID, BASELINES, SKETCH_BY_ID, SKETCHES, Baseline, Sketch
from dop_tui.space.space import (
    count_valid,
    enumerate_valid,
    get_sketch,
    neighbours,
    sample,
    sample_many,
    sketches_for,
    why_invalid,
)

__all__ = [
    "BASELINES",
    "BASELINE_BY_ID",
    "DEFAULT_DEVICE",
    "DEVICES",
    "SKETCHES",
    "SKETCH_BY_ID",
    "Baseline",
    "Candidate",
    "DeviceSpec",
    "Sketch",
    "count_valid",
    "enumerate_valid",
    "get_sketch",
    "neighbours",
    "sample",
    "sample_many",
    "sketches_for",
    "why_invalid",
]
