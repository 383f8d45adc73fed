"""dop bench serve --trace on the tiny preset in the Triton interpreter: the trace's distribution, the
continuous-batching scheduler's rules, the prefill and decode steps, every backend's logits over a trace checked
against torch's, a wrong backend refused, and the command's JSON and errors."""

import json
import math
from collections import Counter

import pytest
import torch
from serve_support import export_package, wrong_package
from typer.testing import CliRunner

from dop_tui.cli import app
from dop_tui.serve.backends import Lora
from dop_tui.serve.model import PRESETS, DecodeStep, KVCache, PrefillStep, Weights
from dop_tui.serve.trace import Request, adapter_pool, build_trace, run, schedule

runner = CliRunner()
CPU = torch.device("cpu")
NO_LORA = Lora(lambda layer, group: None)


def test_the_trace_is_seeded_and_follows_its_distribution():
    traces = {wl: build_trace(2000, wl, rate=0.5) for wl in ("distinct", "uniform", "skewed", "identical")}
    assert build_trace(2000, "skewed", rate=0.5) == traces["skewed"]
    assert build_trace(2000, "skewed", rate=0.5, seed=1) != traces["skewed"]
    base = [(r.id, r.arrival, r.prompt, r.output) for r in traces["distinct"]]
    for wl, trace in traces.items():  # the same requests in every workload, only the adapters differ
        assert [(r.id, r.arrival, r.prompt, r.output) for r in trace] == base, wl
    arrivals = [r.arrival for r in traces["distinct"]]
    assert arrivals == sorted(arrivals) and arrivals[0] >= 0
    assert 0.9 * 2000 / 0.5 < arrivals[-1] < 1.1 * 2000 / 0.5  # mean gap 1 / rate steps
    assert {r.prompt for r in traces["distinct"]} <= set(range(64, 513))
    assert {r.output for r in traces["distinct"]} <= set(range(16, 129))
    assert min(r.prompt for r in traces["distinct"]) < 80 and max(r.prompt for r in traces["distinct"]) > 496
    assert [r.adapter for r in traces["distinct"]] == list(range(2000))
    assert {r.adapter for r in traces["identical"]} == {0}
    pool = adapter_pool("uniform", 2000)
    assert pool == adapter_pool("skewed", 2000) == math.ceil(math.sqrt(2000)) == 45
    uniform = Counter(r.adapter for r in traces["uniform"])
    assert set(uniform) == set(range(pool)) and max(uniform.values()) < 3 * 2000 / pool
    skewed = Counter(r.adapter for r in traces["skewed"])
    assert set(skewed) <= set(range(pool))
    zipf = [k**-1.5 for k in range(1, pool + 1)]
    assert abs(skewed[0] / 2000 - zipf[0] / sum(zipf)) < 0.05  # the most popular: about 41%
    assert skewed[0] > 2 * skewed[1] > 2 * skewed[5]
    short = build_trace(5, "uniform", prompt_lens=(3, 8), output_lens=(2, 4))
    assert all(3 <= r.prompt <= 8 and 2 <= r.output <= 4 for r in short)
    with pytest.raises(ValueError, match="at least one request"):
        build_trace(0, "uniform")


def _check_schedule(trace: list[Request], steps, max_running: int, budget: int) -> None:
    """Replay ``steps`` against the scheduler's rules."""
    by_id = {r.id: r for r in trace}
    produced = Counter()
    admitted: list[int] = []  # in admission order
    running: list[int] = []
    last_clock = -1
    for s in steps:
        assert s.clock > last_clock
        if last_clock >= 0 and s.clock > last_clock + 1:  # a jump: only when nothing ran or waited
            assert not running and all(r.arrival >= s.clock for r in trace if r.id not in admitted)
            assert any(r.arrival == s.clock for r in trace)
        last_clock = s.clock
        assert sum(s.seg_lens) == sum(s.tokens) and len(s.seg_lens) == len(s.adapters)
        assert list(s.adapters) == sorted(set(s.adapters))  # one segment per adapter, in adapter order
        for a, n in zip(s.adapters, s.seg_lens, strict=True):
            assert n == sum(t for i, t in zip(s.requests, s.tokens, strict=True) if by_id[i].adapter == a)
        waiting = [r for r in trace if r.id not in admitted and r.arrival <= s.clock]  # FCFS order: by id
        if s.kind == "prefill":
            new = sorted(s.requests)
            assert new == [r.id for r in waiting[: len(new)]]  # the first ones waiting
            assert s.requests == tuple(sorted(new, key=lambda i: by_id[i].adapter))  # stably by adapter
            assert list(s.tokens) == [by_id[i].prompt for i in s.requests]
            assert len(running) + len(new) <= max_running
            assert len(new) == 1 or sum(s.tokens) <= budget
            room = len(running) + len(new) < max_running and len(waiting) > len(new)
            assert not room or sum(s.tokens) + waiting[len(new)].prompt > budget  # took as many as fit
            admitted += new
            running += new
        else:
            assert not waiting or len(running) == max_running  # decode only when nobody can be admitted
            assert s.requests == tuple(sorted(running, key=lambda i: by_id[i].adapter)) and set(s.tokens) == {1}
        for i in s.requests:
            produced[i] += 1
        running = [i for i in running if produced[i] < by_id[i].output]
    assert not running and produced == Counter({r.id: r.output for r in trace})


def test_the_scheduler_batches_continuously_fcfs_within_slots_and_budget():
    for wl, rate, max_running, budget in (("skewed", 2.0, 6, 900), ("distinct", 0.05, 4, 4096),
                                          ("uniform", 0.5, 16, 1024)):  # fmt: skip
        trace = build_trace(60, wl, rate=rate)
        steps = schedule(trace, max_running=max_running, budget=budget)
        _check_schedule(trace, steps, max_running, budget)
        assert steps == schedule(trace, max_running=max_running, budget=budget)
        kinds = Counter(s.kind for s in steps)
        assert kinds["prefill"] < 60 or rate < 0.1  # busy traces batch prefills
        assert kinds["decode"] >= max(r.output for r in trace) - 1
    long = [Request(0, 0, 50, 2, 0), Request(1, 0, 300, 2, 1), Request(2, 0, 20, 2, 0), Request(3, 0, 30, 2, 1)]
    steps = schedule(long, max_running=4, budget=100)
    _check_schedule(long, steps, 4, 100)
    assert [(s.kind, s.requests) for s in steps[:3]] == [("prefill", (0,)), ("prefill", (1,)), ("prefill", (2, 3))]


def test_prefill_isolates_prompts_and_decode_shares_one_cache():
    w = Weights(PRESETS["tiny"], layers=2, rank=8, adapters=1, device=CPU, dtype=torch.float32)
    both, a, b = PrefillStep(w, [3, 5]), PrefillStep(w, [3]), PrefillStep(w, [5])
    a.token_ids.copy_(both.token_ids[:3])
    b.token_ids.copy_(both.token_ids[3:])
    together = both.step(NO_LORA).clone()
    assert together.shape == (2, PRESETS["tiny"].vocab)
    torch.testing.assert_close(together, torch.cat([a.step(NO_LORA), b.step(NO_LORA)]))
    reversed_tokens = PrefillStep(w, [3])
    reversed_tokens.token_ids.copy_(both.token_ids[:3].flip(0))
    assert not torch.allclose(reversed_tokens.step(NO_LORA), together[:1])  # attention sees the order
    both.token_ids[3:6] = both.token_ids[:3]  # the second prompt starts as the first: causal, so the same states
    both.step(NO_LORA)
    torch.testing.assert_close(both.x[3:6], both.x[:3])
    assert not torch.allclose(both.x[5], both.x[2])
    cache = KVCache(w, requests=4, ctx=6)
    three, two = DecodeStep(w, cache, 3), DecodeStep(w, cache, 2)
    two.token_ids.copy_(three.token_ids[:2])
    torch.testing.assert_close(three.step(NO_LORA)[:2], two.step(NO_LORA))
    assert three.k_cache.data_ptr() == two.k_cache.data_ptr() == cache.k.data_ptr()
    with pytest.raises(ValueError, match="cache of 4"):
        DecodeStep(w, cache, 5)


def _checked_rows(trace: list[Request], names: list[str]) -> list:
    rows = run(PRESETS["tiny"], layers=1, rank=8, ctx=8, trace=trace, workload="skewed", max_running=2,
               backends=names, device=CPU, dtype=torch.float32, tolerance=1e-3)  # fmt: skip
    assert [r.backend for r in rows] == names
    assert all(r.status == "ok" and r.ms is not None for r in rows), rows
    assert all(r.error is not None and r.error < 1e-4 for r in rows if r.backend != "none")
    for r in rows:  # the same schedule for every backend
        assert (r.tokens, r.output_tokens) == (sum(q.prompt + q.output for q in trace), sum(q.output for q in trace))
        assert r.tokens_per_s == pytest.approx(r.tokens / r.ms * 1e3)
        assert r.output_tokens_per_s == pytest.approx(r.output_tokens / r.ms * 1e3)
        assert r.lora_ms == r.ms - rows[0].ms
    return rows


def test_every_backend_computes_the_torch_logits_over_a_trace(tmp_path):
    # two requests together (adapters 2 and 0 of 3: segments out of request order), then the first alone, twice
    trace = [Request(0, 0, 4, 4, 2), Request(1, 0, 3, 2, 0)]
    assert [(s.kind, s.seg_lens, s.adapters) for s in schedule(trace, max_running=2)] == [
        ("prefill", (3, 4), (0, 2)), ("decode", (1, 1), (0, 2)), ("decode", (1,), (2,)), ("decode", (1,), (2,))
    ]  # fmt: skip
    pkg = f"package:{export_package(tmp_path)}"
    rows = _checked_rows(trace, ["none", "torch", "sglang", "punica", pkg, "punica+overlap", f"{pkg}+overlap"])
    assert {(r.prefill_steps, r.decode_steps, r.distinct_steps) for r in rows} == {(1, 3, 3)}


def test_vllms_ops_compute_the_torch_logits_of_a_prefill():
    # the interpreter runs vLLM's split-K grids slowly: one step, the prefill of two prompts out of adapter order
    rows = _checked_rows([Request(0, 0, 4, 1, 2), Request(1, 0, 3, 1, 0)], ["none", "torch", "vllm", "vllm-tuned"])
    assert {(r.prefill_steps, r.decode_steps, r.distinct_steps) for r in rows} == {(1, 0, 1)}


def test_a_wrong_backend_over_a_trace_is_not_timed_and_fails_the_command(tmp_path):
    out = tmp_path / "trace.json"
    args = ["bench", "serve", "--model", "tiny", "--layers", "1", "--rank", "8", "--ctx", "8", "--batch-sizes", "2,3",
            "--device", "cpu", "--trace", "3", "--trace-rate", "2", "--json", str(out)]  # fmt: skip
    pkg = f"package:{wrong_package(tmp_path)}"
    res = runner.invoke(app, [*args, "--workloads", "distinct", "--backends", f"none,torch,{pkg}"])
    assert res.exit_code == 1 and "wrong logits" in res.output, res.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["backend"], r["status"]) for r in rows] == [("none", "ok"), ("torch", "ok"), (pkg, "wrong")]
    assert rows[2]["ms"] is None and rows[2]["tokens_per_s"] is None and rows[2]["error"] > 1e-2
    args += ["--workloads", "uniform,distinct", "--backends", "none,torch"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "--force" in res.output, res.output  # the file is kept
    assert json.loads(out.read_text())["rows"] == rows
    res = runner.invoke(app, [*args, "--force", "--seed", "5"])
    assert res.exit_code == 0 and "uniform trace: 3 requests" in res.output, res.output
    data = json.loads(out.read_text())
    assert data["trace"] == {"requests": 3, "rate": 2.0, "prompt_lens": [64, 512], "output_lens": [16, 128],
                             "zipf": 1.5, "seed": 5, "max_running": 3, "prefill_budget": 4096}  # fmt: skip
    served = sum(r.prompt + r.output for r in build_trace(3, "uniform", rate=2.0, seed=5))
    assert served != sum(r.prompt + r.output for r in build_trace(3, "uniform", rate=2.0, seed=0))
    assert data["rows"][0]["tokens"] == served  # the seed given is the trace served
    assert {"device", "model", "rows"} <= set(data)
    assert [(r["backend"], r["workload"]) for r in data["rows"]] == [
        ("none", "uniform"), ("torch", "uniform"), ("none", "distinct"), ("torch", "distinct")
    ]  # fmt: skip
    for r in data["rows"]:
        assert set(r) == {"backend", "workload", "tokens", "output_tokens", "ms", "tokens_per_s",
                          "output_tokens_per_s", "lora_ms", "prefill_steps", "decode_steps", "distinct_steps",
                          "error", "status"}  # fmt: skip
        assert r["status"] == "ok" and r["tokens"] > r["output_tokens"] >= 3 * 16


def test_bad_trace_input_gets_a_named_error():
    for args, needle in ((["--trace", "0"], "--trace"), (["--trace", "2", "--trace-rate", "0"], "--trace-rate")):
        res = runner.invoke(app, ["bench", "serve", "--model", "tiny", "--device", "cpu", *args])
        assert res.exit_code == 2 and needle in res.output, (args, res.output)
        assert "Traceback" not in res.output
