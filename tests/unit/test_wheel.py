"""The built wheel works outside the checkout: installed (not editable) into a fresh target, it runs a bundled
replay job by name and opens the workbench (a Pilot smoke test), with its stylesheet, screens, kernels and
bundled sessions all inside the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from paths import ROOT


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp), str(ROOT)]
    proc = subprocess.run(build, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp.glob("dop_tui-*.whl")
    target = tmp / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)]
    proc = subprocess.run(install, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return target


def _run(site: Path, cwd: Path, *args: str, code: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    env["DOP_TUI_CACHE"] = str(cwd / "cache")
    cmd = [sys.executable, "-c", code] if code else [sys.executable, *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_ships_everything_the_app_needs(site):
    pkg = site / "dop_tui"
    for rel in ("ui/app.tcss", "ui/screens/help.py", "sessions/replay-h200.toml", "sessions/h200-7b-decode.json.gz",
                "kernels/fused_splitk.py", "export/template/api.py", "serve/model.py"):  # fmt: skip
        assert (pkg / rel).is_file(), rel


def test_a_bundled_replay_job_runs_from_the_installed_wheel(site, tmp_path):
    where = _run(site, tmp_path, code="import dop_tui; print(dop_tui.__file__)")
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr  # not the checkout
    res = _run(
        site, tmp_path, "-m", "dop_tui.cli", "tune", "--batch", "replay-h200", "--budget", "30", "-o", "s.json.gz"
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "s.json.gz").is_file() and "best kernel per scenario" in " ".join(res.stdout.split())


def test_the_installed_workbench_opens_the_bundled_replay(site, tmp_path):
    code = """
import asyncio, sys
from dop_tui.jobrun import default_replay_job
from dop_tui.ui.app import make_app
from dop_tui.ui.widgets.job_header import JobHeader

async def main():
    app = make_app(default_replay_job().with_overrides(budget=24))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(600):
            await pilot.pause(0.1)
            if app.state.state == "finished":
                break
        title = str(app.query_one(JobHeader).query_one("#header-title").render())
        print(app.state.state, "REPLAY" in title)

asyncio.run(main())
"""
    res = _run(site, tmp_path, code=code)
    assert res.returncode == 0 and res.stdout.split()[-2:] == ["finished", "True"], res.stdout + res.stderr


def test_the_serving_benchmark_runs_from_the_installed_wheel(site, tmp_path):
    res = _run(site, tmp_path, "-m", "dop_tui.cli", "bench", "serve", "--model", "tiny", "--layers", "1", "--ctx", "4",
               "--batch-sizes", "3", "--workloads", "skewed", "--backends", "none,torch,sglang", "--device", "cpu",
               "--json", "serve.json")  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert {r["backend"] for r in json.loads((tmp_path / "serve.json").read_text())["rows"]} == {
        "none",
        "torch",
        "sglang",
    }
