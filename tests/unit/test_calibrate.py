"""Calibration cache and its labelled fallback (the measuring itself needs a GPU)."""

from dataclasses import replace

import pytest
from typer.testing import CliRunner

from dop_tui.cli import app
from dop_tui.measure.calibrate import cache_path, device_spec, launch_floor_us, save_spec
from dop_tui.space.device import DEVICES


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOP_TUI_CACHE", str(tmp_path))


def test_fallback_is_the_labelled_builtin_table():
    spec = device_spec("NVIDIA H200")
    assert spec == DEVICES["H200"] and spec.source.startswith("built-in")
    assert launch_floor_us("NVIDIA H200") is None


def test_measured_spec_is_cached_per_device():
    measured = replace(DEVICES["H200"], hbm_bytes_per_s=4.25e12, source="measured by dop calibrate")
    save_spec("NVIDIA H200", measured, 0.69)
    save_spec("NVIDIA H100 80GB HBM3", replace(DEVICES["H100"], source="measured by dop calibrate"), 0.8)
    assert device_spec("NVIDIA H200") == measured and launch_floor_us("NVIDIA H200") == 0.69
    assert device_spec("NVIDIA H100 80GB HBM3").source == "measured by dop calibrate"
    assert cache_path().exists()


def test_corrupt_cache_falls_back(tmp_path):
    cache_path().parent.mkdir(parents=True, exist_ok=True)
    cache_path().write_text("{not json")
    assert device_spec("NVIDIA H200").source.startswith("built-in")


def test_cli_without_gpu_shows_fallback_and_fails():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: calibrate would measure it")
    res = CliRunner().invoke(app, ["calibrate"], env={"COLUMNS": "200"})
    assert res.exit_code == 1 and "built-in" in res.output and "nothing measured" in res.output
    res = CliRunner().invoke(app, ["calibrate", "--show"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "H200" in res.output


def test_an_unknown_gpu_gets_the_smallest_limits_and_says_so():
    from dop_tui.space.device import DEFAULT_DEVICE, device_for_name

    spec = device_spec("NVIDIA GeForce RTX 4090")
    assert spec.name == "NVIDIA GeForce RTX 4090" and "unknown GPU" in spec.source
    assert spec.smem_per_block == min(d.smem_per_block for d in DEVICES.values()) < DEVICES["H200"].smem_per_block
    assert device_for_name("NVIDIA A100-SXM4-80GB") is DEVICES["A100"]
    # the interpreter and a job with no device check code meant for the project's target
    assert device_for_name("CPU (Triton interpreter, correctness only)") is DEFAULT_DEVICE
    assert device_for_name("") is DEFAULT_DEVICE
