import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from dop_tui import __version__
from dop_tui.cli import app

runner = CliRunner()


def test_version_and_help():
    assert __version__ in runner.invoke(app, ["--version"]).output
    res = runner.invoke(app, ["-h"])
    assert res.exit_code == 0 and "space" in res.output and "check" in res.output


def test_space_json_for_scripts():
    res = runner.invoke(
        app,
        [
            "space",
            "--json",
            "--model",
            "llama2-7b",
            "--proj",
            "down",
            "--op",
            "shrink",
            "--batch-size",
            "64",
            "--workload",
            "skewed",
            "--rank",
            "16",
        ],
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["scenario"].startswith("shrink-11008x4096-r16-bf16-t64s9-skewed-")
    assert d["total"] == sum(s["valid"] for s in d["sketches"]) > 1000
    assert {s["family"] for s in d["sketches"]} == {"tile", "splitk", "gemv", "splitk-last", "vllm"}
    assert all({"op", "family", "sketch", "valid"} <= set(s) for s in d["sketches"])


def test_space_tree_and_explicit_shapes():
    res = runner.invoke(app, ["space", "--h-in", "512", "--h-out", "256,128", "--op", "fused", "--rank", "8"])
    assert res.exit_code == 0 and "total:" in res.output and "512->256+128" in res.output


def test_bad_flags_exit_nonzero_with_message():
    for args, msg in [
        (["space", "--workload", "zipf"], "unknown workload"),
        (["space", "--dtype", "int8"], "unsupported dtype"),
        (["space", "--h-in", "64"], "go together"),
        (["space", "--proj", "lm_head"], "unknown projection"),
        (["space", "--batch-size", "0"], "--batch-size must be between 1 and 4096"),
        (["space", "--rank", "100000"], "--rank must be between 1 and 1024"),
        (["space", "--h-in", "99999999", "--h-out", "8"], "--h-in must be between"),
        (["space", "--h-in", "64", "--h-out", "64,0"], "--h-out"),
        (["check", "--backend", "tpu"], "unknown backend"),
        (["tune", "sessions/replay-h200.toml", "--retime-baselines"], "--retime-baselines works with --batch"),
    ]:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert msg in res.output.replace("\n", " "), (args, res.output)


def test_check_interpret_end_to_end():
    """`dop check` in its own process (it enables the interpreter before importing triton)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    cmd = [
        sys.executable,
        "-m",
        "dop_tui.cli",
        "check",
        "--backend",
        "interpret",
        "--h-in",
        "96",
        "--h-out",
        "80",
        "--op",
        "expand",
        "--rank",
        "8",
        "--batch-size",
        "4",
        "--workload",
        "uniform",
        "--samples",
        "2",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for kernel in ("expand/tile/dot", "expand/gemv/fma", "expand/walk/segments", "expand/baseline/vllm"):
        assert kernel in proc.stdout
    assert "FAIL" not in proc.stdout


def test_check_gpu_without_gpu_fails_clearly():
    import torch

    if torch.cuda.is_available():
        return
    for cmd in (["check", "--backend", "gpu"], ["measure", "--backend", "gpu"]):
        res = runner.invoke(app, cmd)  # no GPU: exit 1 in every command (dop tune and dop calibrate too)
        assert res.exit_code == 1 and "needs a CUDA GPU" in res.output
