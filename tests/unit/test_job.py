"""Tuning jobs: TOML in, validated scenarios out; every bad key is named."""

from pathlib import Path

import pytest
from paths import ROOT

from dop_tui.job import Job, JobError, job_from_mapping, load_job
from dop_tui.jobrun import DEFAULT_REPLAY_JOB, default_replay_job
from dop_tui.session.store import load


def test_the_bundled_replay_job_covers_the_recorded_rank16_decode_family():
    job = default_replay_job()
    keys = {s.key for s in job.scenarios()}
    # 9 (op, shape) x (1 layout at bs 1 + 4 workloads x 4 batch sizes): 4 shrink and expand shapes, 5 fused
    assert len(keys) == 9 * 17
    covered: set[str] = set()
    for path in job.replay_paths():  # together they cover the whole family, all measured by the GPU runner
        recorded = load(path)
        covered |= set(recorded.scenarios)
        assert not any(m.screening for m in recorded.measurements)
    assert keys <= covered


def test_equal_computations_are_tuned_once():
    job = job_from_mapping({"ops": ["shrink", "expand"], "projections": ["q", "gate", "down"], "batch_sizes": [1, 2]})
    scns = job.scenarios()
    shrinks = {(s.h_in, s.seg_lens) for s in scns if s.op == "shrink"}
    expands = {(s.h_outs, s.seg_lens) for s in scns if s.op == "expand"}
    # shrink: h_in 4096 (q = gate) and 11008; expand: h_out 4096 (q = down) and 11008; bs 1 and 2 give 1 and 2
    # layouts (uniform(2) = distinct(2))
    assert len(shrinks) == len([s for s in scns if s.op == "shrink"]) == 2 * 3
    assert len(expands) == len([s for s in scns if s.op == "expand"]) == 2 * 3


def test_per_op_projections_and_explicit_shapes():
    job = job_from_mapping({"ops": ["fused"], "projections": {"fused": ["down"]}, "batch_sizes": [4],
                            "workloads": ["identical"]})  # fmt: skip
    (s,) = job.scenarios()
    assert (s.h_in, s.h_outs, s.seg_lens) == (11008, (4096,), (4,))
    job = job_from_mapping({"ops": ["shrink"], "shapes": [[512, 384]], "batch_sizes": [2], "workloads": ["distinct"]})
    assert [(s.h_in, s.h_outs) for s in job.scenarios()] == [(512, (384,))]


@pytest.mark.parametrize(
    ("table", "names"),
    [
        ({}, "ops"),
        ({"ops": ["shrnk"]}, "shrnk"),
        ({"ops": ["shrink"], "ranks": [0]}, "ranks"),
        ({"ops": ["shrink"], "ranks": "16"}, "ranks"),
        ({"ops": ["shrink"], "backend": "tpu"}, "backend"),
        ({"ops": ["shrink"], "backend": "replay"}, "replay"),
        ({"ops": ["shrink"], "budget": 0}, "budget"),
        ({"ops": ["shrink"], "model": "llama9"}, "llama9"),
        ({"ops": ["shrink"], "projections": ["qq"]}, "qq"),
        ({"ops": ["shrink"], "strategy": "annealing"}, "strategy"),
        ({"ops": ["shrink"], "colour": "red"}, "colour"),
        ({"ops": ["shrink"], "shapes": [[4096]]}, "shapes"),
        ({"ops": ["shrink"], "batch_sizes": [8, 99999]}, "batch_sizes"),
        ({"ops": ["shrink"], "sketches": ["shrink/nope/x"]}, "sketches"),
        ({"ops": ["shrink"], "sketches": ["expand/vllm/triton"]}, "sketches"),
    ],
)
def test_a_bad_job_names_its_key(table, names):
    with pytest.raises(JobError, match=names):
        job_from_mapping(table)


def test_job_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("ops = [shrink")
    with pytest.raises(JobError, match="not valid TOML"):
        load_job(bad)
    with pytest.raises(JobError, match="no job file"):
        load_job(tmp_path / "missing.toml")
    good = tmp_path / "j.toml"
    good.write_text('ops = ["expand"]\nbackend = "replay"\nreplay = "data.json.gz"\nbudget = 7\n')
    job = load_job(good)
    assert job.replay_paths() == [tmp_path / "data.json.gz"] and job.budget == 7
    assert job.with_overrides(budget=9, seed=None).budget == 9
    back = job_from_mapping(job.to_mapping())  # what a session stores reads back as the same job, paths resolved
    assert back.replay_paths() == job.replay_paths() and back.scenarios() == job.scenarios()
    assert back.to_mapping()["replay"] == str(tmp_path / "data.json.gz")  # one file stays a string
    two = tmp_path / "two.toml"
    two.write_text('ops = ["expand"]\nbackend = "replay"\nreplay = ["a.json.gz", "sub/b.json.gz"]\n')
    several = load_job(two)
    assert several.replay_paths() == [tmp_path / "a.json.gz", tmp_path / "sub" / "b.json.gz"]
    assert several.replay_label() == "replay of a.json.gz + b.json.gz"
    assert job_from_mapping(several.to_mapping()).replay_paths() == several.replay_paths()
    for bad in ("replay = []", "replay = [1]", 'replay = ""', "replay = 3"):
        two.write_text(f'ops = ["expand"]\nbackend = "replay"\n{bad}\n')
        with pytest.raises(JobError, match="replay"):
            load_job(two)
    assert (back.budget, back.backend, back.strategy) == (job.budget, job.backend, job.strategy)
    assert DEFAULT_REPLAY_JOB.exists()


def test_job_defaults_are_valid():
    assert Job(ops=("shrink",)).scenarios()


def test_a_job_sketch_list_restricts_its_ops_only():
    from dop_tui.search.loop import SearchControls
    from dop_tui.space import sketches_for

    job = load_job(ROOT / "sessions" / "h200-vllm-configs.toml")
    assert job.sketches == ("shrink/vllm/triton", "expand/vllm/triton") and job_from_mapping(job.to_mapping()) == job
    controls = SearchControls(only=frozenset(job.sketches))
    assert controls.sketches("shrink") == ("shrink/vllm/triton",) and controls.sketches("expand") == (
        "expand/vllm/triton",
    )
    # an op the list does not name keeps every sketch
    assert controls.sketches("fused") == tuple(s.id for s in sketches_for("fused"))


def test_a_job_nested_too_deeply_is_a_job_error(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text('ops = ["shrink"]\nname = ' + "[" * 500 + "]" * 500 + "\n")
    with pytest.raises(JobError, match="too deeply"):
        load_job(path)


def test_a_prefill_job_tunes_seeded_prompt_batches():
    job = load_job(ROOT / "sessions" / "h200-7b-prefill.toml")
    scns = job.scenarios()
    # five shapes x three prompt batches; shrink shared by q and gate (h_in 4096), expand by q and down (h_out 4096)
    ops = [s.op for s in scns]
    assert (ops.count("fused"), ops.count("shrink"), ops.count("expand")) == (5 * 3, 4 * 3, 4 * 3)
    assert {s.workload for s in scns} == {"prefill"}
    assert sorted({s.num_segments for s in scns}) == [2, 4, 8]
    assert all(128 <= n <= 2048 for s in scns for n in s.seg_lens)
    assert [s.seg_lens for s in scns] == [
        s.seg_lens for s in load_job(ROOT / "sessions" / "h200-7b-prefill.toml").scenarios()
    ]
    again = job_from_mapping(job.to_mapping())
    assert (again.prefill_segments, again.prefill_tokens) == ((2, 4, 8), (128, 2048))
    mixed = Job(ops=("fused",), batch_sizes=(8,), prefill_segments=(2,))
    assert [s.workload for s in mixed.scenarios()][-1] == "prefill" and len(mixed.scenarios()) == 5


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"batch_sizes": []}, "prefill_segments for a prefill-only job"),
        ({"prefill_segments": [0]}, "prefill_segments"),
        ({"prefill_segments": [2], "prefill_tokens": [300, 100]}, "prefill_tokens"),
        ({"prefill_segments": [2], "prefill_tokens": [128]}, "prefill_tokens"),
        ({"prefill_segments": ["2"]}, "prefill_segments"),
    ],
)
def test_bad_prefill_keys_are_named(table, needle):
    with pytest.raises(JobError, match=needle):
        job_from_mapping({"ops": ["fused"], **table})


def test_a_moved_session_finds_its_warm_start_and_replay_files_beside_it(tmp_path):
    """A session records absolute paths; resumed from another folder (a checkout elsewhere), a missing one is
    taken by its name beside the session, and an existing one is kept."""
    from dop_tui.jobrun import resume_job
    from dop_tui.session.store import Session, save

    (tmp_path / "foundation.json.gz").write_bytes(b"")
    (tmp_path / "data.json.gz").write_bytes(b"")
    job = {"name": "moved", "ops": ["shrink"], "model": "llama2-7b", "projections": ["q"], "ranks": [16],
           "dtypes": ["bf16"], "batch_sizes": [1], "workloads": ["distinct"], "backend": "replay", "budget": 8,
           "seed": 0, "strategy": "evolution", "replay": "/elsewhere/sessions/data.json.gz",
           "warm_start": "/elsewhere/sessions/foundation.json.gz"}  # fmt: skip
    save(Session(job=job), tmp_path / "moved.json.gz")
    resumed, _ = resume_job(tmp_path / "moved.json.gz")
    assert resumed.resolve(resumed.warm_start) == tmp_path / "foundation.json.gz"
    assert resumed.replay_paths() == [tmp_path / "data.json.gz"]
    assert resumed.to_mapping()["warm_start"] == str((tmp_path / "foundation.json.gz").resolve())
    kept = str(tmp_path / "data.json.gz")  # an absolute path that exists is not redirected
    assert resumed.resolve(kept) == tmp_path / "data.json.gz"
    missing = "/elsewhere/sessions/nowhere.json.gz"  # nor one with no file beside the session either
    assert resumed.resolve(missing) == Path(missing)


def test_an_older_session_with_relative_paths_finds_them(tmp_path, monkeypatch):
    """Sessions written before paths were recorded absolute hold them relative to where they ran
    ("sessions/foundation.json.gz"). Copied into another folder and resumed from the checkout, the path is
    taken as named from the working folder; with the file beside the session, that one."""
    from dop_tui.jobrun import resume_job
    from dop_tui.session.store import Session, save

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sessions").mkdir()
    (tmp_path / "sessions" / "foundation.json.gz").write_bytes(b"")
    (tmp_path / "out").mkdir()
    job = {"name": "old", "ops": ["shrink"], "model": "llama2-7b", "projections": ["q"], "ranks": [16],
           "dtypes": ["bf16"], "batch_sizes": [1], "workloads": ["distinct"], "backend": "gpu", "budget": 8,
           "seed": 0, "strategy": "evolution", "warm_start": "sessions/foundation.json.gz"}  # fmt: skip
    save(Session(job=job), tmp_path / "out" / "old.json.gz")
    resumed, _ = resume_job(tmp_path / "out" / "old.json.gz")
    assert resumed.resolve(resumed.warm_start) == Path("sessions/foundation.json.gz")
    (tmp_path / "out" / "foundation.json.gz").write_bytes(b"")
    assert resumed.resolve(resumed.warm_start) == tmp_path / "out" / "foundation.json.gz"
    assert resumed.resolve("sessions/nowhere.json.gz") == tmp_path / "out" / "sessions/nowhere.json.gz"


@pytest.mark.parametrize("path", sorted((ROOT / "sessions").glob("*.toml")), ids=lambda p: p.name)
def test_every_bundled_job_loads_and_finds_its_files(path):
    """A bundled job parses, names at least one scenario, and the warm start and replay files it names exist."""
    job = load_job(path)
    assert job.scenarios()
    named = ([job.warm_start] if job.warm_start else []) + list(job.replay)
    missing = [name for name in named if not job.resolve(name).exists()]
    assert not missing, f"{path.name} names files that are not there: {missing}"
