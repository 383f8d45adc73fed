"""dop bench serve on the tiny preset in the Triton interpreter: every backend's logits checked against torch's,
a wrong backend refused, the JSON's keys, and the errors a user can make."""

import json

import torch
from serve_support import export_package, wrong_package
from typer.testing import CliRunner

from dop_tui.cli import app
from dop_tui.serve.bench import cases, run, summary
from dop_tui.serve.model import PRESETS, Weights

runner = CliRunner()
ALL = ["none", "torch", "vllm", "vllm-tuned", "sglang", "punica"]


def test_every_backend_computes_the_torch_logits_plain_and_overlapped(tmp_path):
    pkg = f"package:{export_package(tmp_path)}"
    names = [*ALL, pkg, *(f"{n}+overlap" for n in [*ALL[1:], pkg])]
    rows = [r for case in run(PRESETS["tiny"], layers=1, rank=8, ctx=8, serve_cases=cases([6], ["skewed"]),
                              backends=names, device=torch.device("cpu"), dtype=torch.float32,
                              bandwidth=4.3e12, tolerance=1e-3) for r in case]  # fmt: skip
    assert [r.backend for r in rows] == names
    assert all(r.status == "ok" and r.ms_per_step is not None for r in rows), rows
    assert all(r.error is not None and r.error < 1e-4 for r in rows if r.backend != "none")
    none = rows[0]
    assert none.lora_ms == 0.0 and all(r.lora_ms == r.ms_per_step - none.ms_per_step for r in rows)
    stats = summary(rows)[pkg]  # (CPU times are interpreter times: only the keys are checked)
    assert set(stats) - {"lora_vs_best"} == {f"tokens_vs_{b}" for b in ALL if b != "none"} | {"tokens_vs_best"}


def test_a_wrong_backend_is_not_timed_and_fails_the_command(tmp_path):
    fake = wrong_package(tmp_path)
    out = tmp_path / "serve.json"
    res = runner.invoke(app, ["bench", "serve", "--model", "tiny", "--layers", "1", "--ctx", "8", "--batch-sizes", "4",
                              "--workloads", "distinct", "--backends", f"none,torch,package:{fake}", "--device", "cpu",
                              "--json", str(out)])  # fmt: skip
    assert res.exit_code == 1 and "wrong logits" in res.output, res.output
    data = json.loads(out.read_text())
    assert set(data) >= {"device", "model", "rows"}
    assert set(data["rows"][0]) >= {"backend", "batch", "workload", "ms_per_step", "tokens_per_s", "lora_ms"}
    wrong = [r for r in data["rows"] if r["backend"].startswith("package:")]
    assert wrong and all(r["status"] == "wrong" and r["ms_per_step"] is None for r in wrong)


def test_bad_input_gets_a_named_error_and_keeps_files(tmp_path):
    kept = tmp_path / "mine.json"
    kept.write_text("precious")
    for args, needle in (
        (["--model", "llama9"], "--model"),
        (["--batch-sizes", "0,x"], "--batch-sizes"),
        (["--workloads", "bursty"], "--workloads"),
        (["--backends", "none,vllm"], "torch is needed"),
        (["--backends", "torch,flashinfer"], "unknown backend"),
        (["--backends", f"torch,package:{tmp_path}"], "not a folder written by dop export"),
        (["--device", "tpu"], "--device"),
        (["--json", str(kept)], "--force"),
    ):
        res = runner.invoke(app, ["bench", "serve", "--device", "cpu", *args])
        assert res.exit_code == 2 and needle in res.output, (args, res.output)
        assert "Traceback" not in res.output
    assert kept.read_text() == "precious"


def test_lora_bytes_count_the_adapters_in_the_batch():
    m = Weights(PRESETS["tiny"], layers=2, rank=8, adapters=3, device=torch.device("cpu"), dtype=torch.float32)
    h, i = PRESETS["tiny"].hidden, PRESETS["tiny"].intermediate
    per_layer = 8 * ((h * 3 + 3 * h) + (h + h) + (h * 2 + 2 * i) + (i + h))  # A and B of qkv, o, gate/up, down
    assert m.lora_bytes(3) == 3 * 2 * per_layer * 4
