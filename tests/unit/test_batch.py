"""``--batch``: a replay job end to end, its exit codes, resume, and that it never loads textual."""

import json
import subprocess
import sys

import pytest
from paths import ROOT
from typer.testing import CliRunner

from dop_tui.cli import app
from dop_tui.session.store import load

DATASET = ROOT / "sessions" / "h200-decode-foundation.json.gz"
runner = CliRunner()


@pytest.fixture
def job_file(tmp_path):
    path = tmp_path / "job.toml"
    path.write_text(
        'name = "small replay"\nops = ["shrink"]\nprojections = ["q"]\nbatch_sizes = [8]\n'
        'workloads = ["distinct", "uniform"]\nbackend = "replay"\n'
        f'replay = "{DATASET}"\nbudget = 24\nseed = 3\n'
    )
    return path


def test_a_replay_job_runs_and_writes_its_session(job_file, tmp_path):
    out = tmp_path / "s.json.gz"
    res = runner.invoke(app, ["tune", "--batch", str(job_file), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "best kernel per scenario" in res.output and "session written to" in res.output
    s = load(out)
    assert s.finished == "budget" and s.rounds and s.rounds[-1]["budget_used"] == 24
    searched = [m for m in s.measurements if "/baseline/" not in m.kernel]
    assert (
        len(searched) == 24 and len({(m.scenario, m.kernel, tuple(sorted(m.config.items()))) for m in searched}) == 24
    )
    assert s.job["name"] == "small replay" and s.device == "NVIDIA H200"
    shown = runner.invoke(app, ["show", "--json", str(out)])
    summary = json.loads(shown.output)
    assert summary["finished"] == "budget" and summary["rounds"] == s.rounds and summary["best"]


def test_the_runners_notes_close_the_run(job_file, tmp_path, monkeypatch):
    """What the runner says about its measuring (the GPU runner: its compile pool) is printed before the last
    line."""
    from dop_tui.measure.runners import ReplayRunner

    monkeypatch.setattr(ReplayRunner, "notes", lambda self: ["compile pool (stub): 3 kernels"], raising=False)
    res = runner.invoke(app, ["tune", "--batch", str(job_file), "-o", str(tmp_path / "s.json.gz")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    at = lines.index("compile pool (stub): 3 kernels")
    assert lines[at + 1].startswith("budget: 24 measurements")  # the last line (it may wrap) follows


def test_a_replay_job_answers_from_several_sessions(tmp_path):
    """Each file answers the candidates it recorded; the first record of a candidate wins."""
    sessions = DATASET.parent
    first, second = load(sessions / "h200-7b-decode.json.gz"), load(sessions / "h200-decode-random.json.gz")
    only_second = {m.key for m in second.measurements} - {m.key for m in first.measurements}
    path = tmp_path / "job.toml"
    path.write_text(
        'ops = ["expand"]\nprojections = ["q"]\nbatch_sizes = [16]\nworkloads = ["skewed"]\nbackend = "replay"\n'
        'replay = ["h200-7b-decode.json.gz", "h200-decode-random.json.gz"]\nbudget = 30\n'
    )
    (tmp_path / "h200-7b-decode.json.gz").symlink_to(sessions / "h200-7b-decode.json.gz")
    (tmp_path / "h200-decode-random.json.gz").symlink_to(sessions / "h200-decode-random.json.gz")
    out = tmp_path / "s.json.gz"
    res = runner.invoke(app, ["tune", "--batch", str(path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "h200-7b-decode.json.gz + h200-decode-random.json.gz" in " ".join(res.output.split())
    got = load(out).measurements
    assert {m.status for m in got} == {"ok"} and any(m.key in only_second for m in got)
    recorded = {}
    for m in first.measurements + second.measurements:
        recorded.setdefault(m.key, m)
    assert all(m.us == recorded[m.key].us for m in got)


def test_resume_continues_without_measuring_twice(job_file, tmp_path):
    out = tmp_path / "s.json.gz"
    assert runner.invoke(app, ["tune", "--batch", str(job_file), "--budget", "12", "-o", str(out)]).exit_code == 0
    first = load(out)
    res = runner.invoke(app, ["tune", "--batch", "--resume", str(out), "--budget", "24"])
    assert res.exit_code == 0, res.output
    s = load(out)
    # the final table covers the whole session (every scenario, with its baselines), and the clock goes on
    rows = [ln for ln in res.output.splitlines() if ln.startswith("│") and ("T8 distinct" in ln or "T8 uniform" in ln)]
    assert len(rows) == 2 and all("x │" in ln for ln in rows)  # both scenarios, each with its speedup
    before = [r["elapsed_s"] for r in first.rounds]
    assert [r["elapsed_s"] for r in s.rounds[: len(before)]] == before
    assert s.rounds[len(before)]["elapsed_s"] >= before[-1]
    searched = [m for m in s.measurements if "/baseline/" not in m.kernel]
    assert len(searched) == 24 and len({m.key for m in searched}) == 24
    assert s.finished == "budget"
    rounds = [r["round"] for r in s.rounds]
    assert rounds == sorted(set(rounds)) and rounds[0] == 0  # the resumed run numbers on, once each


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["tune", "--batch", "{tmp}/missing.toml"], 2, "no job file"),
        (["tune", "--batch", "{tmp}/bad.toml"], 2, "ops"),
        (["tune", "--batch", "--resume", "{tmp}/missing.json.gz"], 2, "no session file"),
        (["tune", "--batch", "{tmp}/gpu.toml"], 1, "no CUDA GPU"),
        (["tune", "--batch"], 2, "needs a job file"),
    ],
)
def test_failures_exit_non_zero_with_a_message(tmp_path, args, code, message):
    (tmp_path / "bad.toml").write_text('opz = ["shrink"]\n')
    (tmp_path / "gpu.toml").write_text('ops = ["shrink"]\nbackend = "gpu"\n')
    res = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert res.exit_code == code, res.output
    assert message in res.output


def test_batch_never_imports_textual(job_file, tmp_path):
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom dop_tui.cli import app\n"
        f"r = CliRunner().invoke(app, ['tune', '--batch', {str(job_file)!r}, '--budget', '4', "
        f"'-o', {str(tmp_path / 'x.json.gz')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'textual'], 'textual was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_the_final_table_is_compact_at_80_columns_and_sorted_naturally():
    from rich.console import Console

    from dop_tui.batch import final_table

    s = load(DATASET)
    s.scenarios = {k: v for k, v in s.scenarios.items() if v.op == "shrink" and v.rank == 16 and v.h_in == 4096}
    s.measurements = [m for m in s.measurements if m.scenario in s.scenarios]
    narrow, wide = final_table(s, 80), final_table(s, 160)
    assert [c.header for c in narrow.columns] == ["scenario", "sketch", "us", "vs best", "floor"]
    assert "config" in [c.header for c in wide.columns]
    console = Console(width=80, record=True)
    console.print(narrow)
    lines = [ln for ln in console.export_text().splitlines() if ln.startswith("│ shrink")]
    assert len(lines) == len(s.scenarios)  # one line per scenario
    tokens = [int(ln.split(" T")[1].split()[0]) for ln in lines]
    assert tokens == sorted(tokens) and tokens[0] == 1 and tokens[-1] == 64  # t1, t8, t16... not as text
