"""Session files: atomic round trip, clear errors that never overwrite, summaries, and `dop show`/`measure`."""

import gzip
import json
import os
import subprocess
import sys

import pytest
from paths import ROOT
from typer.testing import CliRunner

from dop_tui.cli import app
from dop_tui.measure.record import Measurement
from dop_tui.scenario import make_scenario
from dop_tui.session.store import Session, SessionError, load, save
from dop_tui.session.summary import best_per_scenario, delta_summary, session_delta, status_counts
from dop_tui.space import BASELINES, sketches_for

SCN = make_scenario("shrink", 4096, (4096,), 16, "bf16", [1, 1], workload="distinct")
BUNDLED = ROOT / "sessions" / "h200-decode-foundation.json.gz"


def _session() -> Session:
    ms = [
        Measurement(SCN.key, "shrink/tile/dot", {"BLOCK_M": 16}, "ok", us=5.0, floor_us=1.0, method="graph"),
        Measurement(SCN.key, "shrink/splitk/dot", {"SPLIT_K": 4}, "ok", us=4.0, floor_us=1.0, method="graph"),
        Measurement(
            SCN.key, "shrink/gemv/fma", {"BLOCK_T": 1}, "ok", us=1.0, method="screen: graph x30", screening=True
        ),
        Measurement(SCN.key, "shrink/gemv/fma", {"BLOCK_T": 2}, "wrong", rel_error=0.4),
        Measurement(SCN.key, "shrink/baseline/vllm", {}, "ok", us=8.0, method="graph"),
        Measurement(SCN.key, "shrink/baseline/punica", {}, "timeout"),
    ]
    s = Session(job={"command": "test"}, device="NVIDIA H200", env={"triton": "3.6.0"})
    s.add(SCN, ms)
    return s


@pytest.mark.parametrize("name", ["s.json", "s.json.gz"])
def test_round_trip(tmp_path, name):
    save(_session(), tmp_path / name)
    back = load(tmp_path / name)
    assert back.to_json() == _session().to_json()
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp file left behind


def test_summary_best_ignores_screening_and_wrong():
    s = _session()
    assert status_counts(s)["ok"] == 4 and status_counts(s)["wrong"] == 1 and status_counts(s)["timeout"] == 1
    (best,) = best_per_scenario(s)
    assert best.measurement.kernel == "shrink/splitk/dot" and best.speedup == {"vllm": 2.0}
    assert best_per_scenario(s, screening_fallback=True)[0].measurement is best.measurement  # a full time exists


def test_summary_falls_back_to_screening_only_where_asked_and_needed():
    only_screened = Session()
    only_screened.add(SCN, [m for m in _session().measurements if m.screening or "/baseline/" in m.kernel])
    assert best_per_scenario(only_screened) == []
    (best,) = best_per_scenario(only_screened, screening_fallback=True)
    assert best.measurement.screening and best.speedup == {"vllm": 8.0}


@pytest.mark.parametrize(
    ("content", "msg"),
    [
        (b'{"format": "dop-session", "version": 7}', "newer than"),
        (b'{"format": "dop-session", "version": 1, "measurements": [{"scenario": 1}]}', "malformed"),
        (b'{"format": "dop-ses', "cannot read"),
        (b'{"hello": 1}', "not a dop session"),
    ],
)
def test_bad_files_give_clear_errors_and_are_not_overwritten(tmp_path, content, msg):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(SessionError, match=msg):
        load(bad)
    res = CliRunner().invoke(app, ["show", str(bad)])
    assert res.exit_code == 2 and msg in res.output.replace("\n", " ")
    res = CliRunner().invoke(app, ["measure", "--backend", "replay", "--session", str(bad)])
    assert res.exit_code == 2
    assert bad.read_bytes() == content


def test_missing_file_and_truncated_gzip(tmp_path):
    with pytest.raises(SessionError, match="no session file"):
        load(tmp_path / "none.json")
    good = tmp_path / "s.json.gz"
    save(_session(), good)
    trunc = tmp_path / "t.json.gz"
    trunc.write_bytes(good.read_bytes()[:40])
    with pytest.raises(SessionError, match="cannot read"):
        load(trunc)


def test_show_json_keys_on_the_bundled_h200_session():
    res = CliRunner().invoke(app, ["show", str(BUNDLED), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["device"] == "NVIDIA H200"
    assert set(d["counts"]) == {"ok", "wrong", "timeout", "crash", "compile_error", "invalid", "launch_error"}
    assert d["counts"]["ok"] > 20000 and len(d["best"]) == 204
    b = d["best"][0]
    assert {"scenario", "sketch", "config", "us", "speedup", "vs_best"} <= set(b)
    assert set(b["speedup"]) == {x.name for x in BASELINES} and b["vs_best"] == min(b["speedup"].values())
    delta = d["lora_delta"]
    assert delta["summary"]["best"]["n"] == len(delta["cases"]) > 0
    assert all(c["vs_best"] == min(c["baselines"].values()) / c["us"] for c in delta["cases"])


def test_replay_answers_recorded_candidates_and_refuses_the_rest(tmp_path):
    path = tmp_path / "s.json"
    save(_session(), path)
    sess = load(BUNDLED)
    assert len(sess.scenarios) == 204
    # replay through the CLI on a scenario of the bundled session: baselines were recorded, random configs
    # mostly were not, and an unmeasured config is reported as such
    args = ["measure", "--backend", "replay", "--session", str(BUNDLED), "--op", "shrink", "--batch-size", "64",
            "--workload", "skewed", "--sample", "3"]  # fmt: skip
    res = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "shrink/baseline/vllm" in res.output and "unmeasured" in res.output


def test_measure_interpret_writes_and_extends_a_session(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    path = tmp_path / "m.json"
    cmd = [sys.executable, "-m", "dop_tui.cli", "measure", "--backend", "interpret", "--h-in", "96", "--h-out", "64",
           "--op", "shrink", "--rank", "8", "--batch-size", "3", "--sample", "1", "--session", str(path)]  # fmt: skip
    for _ in range(2):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    sess = load(path)
    per_run = len(sketches_for("shrink")) + sum(b.op == "shrink" for b in BASELINES)
    assert len(sess.measurements) == 2 * per_run and {m.status for m in sess.measurements} == {"ok"}
    assert len(sess.scenarios) == 1
    with gzip.open(BUNDLED) as f:
        assert json.load(f)["format"] == "dop-session"


def test_lora_delta_takes_the_faster_path_and_divides_the_best_baseline_per_case():
    lens = [3, 1]
    fused = make_scenario("fused", 4096, (4096,), 16, "bf16", lens, workload="skewed")
    shrink = make_scenario("shrink", 4096, (11008,), 16, "bf16", lens, workload="skewed")  # any h_out: same shrink
    expand = make_scenario("expand", 4096, (4096,), 16, "bf16", lens, workload="skewed")
    other = make_scenario("fused", 11008, (4096,), 16, "bf16", [4], workload="identical")
    s = Session()
    s.add(fused, [Measurement(fused.key, "fused/tile/dot", {}, "ok", us=9.0),
                  Measurement(fused.key, "fused/baseline/vllm", {}, "ok", us=12.0),
                  Measurement(fused.key, "fused/baseline/sglang", {}, "ok", us=10.0)])  # fmt: skip
    s.add(shrink, [Measurement(shrink.key, "shrink/tile/dot", {}, "ok", us=3.0)])
    s.add(expand, [Measurement(expand.key, "expand/tile/dot", {}, "ok", us=2.0)])
    s.add(other, [Measurement(other.key, "fused/tile/dot", {}, "ok", us=4.0),
                  Measurement(other.key, "fused/baseline/vllm", {}, "ok", us=6.0)])  # fmt: skip
    cases = {c.scenario.key: c for c in session_delta(s)}
    first, second = cases[fused.key], cases[other.key]
    assert (first.ours_us, first.how, first.best_baseline) == (5.0, "shrink+expand", "sglang")
    assert first.vs_best == 2.0 and first.speedup == {"vllm": 2.4, "sglang": 2.0}
    assert (second.ours_us, second.how, second.vs_best) == (4.0, "fused", 1.5)
    summary = delta_summary(list(cases.values()))
    assert next(iter(summary)) == "best" and summary["best"].n == 2 and summary["best"].min == 1.5
    assert summary["sglang"].n == 1 and summary["vllm"].max == 2.4
    assert abs(summary["best"].geomean - (2.0 * 1.5) ** 0.5) < 1e-12


def _bad(**fields) -> bytes:
    """A valid session's JSON with ``fields`` replaced (a dotted name reaches into the first measurement)."""
    d = _session().to_json()
    for name, value in fields.items():
        if name.startswith("m."):
            d["measurements"][0][name[2:]] = value
        else:
            d[name] = value
    return json.dumps(d).encode().replace(b"1e999", b"1e400")


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (_bad(version=-1), "'version'"),
        (_bad(scenarios=[1]), "'scenarios'"),
        (_bad(env="oops"), "'env'"),
        (_bad(rounds=[{"round": 1, "elapsed_s": "soon"}]), "'elapsed_s'"),
        (_bad(rounds=["x"]), "round 0"),
        (_bad(**{"m.us": "fast"}), "'us'"),
        (_bad(**{"m.us": float("nan")}), "'us'"),
        (_bad(**{"m.us": 1e999}), "'us'"),
        (_bad(**{"m.status": "great"}), "status"),
        (_bad(**{"m.scenario": "nowhere"}), "unknown scenario"),
        (_bad(**{"m.config": {"BLOCK_M": "big"}}), "'config'"),
        (b'{"format": "dop-session", "version": 2, "job": ' + b"[" * 100000 + b"]" * 100000 + b"}", "nest"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_sessions_name_the_file_and_the_field(tmp_path, content, field):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(SessionError) as err:
        load(path)
    assert str(path) in str(err.value) and field in str(err.value)
    assert path.read_bytes() == content


def test_older_records_carry_their_flags_in_text_and_load_them_as_fields():
    from dop_tui.measure.record import Measurement

    old = {"scenario": "s", "kernel": "k", "config": {}, "status": "ok", "us": 2.0,
           "method": "cuda-graph x100 / 3 copies, short (probe 9.0 us)",
           "message": "do_bench (L2 flushed, launch included): 5.25 us; worker: check 0.01 s"}  # fmt: skip
    m = Measurement.from_json(old)
    assert m.short and not m.screening and m.do_bench_us == 5.25
    assert Measurement.from_json({**old, "method": "screen: cuda-graph x10"}).screening
    new = Measurement.from_json({**old, "short": False, "do_bench_us": None})  # a record's own fields win
    assert not new.short and new.do_bench_us is None
    assert Measurement.from_json(m.to_json()) == m
    with pytest.raises(ValueError, match="'short' must be true or false"):
        Measurement.from_json({**old, "short": "yes"})
