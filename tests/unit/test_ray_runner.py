"""The Ray runner on a local cluster with the Triton interpreter behind it: the same answers as the interpreter,
a lost worker's requests measured elsewhere, a loopback-only cluster, and a whole job with backend = "ray"."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from dop_tui.job import JobError, job_from_mapping
from dop_tui.measure.ray_runner import RayRunner
from dop_tui.measure.runners import InterpretRunner
from dop_tui.scenario import make_scenario
from dop_tui.session.store import load
from dop_tui.space import BASELINES, sample_many, sketches_for


def _items():
    rng = random.Random(0)
    scns = [make_scenario(op, 64, (32,), 4, "fp32", lens) for op in ("shrink", "expand") for lens in ([2, 1], [3])]
    return [
        (s, [(c.sketch, c.params) for sk in sketches_for(s.op) for c in sample_many(sk.id, s, 1, rng)]
         + [(b.id, {}) for b in BASELINES if b.op == s.op and b.id.endswith("/torch")])
        for s in scns
    ]  # fmt: skip


def _listening() -> set[tuple[str, int]]:
    """(hex address, port) of every listening TCP socket of this host."""
    out = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(name).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                addr, port = fields[1].rsplit(":", 1)
                out.add((addr, int(port, 16)))
    return out


def _loopback(hex_addr: str) -> bool:
    if len(hex_addr) == 8:  # IPv4, little-endian: 127.x.x.x ends with 7F
        return hex_addr.endswith("7F")
    return hex_addr in ("00000000000000000000000001000000", "0000000000000000FFFF00000100007F")


def test_a_local_cluster_answers_as_the_interpreter_and_listens_on_loopback_only():
    items = _items()
    before = _listening()
    with RayRunner("local", measure="interpret", num_cpus=3) as runner:
        opened = _listening() - before
        got = dict(runner.measure_round(items))
        loads = runner.loads()
    assert opened and all(_loopback(a) for a, _ in opened), sorted(opened)
    ref = InterpretRunner(0)
    for i, (scn, reqs) in enumerate(items):
        assert [(m.kernel, m.status) for m in got[i]] == [(m.kernel, m.status) for m in ref.measure(scn, reqs)]
        assert {m.env["node"] for m in got[i]} == {"127.0.0.1"}
    assert len(loads) == 2 and all(d.device.startswith("127.0.0.1/cpu") for d in loads)
    assert sum(d.measured for d in loads) == sum(len(r) for _, r in items)


def test_a_lost_worker_costs_its_chunk_a_retry_elsewhere_not_the_round():
    import ray

    items = _items()[:2]
    with RayRunner("local", measure="interpret", num_cpus=3, chunk=2) as runner:
        ray.kill(runner._actors[0].handle)  # as if its node went away
        got = dict(runner.measure_round(items))
        loads = runner.loads()
    assert all(m.status == "ok" for ms in got.values() for m in ms)
    assert loads[0].measured == 0 and loads[1].measured == sum(len(r) for _, r in items)


def test_ray_keys_belong_to_the_ray_backend():
    with pytest.raises(JobError, match="only for backend"):
        job_from_mapping({"ops": ["shrink"], "backend": "interpret", "ray_address": "auto"})
    with pytest.raises(JobError, match="ray_measure"):
        job_from_mapping({"ops": ["shrink"], "backend": "ray", "ray_measure": "tpu"})
    job = job_from_mapping({"ops": ["shrink"], "backend": "ray", "ray_address": "10.0.0.5:6379"})
    assert job.to_mapping()["ray_address"] == "10.0.0.5:6379"


def test_a_job_on_a_local_ray_cluster(tmp_path):
    job = tmp_path / "ray.toml"
    job.write_text(
        'name = "ray probe"\nops = ["shrink", "expand"]\nshapes = [[64, 32]]\nranks = [4]\ndtypes = ["fp32"]\n'
        'batch_sizes = [2]\nworkloads = ["distinct", "identical"]\nbackend = "ray"\nray_measure = "interpret"\n'
        "ray_workers = 2\nbudget = 12\nseed = 1\n"
    )
    out = tmp_path / "ray.json.gz"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"COLUMNS": "160"}
    proc = subprocess.run([sys.executable, "-m", "dop_tui.cli", "tune", "--batch", str(job), "-o", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ray (local, 2 workers)" in proc.stdout
    sess = load(out)
    search = [m for m in sess.measurements if "/baseline/" not in m.kernel]
    assert len(search) == 12 and all(m.status == "ok" for m in sess.measurements)
    assert {m.env.get("node") for m in sess.measurements} == {"127.0.0.1"}
    assert json.loads(json.dumps(sess.job))["ray_measure"] == "interpret"
