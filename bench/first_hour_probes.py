"""Hostile first-hour probes of the command line: bad job files, corrupt sessions, bad flags, kills.

  python bench/first_hour_probes.py [--kills 6] [--out probes.json]

Every probe runs the installed ``dop`` in a fresh folder holding a few files of the user's (a README, a job, a
finished session); afterwards it counts, per probe, the exit code, whether a Python traceback was printed and
whether any of those files changed or vanished ("data lost"). A clear error is a non-zero exit with a message
and no traceback. Kill probes start a small replay job, ``kill -9`` it at a random moment, resume it, and compare
the resumed session's measurements with an uninterrupted run's (same candidates, same order).
Prints one line per failing probe and a summary; ``--out`` writes every probe's result as JSON.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "sessions"
SMALL_JOB = f"""ops = ["shrink"]
projections = ["q"]
batch_sizes = [8, 32]
workloads = ["distinct", "skewed"]
backend = "replay"
replay = ["{SESSIONS / "h200-7b-decode.json.gz"}", "{SESSIONS / "h200-decode-random.json.gz"}"]
budget = 96
seed = 1
"""


def dop(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "100", "DOP_TUI_CACHE": str(cwd / ".cache")}
    return subprocess.run([sys.executable, "-m", "dop_tui.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts}  # fmt: skip


def bad_jobs() -> dict[str, str]:
    base = 'ops = ["shrink"]\nbackend = "interpret"\nbudget = 4\n'
    return {
        "empty file": "",
        "not toml": "ops = [shrink",
        "binary": "\x00\x01\x02garbage",
        "no ops": 'budget = 4\nbackend = "interpret"\n',
        "unknown key": base + "speed = 11\n",
        "ops not a list": 'ops = "shrink"\n',
        "unknown op": 'ops = ["gemm"]\n',
        "empty ops": "ops = []\n",
        "rank zero": base + "ranks = [0]\n",
        "rank a string": base + 'ranks = ["16"]\n',
        "batch too large": base + "batch_sizes = [100000]\n",
        "negative batch": base + "batch_sizes = [-1]\n",
        "unknown workload": base + 'workloads = ["bursty"]\n',
        "unknown dtype": base + 'dtypes = ["fp8"]\n',
        "unknown model": base + 'model = "llama9"\n',
        "unknown projection": base + 'projections = ["qq"]\n',
        "bad projections table": base + "projections = {shrink = 3}\n",
        "shapes not pairs": base + "shapes = [[4096]]\n",
        "shapes zero": base + "shapes = [[0, 4096]]\n",
        "shapes floats": base + "shapes = [[4096.5, 4096]]\n",
        "budget zero": 'ops = ["shrink"]\nbackend = "interpret"\nbudget = 0\n',
        "budget a string": 'ops = ["shrink"]\nbudget = "many"\n',
        "budget bool": 'ops = ["shrink"]\nbudget = true\n',
        "unknown backend": 'ops = ["shrink"]\nbackend = "tpu"\n',
        "replay without files": 'ops = ["shrink"]\nbackend = "replay"\n',
        "replay file missing": 'ops = ["shrink"]\nbackend = "replay"\nreplay = "nope.json.gz"\n',
        "replay without the scenarios": 'ops = ["shrink"]\nshapes = [[96, 40]]\nbackend = "replay"\n'
        f'replay = "{SESSIONS / "h200-7b-decode.json.gz"}"\n',
        "unknown strategy": base + 'strategy = "annealing"\n',
        "unknown sketch": base + 'sketches = ["shrink/magic/x"]\n',
        "sketch of another op": base + 'sketches = ["fused/tile/dot"]\n',
        "warm start missing": base + 'warm_start = "nothing.json.gz"\n',
        "warm start not a session": base + 'warm_start = "README.md"\n',
        "ray keys without ray": base + 'ray_address = "auto"\n',
        "ray measure unknown": 'ops = ["shrink"]\nbackend = "ray"\nray_measure = "tpu"\n',
        "seed a float": base + "seed = 1.5\n",
        "deep nesting": base + "name = " + "[" * 500 + "]" * 500 + "\n",
    }


def bad_sessions(good: dict) -> dict[str, bytes]:
    def gz(d: object) -> bytes:
        return gzip.compress(json.dumps(d).encode())

    m0 = good["measurements"][0]
    scn0 = next(iter(good["scenarios"].values()))
    return {
        "empty file": b"",
        "not gzip, not json": b"hello",
        "truncated gzip": gz(good)[:200],
        "json list": gz([1, 2]),
        "version -1": gz({**good, "version": -1}),
        "version string": gz({**good, "version": "2"}),
        "scenarios a list": gz({**good, "scenarios": [1]}),
        "scenario missing fields": gz({**good, "scenarios": {"k": {"op": "shrink"}}}),
        "scenario bad op": gz({**good, "scenarios": {"k": {**scn0, "op": "gemm"}}}),
        "measurements not a list": gz({**good, "measurements": {}}),
        "us a string": gz({**good, "measurements": [{**m0, "us": "fast"}]}),
        "us NaN": gz({**good, "measurements": [{**m0, "us": float("nan")}]}),
        "us 1e400": gzip.compress(json.dumps({**good, "measurements": [{**m0, "us": 1.0}]}).replace(
            '"us": 1.0', '"us": 1e400').encode()),
        "us negative": gz({**good, "measurements": [{**m0, "us": -1.0}]}),
        "unknown status": gz({**good, "measurements": [{**m0, "status": "great"}]}),
        "unknown scenario": gz({**good, "measurements": [{**m0, "scenario": "nowhere"}]}),
        "config floats": gz({**good, "measurements": [{**m0, "config": {"BLOCK_M": 1.5}}]}),
        "env a string": gz({**good, "env": "oops"}),
        "measurement env a string": gz({**good, "measurements": [{**m0, "env": "oops"}]}),
        "rounds a dict": gz({**good, "rounds": {}}),
        "round without fields": gz({**good, "rounds": [{"x": 1}]}),
        "round elapsed NaN": gz({**good, "rounds": [{"round": 1, "budget_used": 1, "elapsed_s": float("nan")}]}),
        "job a string": gz({**good, "job": "oops"}),
        "unknown field": gz({**good, "measurements": [{**m0, "speed": 3}]}),
        "deep nesting": gzip.compress(("[" * 100000 + "]" * 100000).encode()),
    }  # fmt: skip


def bad_command_lines() -> list[list[str]]:
    return [
        ["tune", "--batch"], ["tune", "nope.toml"], ["tune", "--batch", "nope.toml"], ["tune", "--batch", "."],
        ["tune", "--batch", "job.toml", "--budget", "0"], ["tune", "--batch", "job.toml", "--budget", "-3"],
        ["tune", "--batch", "job.toml", "--time-limit", "-1"], ["tune", "--batch", "job.toml", "--backend", "tpu"],
        ["tune", "--batch", "job.toml", "-o", "README.md"], ["tune", "--batch", "job.toml", "-o", "done.json.gz"],
        ["tune", "--batch", "job.toml", "-o", "missing/dir/s.json.gz"], ["tune", "--batch", "job.toml", "-o", "."],
        ["tune", "--batch", "job.toml", "--resume", "README.md"], ["tune", "--batch", "--resume", "nope.json.gz"],
        ["tune", "--batch", "job.toml", "--seed", "x"], ["tune", "--batch", "job.toml", "--batch-size", "0"],
        ["space", "--rank", "0"], ["space", "--rank", "1000000"], ["space", "--h-in", "-5"],
        ["space", "--batch-size", "0"], ["space", "--op", "gemm"], ["space", "--dtype", "fp8"],
        ["check", "--kernel", "shrink/magic/x"], ["check", "--backend", "tpu"], ["measure", "--backend", "tpu"],
        ["show", "nope.json.gz"], ["show", "README.md"], ["show", "."],
        ["export", "nope.json.gz", "-o", "pkg"], ["export", "done.json.gz", "-o", "README.md"],
        ["export", "done.json.gz", "-o", "pkg", "--format", "zip"], ["export", "done.json.gz", "-o", "pkg", "--name",
                                                                   "bad name"],
        ["export", "done.json.gz", "-o", "."], ["export", "README.md", "-o", "pkg"],
        ["bench", "search", "nope.json.gz"], ["bench", "search", "done.json.gz", "--strategies", "annealing"],
        ["calibrate", "--bogus"], ["nosuchcommand"], ["tune", "--batch", "job.toml", "--time-limit", "abc"],
    ]  # fmt: skip


def run_probes(kind: str, cases: list[tuple[str, list[str], dict[str, bytes]]], home: Path) -> list[dict]:
    results = []
    for name, args, files in cases:
        work = Path(tempfile.mkdtemp(dir=home))
        shutil.copytree(home / "_seed", work, dirs_exist_ok=True)
        for rel, data in files.items():
            (work / rel).write_bytes(data)
        before = snapshot(work)
        try:
            proc = dop(*args, cwd=work)
            out, rc = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired:
            out, rc = "timed out", -1
        after = snapshot(work)
        lost = sorted(k for k, h in before.items() if after.get(k) != h)
        trace = "Traceback (most recent call last)" in out
        clear = rc not in (0, -1) and not trace and bool(out.strip())
        results.append({"kind": kind, "name": name, "args": args, "rc": rc, "traceback": trace, "clear": clear,
                        "lost": lost, "tail": out.strip().splitlines()[-1][:200] if out.strip() else ""})  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
    return results


def kill_probes(n: int, home: Path, rng: random.Random) -> list[dict]:
    """``kill -9`` a small replay job at a random moment, resume it, compare with an uninterrupted run."""
    work = home / "kills"
    work.mkdir()
    (work / "small.toml").write_text(SMALL_JOB)
    ref = dop("tune", "--batch", "small.toml", "-o", "ref.json.gz", cwd=work)
    assert ref.returncode == 0, ref.stdout + ref.stderr

    def sequence(path: Path) -> list:
        d = json.loads(gzip.decompress(path.read_bytes()))
        return [(m["scenario"], m["kernel"], sorted(m["config"].items())) for m in d["measurements"]]

    want, out = sequence(work / "ref.json.gz"), []
    env = {**os.environ, "COLUMNS": "100", "DOP_TUI_CACHE": str(work / ".cache")}
    for i in range(n):
        target = work / f"k{i}.json.gz"
        cmd = [sys.executable, "-m", "dop_tui.cli", "tune", "--batch", "small.toml", "-o", target.name]
        proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(2.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        resumed = dop("tune", "--batch", "small.toml", "--resume", target.name, cwd=work) if target.exists() else None
        if resumed is None:  # killed before the first round was written: start again, as a user would
            resumed = dop("tune", "--batch", "small.toml", "-o", target.name, cwd=work)
        same = resumed.returncode == 0 and sequence(target) == want
        out.append({"kind": "kill", "name": f"kill {i}", "rc": resumed.returncode, "same_result": same,
                    "traceback": "Traceback" in resumed.stdout + resumed.stderr})  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=6)
    p.add_argument("--out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dop-probes-"))
    seed = home / "_seed"
    seed.mkdir()
    (seed / "README.md").write_text("a user's notes\n")
    (seed / "job.toml").write_text(SMALL_JOB.replace("budget = 96", "budget = 8"))
    done = dop("tune", "--batch", "job.toml", "-o", "done.json.gz", cwd=seed)
    assert done.returncode == 0, done.stdout + done.stderr
    good = json.loads(gzip.decompress((seed / "done.json.gz").read_bytes()))
    cases = [(f"job: {n}", ["tune", "--batch", "bad.toml"], {"bad.toml": t.encode("utf-8", "surrogateescape")})
             for n, t in bad_jobs().items()]  # fmt: skip
    for n, data in bad_sessions(good).items():
        for cmd in (["show", "bad.json.gz"], ["tune", "--batch", "--resume", "bad.json.gz"],
                    ["export", "bad.json.gz", "-o", "pkg"]):  # fmt: skip
            cases.append((f"session: {n} ({cmd[0]})", cmd, {"bad.json.gz": data}))
    cases += [(f"flags: dop {' '.join(a)}", a, {}) for a in bad_command_lines()]
    results = run_probes("input", cases, home)
    results += kill_probes(args.kills, home, random.Random(args.seed))
    inputs = [r for r in results if r["kind"] == "input"]
    kills = [r for r in results if r["kind"] == "kill"]
    for r in inputs:
        if not r["clear"] or r["lost"]:
            print(f"NOT CLEAR rc={r['rc']} tb={r['traceback']} lost={r['lost']}: {r['name']}: {r['tail']}")
    for r in kills:
        if not r["same_result"]:
            print(f"KILL DIFFERS rc={r['rc']}: {r['name']}")
    summary = {
        "bad_inputs": len(inputs), "clear_errors": sum(r["clear"] for r in inputs),
        "tracebacks": sum(r["traceback"] for r in inputs), "exit_0": sum(r["rc"] == 0 for r in inputs),
        "data_lost": sum(bool(r["lost"]) for r in inputs), "kills": len(kills),
        "kills_resumed_to_the_same_result": sum(r["same_result"] for r in kills),
    }  # fmt: skip
    print(json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "probes": results}, indent=1))
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
