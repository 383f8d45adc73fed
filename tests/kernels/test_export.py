"""dop export: a bundled H200 session becomes a package that builds, installs and imports without dop-tui,
whose kernels pass their self-test in the interpreter, whose dispatch picks what the session says, and which
refuses bad input without touching a user's files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
import torch
from paths import ROOT
from typer.testing import CliRunner

from dop_tui.cli import app
from dop_tui.session.store import Session, load, save
from dop_tui.session.summary import session_delta

SESSION = ROOT / "sessions" / "h200-7b-decode.json.gz"
NAME = "lora_h200"
runner = CliRunner()


def _export(out: Path, *extra: str, name: str = NAME) -> object:
    return runner.invoke(app, ["export", str(SESSION), "-o", str(out), "--name", name, *extra])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(export directory, install target): exported, built as an sdist, installed from it with pip."""
    root = tmp_path_factory.mktemp("export")
    out = root / "pkg"
    res = _export(out)
    assert res.exit_code == 0, res.output
    dist = root / "dist"
    build = "from setuptools import build_meta as b; import sys; print(b.build_sdist(sys.argv[1]))"
    proc = subprocess.run([sys.executable, "-c", build, str(dist)], cwd=out, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    sdist = dist / proc.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert any(n.endswith(f"{NAME}/dispatch.json") for n in names) and any(
        n.endswith("kernels/shrink.py") for n in names
    )
    target = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target)]
    proc = subprocess.run([*pip, str(sdist)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out, target


def _run_without_dop_tui(target: Path, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` where the package is importable from ``target`` and dop_tui is not importable at all."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(target)
    prog = "import sys; sys.modules['dop_tui'] = None\n" + code
    return subprocess.run(
        [sys.executable, "-c", prog], env=env, cwd=target, capture_output=True, text=True, timeout=600
    )


def test_the_package_ships_the_winning_kernels_and_the_table(installed):
    out, target = installed
    table = json.loads((out / NAME / "dispatch.json").read_text())
    assert table["device"] == "NVIDIA H200" and table["sessions"] == [SESSION.name]
    modules = {e["module"] for op in ("shrink", "expand") for e in table["entries"][op]}
    assert {p.stem for p in (target / NAME / "kernels").glob("*.py")} == {"__init__", "_common", *modules}
    for f in (target / NAME / "kernels").glob("*.py"):  # copied as they are: standalone
        assert "dop_tui" not in f.read_text()
    cases = session_delta(load(SESSION))
    assert len(table["entries"]["lora"]) == len(cases) == 34
    assert table["summary"]["best"]["geomean"] == pytest.approx(
        json.loads(runner.invoke(app, ["show", "--json", str(SESSION)]).output)["lora_delta"]["summary"]["best"][
            "geomean"
        ]
    )
    readme = (out / "README.md").read_text()
    assert "NVIDIA H200" in readme and "the best baseline per case" in readme and f"import {NAME}" in readme
    # pip brings what the self-test needs: on a CPU, Triton's interpreter imports numpy (a fresh venv lacked it)
    deps = tomllib.loads((out / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {"torch", "triton", "numpy"} <= set(deps)


def test_selftest_passes_in_the_interpreter_without_dop_tui(installed):
    _, target = installed
    proc = _run_without_dop_tui(target, f"from {NAME} import selftest; sys.exit(selftest.main(['--device', 'cpu']))")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all passed on cpu" in proc.stdout and "FAIL" not in proc.stdout


def test_dispatch_picks_the_sessions_kernels_and_falls_back_outside(installed):
    _, target = installed
    code = f"""
import json, warnings
from {NAME} import dispatch
t = dispatch.table()
for op in ("shrink", "expand", "lora"):
    for e in t["entries"][op]:
        key = {{k: e[k] for k in {{"shrink": ("h_in", "n", "dtype"), "expand": ("rank", "h_outs", "dtype"),
                                  "lora": ("h_in", "h_outs", "rank", "dtype")}}[op]}}
        got = dispatch.nearest(op, key, e["tokens"], e["segments"], "NVIDIA H200")
        assert got is e, (op, e["tokens"], e["segments"])
key = {{"h_in": 4096, "h_outs": [4096], "rank": 16, "dtype": "bf16"}}
near = dispatch.nearest("lora", key, 48, 48, "NVIDIA H200")  # between the tuned 32 and 64 distinct layouts
assert near["tokens"] in (32, 64) and near["tokens"] == near["segments"]
assert dispatch.nearest("lora", {{**key, "rank": 8}}, 8, 8, "NVIDIA H200") is None  # off the tuned family
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    assert dispatch.nearest("lora", key, 8, 8, "NVIDIA A100-SXM4-80GB") is None
    dispatch.nearest("lora", key, 8, 8, "NVIDIA A100-SXM4-80GB")
assert len(w) == 1 and "safe kernels" in str(w[0].message)  # said once
assert dispatch.safe("shrink").tuned is False
print("dispatch ok")
"""
    proc = _run_without_dop_tui(target, code)
    assert proc.returncode == 0 and "dispatch ok" in proc.stdout, proc.stdout + proc.stderr


def test_the_api_rejects_wrong_tensors_with_clear_errors(installed):
    _, target = installed
    code = f"""
import torch
from {NAME} import add_lora, shrink, segments_from_token_mapping
T, L, r, h = 3, 2, 8, 32
x, A, B, y = torch.randn(T, h), torch.randn(L, r, h), torch.randn(L, h, r), torch.randn(T, h)
seg, w = torch.tensor([0, 2, 3], dtype=torch.int32), torch.tensor([1, 0], dtype=torch.int32)
bad = [
    (lambda: add_lora(y, x.half(), A, B, seg, w), "dtype"),
    (lambda: add_lora(y, x, A[:, :, :16].contiguous(), B, seg, w), "A.shape[2]"),
    (lambda: add_lora(y, x.t().contiguous().t(), A, B, seg, w), "contiguous"),
    (lambda: add_lora(y, x, A, B, seg.long(), w), "seg_indptr"),
    (lambda: add_lora(y, x, A, B, seg[:2], w), "one entry more"),
    (lambda: add_lora(y, x, A, B, seg, w, h_outs=(16, 8)), "h_outs"),
    (lambda: shrink(torch.empty(T, r), x, A, seg, w, "meta"), None),
    (lambda: segments_from_token_mapping([-1, -1]), "no token"),
]
for call, word in bad:
    try:
        call()
    except (ValueError, TypeError) as exc:
        assert word is None or word in str(exc), (word, str(exc))
    else:
        raise AssertionError(f"accepted: {{word}}")
order, indptr, ids = segments_from_token_mapping([2, -1, 0, 2, 0])
assert order.tolist() == [2, 4, 0, 3] and indptr.tolist() == [0, 2, 4] and ids.tolist() == [0, 2]
print("api ok")
"""
    proc = _run_without_dop_tui(target, code)
    assert proc.returncode == 0 and "api ok" in proc.stdout, proc.stdout + proc.stderr


def test_export_refuses_what_it_must_not_overwrite(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    res = _export(user)
    assert res.exit_code == 2 and "not an export" in res.output and "--force" in res.output
    assert [p.name for p in user.iterdir()] == ["notes.txt"]
    res = _export(user, "--force")
    assert res.exit_code == 0 and (user / "notes.txt").read_text() == "keep me" and (user / NAME).is_dir()

    out = tmp_path / "pkg"
    assert _export(out).exit_code == 0
    (out / NAME / "stale.py").write_text("")  # not the export's: stays
    again = _export(out)  # an earlier export of the same name: replaced
    assert again.exit_code == 0 and (out / NAME / "stale.py").exists()
    other = _export(out, name="other_name")
    assert other.exit_code == 2 and "an export of 'lora_h200'" in other.output
    assert _export(tmp_path / "x", name="Bad-Name").exit_code == 2
    assert _export(tmp_path / "missing" / "deeper").exit_code == 2
    (tmp_path / "file").write_text("x")
    assert _export(tmp_path / "file").exit_code == 2 and (tmp_path / "file").read_text() == "x"


def test_export_refuses_sessions_without_gpu_timings(tmp_path):
    s = load(SESSION)
    cpu = Session(device="interpret", scenarios=s.scenarios,
                  measurements=[m for m in s.measurements if m.us is None][:5])  # fmt: skip
    save(cpu, tmp_path / "cpu.json.gz")
    res = runner.invoke(app, ["export", str(tmp_path / "cpu.json.gz"), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2 and "no timed result" in res.output and not (tmp_path / "out").exists()
    res = runner.invoke(app, ["export", str(tmp_path / "nope.json.gz"), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2 and "nope.json.gz" in res.output


def test_segments_and_kernels_are_torch_and_triton_only():
    """The exported template imports nothing of dop-tui (it is copied as is)."""
    template = ROOT / "dop_tui" / "export" / "template"
    for f in template.glob("*.py"):
        assert "dop_tui" not in f.read_text(), f.name
    assert torch.int32  # the template's tensors are plain torch


def test_repeated_calls_reuse_their_plan_and_stay_correct(installed):
    """Same tensor objects: the second call reuses the first's launch plan; it still reads the tensors'
    current contents (a new batch layout in the same seg_indptr)."""
    _, target = installed
    code = f"""
import os
os.environ["TRITON_INTERPRET"] = "1"
import torch
from {NAME} import add_lora, api
torch.manual_seed(0)
T, L, r, h = 4, 3, 16, 48
x, A, B = torch.randn(T, h), torch.randn(L, r, h) / 7, torch.randn(L, h, r) / 4
y0 = torch.randn(T, h)
seg, w = torch.tensor([0, 1, 4], dtype=torch.int32), torch.tensor([2, 0], dtype=torch.int32)

def ref(y, seg, w):
    out = y.double().clone()
    for s in range(w.numel()):
        rows = slice(seg[s].item(), seg[s + 1].item())
        out[rows] += (x.double()[rows] @ A[w[s]].double().T) @ B[w[s]].double().T
    return out

y = y0.clone()
add_lora(y, x, A, B, seg, w)
assert len(api._plans) == 1
add_lora(y, x, A, B, seg, w)  # accumulates again, through the same plan
assert len(api._plans) == 1
assert torch.allclose(y.double(), ref(ref(y0, seg, w), seg, w), rtol=1e-3, atol=1e-3)
seg.copy_(torch.tensor([0, 3, 4], dtype=torch.int32))  # another layout, same objects
before = y.clone()
add_lora(y, x, A, B, seg, w)
assert len(api._plans) == 1 and torch.allclose(y.double(), ref(before, seg, w), rtol=1e-3, atol=1e-3)
api.clear_plans()
assert not api._plans
print("plans ok")
"""
    proc = _run_without_dop_tui(target, code)
    assert proc.returncode == 0 and "plans ok" in proc.stdout, proc.stdout + proc.stderr


def _vllm_session() -> Session:
    """Timed vllm-family configs on four scenarios of one device (two share vLLM's key: the faster stays)."""
    from dop_tui.measure.record import Measurement
    from dop_tui.scenario import make_scenario

    s = Session(device="NVIDIA H200", env={"torch": "2.11"})
    cfg_s = {"block_m": 16, "block_n": 16, "block_k": 128, "split_k": 8, "group_size_m": 8, "num_warps": 4,
             "num_stages": 2}  # fmt: skip
    cfg_e = {"block_m": 16, "block_n": 64, "block_k": 16, "num_warps": 4, "num_stages": 2}
    cases = (("shrink", cfg_s, [1] * 8, 5.0), ("shrink", {**cfg_s, "split_k": 16}, [8], 4.0),
             ("expand", cfg_e, [1] * 8, 3.0), ("expand", {**cfg_e, "block_n": 128}, [1] * 8, 2.5))  # fmt: skip
    for op, cfg, lens, us in cases:
        scn = make_scenario(op, 4096, (4096,), 16, "bf16", lens, workload="x" + str(us))
        s.add(scn, [Measurement(scn.key, f"{op}/vllm/triton", cfg, "ok", us=us),
                    Measurement(scn.key, f"{op}/tile/dot", {"BLOCK_M": 16}, "ok", us=us * 2)])  # fmt: skip
    return s


def test_vllm_configs_round_trip_through_vllms_lookup(tmp_path):
    from dop_tui.kernels import vllm_configs

    save(_vllm_session(), tmp_path / "v.json.gz")
    res = runner.invoke(app, ["export", str(tmp_path / "v.json.gz"), "-o", str(tmp_path / "cfg"), "--format", "vllm"])
    assert res.exit_code == 0, res.output
    shrink = json.loads((tmp_path / "cfg" / "NVIDIA_H200_SHRINK.json").read_text())
    expand = json.loads((tmp_path / "cfg" / "NVIDIA_H200_EXPAND_TRUE.json").read_text())
    # keys: max_loras = adapters + 1, one slice, m = tokens, k/n = h_in/rank (shrink), rank/h_out (expand)
    assert vllm_configs.lookup(shrink, 9, 1, 8, 4096, 16)["split_k"] == 8
    assert vllm_configs.lookup(shrink, 2, 1, 8, 4096, 16)["split_k"] == 16
    assert vllm_configs.lookup(expand, 9, 1, 8, 16, 4096)["block_n"] == 128  # the faster of the two at that key
    assert vllm_configs.lookup(shrink, 5, 1, 7, 4000, 16) is not None  # nearest keys resolve
    both = runner.invoke(app, ["export", str(tmp_path / "v.json.gz"), "-o", str(tmp_path / "both"), "--format",
                               "both", "--name", "pkg"])  # fmt: skip
    assert both.exit_code == 0, both.output
    assert (tmp_path / "both" / "vllm_configs" / "NVIDIA_H200_SHRINK.json").is_file()
    table = json.loads((tmp_path / "both" / "pkg" / "dispatch.json").read_text())
    assert {e["sketch"] for e in table["entries"]["shrink"]} == {"shrink/tile/dot"}  # the package ships ours only
    plain = load(SESSION)  # a session of ours only: nothing for vLLM's config files
    plain.measurements = [m for m in plain.measurements if "/vllm/" not in m.kernel]
    save(plain, tmp_path / "plain.json.gz")
    res = runner.invoke(app, ["export", str(tmp_path / "plain.json.gz"), "-o", str(tmp_path / "none"), "--format",
                              "vllm"])  # fmt: skip
    assert res.exit_code == 2 and "vLLM-family" in res.output and not (tmp_path / "none").exists()
    bad = runner.invoke(app, ["export", str(SESSION), "-o", str(tmp_path / "bad"), "--format", "onnx"])
    assert bad.exit_code == 2 and "--format" in bad.output
