"""A user's files are never overwritten or lost: session outputs are checked before anything runs, default
names never clobber, one job writes a file at a time, a job file cannot resume another job's session."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from paths import ROOT
from typer.testing import CliRunner

from dop_tui.cli import app
from dop_tui.session.guard import OutputError, SessionLock, check_output, fresh_path
from dop_tui.session.store import load

DATASET = ROOT / "sessions" / "h200-decode-foundation.json.gz"
runner = CliRunner()


def _job(tmp_path: Path, name: str = "small replay", batch: int = 8) -> Path:
    path = tmp_path / f"{name.replace(' ', '_')}.toml"
    path.write_text(
        f'name = "{name}"\nops = ["shrink"]\nprojections = ["q"]\nbatch_sizes = [{batch}]\n'
        'workloads = ["distinct", "uniform"]\nbackend = "replay"\n'
        f'replay = "{DATASET}"\nbudget = 12\nseed = 3\n'
    )
    return path


def test_check_output_refuses_what_it_must_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(OutputError, match="already exists"):
        check_output(tmp_path / "mine.txt")
    with pytest.raises(OutputError, match="is a directory"):
        check_output(tmp_path)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "no" / "s.json.gz")
    check_output(tmp_path / "mine.txt", force=True)
    check_output(tmp_path / "mine.txt", resume=tmp_path / "mine.txt")  # continuing in place is fine
    check_output(tmp_path / "new.json.gz")
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_fresh_path_never_clobbers(tmp_path):
    first = tmp_path / "job.session.json.gz"
    assert fresh_path(first) == first
    first.write_text("x")
    assert fresh_path(first) == tmp_path / "job-2.session.json.gz"
    (tmp_path / "job-2.session.json.gz").write_text("x")
    assert fresh_path(first) == tmp_path / "job-3.session.json.gz"
    assert fresh_path(tmp_path / "a.json.gz").name == "a.json.gz"


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(tmp_path):
    out = tmp_path / "s.json.gz"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "s.json.gz.lock").write_text(str(other.pid))
        with pytest.raises(OutputError, match=f"pid {other.pid}"), SessionLock(out):
            pass
    finally:
        other.kill()
        other.wait()
    with SessionLock(out) as lock:  # its process is gone: stale
        assert lock.held and (tmp_path / "s.json.gz.lock").read_text() == str(os.getpid())
    assert not (tmp_path / "s.json.gz.lock").exists()


def test_batch_never_overwrites_and_checks_before_round_zero(tmp_path):
    job = _job(tmp_path)
    precious = tmp_path / "README.md"
    precious.write_text("my notes")
    res = runner.invoke(app, ["tune", "--batch", str(job), "-o", str(precious)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "already exists" in said and "--force" in said
    assert precious.read_text() == "my notes"
    for bad, words in ((tmp_path, "is a directory"), (tmp_path / "nope" / "s.json.gz", "does not exist")):
        res = runner.invoke(app, ["tune", "--batch", str(job), "-o", str(bad)])
        said = " ".join(res.output.split())  # rich wraps long lines
        assert res.exit_code == 2 and words in said and "Traceback" not in said
    assert runner.invoke(app, ["tune", "--batch", str(job), "-o", str(precious), "--force"]).exit_code == 0
    assert load(precious).job["name"] == "small replay"


def test_default_names_never_clobber_an_earlier_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = _job(tmp_path)
    for _ in range(2):
        assert runner.invoke(app, ["tune", "--batch", str(job)]).exit_code == 0
    assert sorted(p.name for p in tmp_path.glob("*.session.json.gz")) == [
        "small_replay-2.session.json.gz",
        "small_replay.session.json.gz",
    ]


def test_a_job_file_cannot_resume_another_jobs_session(tmp_path):
    first = tmp_path / "first.json.gz"
    assert runner.invoke(app, ["tune", "--batch", str(_job(tmp_path)), "-o", str(first)]).exit_code == 0
    before = first.read_bytes()
    other = _job(tmp_path, "other", batch=16)
    res = runner.invoke(app, ["tune", "--batch", str(other), "--resume", str(first)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "another job's session" in said and "batch_sizes" in said
    assert first.read_bytes() == before
    same = runner.invoke(app, ["tune", "--batch", str(_job(tmp_path)), "--resume", str(first), "--budget", "20"])
    assert same.exit_code == 0, same.output  # the same job (a bigger budget) continues in place


def test_a_session_resumes_from_another_folder(tmp_path, monkeypatch):
    """The job a session records names its replay files absolutely: resuming elsewhere finds them."""
    monkeypatch.chdir(tmp_path)
    job = _job(tmp_path)
    (tmp_path / "d.json.gz").symlink_to(DATASET)
    job.write_text(job.read_text().replace(f'replay = "{DATASET}"', 'replay = "d.json.gz"'))  # relative
    out = tmp_path / "s.json.gz"
    assert runner.invoke(app, ["tune", "--batch", str(job.name), "-o", "s.json.gz", "--budget", "6"]).exit_code == 0
    assert all(Path(p).is_absolute() for p in [load(out).job["replay"]])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = runner.invoke(app, ["tune", "--batch", "--resume", str(out), "--budget", "12"])
    assert res.exit_code == 0, res.output


def test_sigterm_stops_a_batch_job_like_ctrl_c(tmp_path):
    """A killed job (SIGTERM) exits 130 with its finished rounds on disk, as Ctrl-C does."""
    import signal
    import time

    job = _job(tmp_path)
    job.write_text(job.read_text().replace("budget = 12", "budget = 100000"))
    out = tmp_path / "s.json.gz"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.Popen([sys.executable, "-m", "dop_tui.cli", "tune", "--batch", str(job), "-o", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out.exists() and load(out).rounds) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, text
    assert "interrupted" in text and load(out).rounds and not (tmp_path / "s.json.gz.lock").exists()


def test_a_replay_job_names_the_scenarios_it_has_no_data_for(tmp_path):
    job = _job(tmp_path)
    job.write_text(job.read_text().replace("batch_sizes = [8]", "batch_sizes = [8, 7]"))  # 7 was never measured
    res = runner.invoke(app, ["tune", "--batch", str(job), "-o", str(tmp_path / "s.json.gz")])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "never measured" in said and "T7" in said
