"""Running a tuning job: open the runner it names, run the loop, record the session after every round.

One function, ``job_events``, serves both consumers of the event stream: ``--batch`` (``dop_tui.batch``)
and the workbench (``dop_tui.ui``). It never imports textual.
"""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dop_tui.job import Job, JobError, job_from_mapping, load_job
from dop_tui.measure.backends import open_runner
from dop_tui.scenario import scenario_label
from dop_tui.search.events import Event
from dop_tui.session.guard import SessionLock, check_output
from dop_tui.session.recorder import Recorder
from dop_tui.session.store import Session, SessionError, load


def _bundled_dir() -> Path:
    """The bundled jobs and sessions: ``dop_tui.sessions``, which is the checkout's top-level ``sessions/``
    (through the same package-path extension as ``kernels/``) or the installed wheel's copy."""
    return Path(str(importlib.resources.files("dop_tui.sessions").joinpath("README.md"))).parent


SESSIONS_DIR = _bundled_dir()
DEFAULT_REPLAY_JOB = SESSIONS_DIR / "replay-h200.toml"


def bundled_job(name: str) -> Path | None:
    """A bundled job named like ``replay-h200`` or ``replay-h200.toml``, if there is one."""
    path = SESSIONS_DIR / (name if name.endswith(".toml") else f"{name}.toml")
    return path if "/" not in name and path.is_file() else None


def default_replay_job() -> Job:
    """The bundled H200 dataset in replay: what a machine without a GPU opens."""
    return load_job(DEFAULT_REPLAY_JOB)


def resume_job(path: str | Path) -> tuple[Job, Session]:
    """The job and the measurements of a session written by an earlier run; ``SessionError`` if it is not one."""
    session = load(path)
    if "ops" not in session.job:
        raise SessionError(f"{path} was not written by a tuning job (it has no job to resume)")
    try:
        return job_from_mapping(session.job, source=str(path)), session
    except JobError as exc:
        raise SessionError(f"{path}: its job is invalid: {exc}") from None


def _model(job: Job) -> Any:
    """The job's cost model: warm-started when the job names a session or saved model. A replay job also
    learns from screening-pass times, which is what a replayed dataset mostly answers with."""
    from dop_tui.cost.model import CostModel
    from dop_tui.measure.calibrate import device_spec

    screening = job.backend == "replay"
    if not job.warm_start:
        return CostModel(seed=job.seed, screening=screening)
    path = job.resolve(job.warm_start)
    if not path.exists():
        raise JobError(f"warm_start: no file at {path}")
    try:
        session = load(path)
    except SessionError:  # not a session: a model saved by CostModel.save
        try:
            return CostModel.load(path)
        except (OSError, ValueError, KeyError) as exc:
            raise JobError(f"warm_start: {path} is neither a session nor a saved cost model ({exc})") from None
    device = device_spec(session.device)
    return CostModel.warm_started(session.examples(), seed=job.seed, screening=screening, device=device)


SCENARIO_KEYS = (
    "ops", "model", "projections", "shapes", "ranks", "dtypes", "batch_sizes", "workloads", "prefill_segments",
    "prefill_tokens",
)  # fmt: skip


def job_events(
    job: Job | None, *, output: Path | None, resume: Path | None = None, controls: Any = None, force: bool = False
) -> Iterator[Event]:
    """Run ``job`` (or the job of the session ``resume``) and yield its events; the session is written to
    ``output`` (default: the resumed file) after every round. ``JobError``/``SessionError`` for bad input;
    ``OutputError`` (``session.guard``) before anything runs when ``output`` must not be written (it exists and
    is not the resumed session, unless ``force``; another job records to it; no such folder)."""
    prior = Session()
    if resume is not None:
        resumed, prior = resume_job(resume)
        if job is not None:
            mine, theirs = job.to_mapping(), resumed.to_mapping()
            differ = [k for k in SCENARIO_KEYS if mine.get(k) != theirs.get(k)]
            if differ:
                raise JobError(f"--resume {resume} is another job's session (its {', '.join(differ)} differ from "
                               f"{job.source or 'this job'}'s): resume it alone, or give -o a new file")  # fmt: skip
        job = job or resumed
        output = output or resume
    if job is None:
        raise JobError("no job: give a job file or a session to resume")
    if output is not None:
        check_output(output, resume, force)
    lock = SessionLock(output) if output is not None else contextlib.nullcontext()
    with lock:
        yield from _run(job, output, prior, controls)


def _run(job: Job, output: Path | None, prior: Session, controls: Any) -> Iterator[Event]:
    from dop_tui.search.loop import SearchControls, tune

    scenarios = job.scenarios()
    if job.sketches:
        controls = controls or SearchControls()
        controls.only = frozenset(job.sketches)
    session = Session(job=job.to_mapping(), device=prior.device, env=prior.env, measurements=list(prior.measurements),
                      rounds=list(prior.rounds))  # fmt: skip
    recorder = Recorder(session, {s.key: s for s in scenarios}, output)
    start_round = max((r["round"] for r in prior.rounds), default=-1) + 1 if prior.rounds else None
    recorded = [load(p) for p in job.replay_paths()] if job.backend == "replay" else []
    if recorded:
        have = {m.scenario for r in recorded for m in r.measurements}
        missing = [s for s in scenarios if s.key not in have]
        if missing:
            names = ", ".join(scenario_label(s.key, short=True) for s in missing[:4])
            more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
            raise JobError(f"replay: {len(missing)} of the job's {len(scenarios)} scenarios were never measured in "
                           f"{job.replay_label()}: {names}{more}; a replay answers only what was recorded")  # fmt: skip
    opened = open_runner(
        job.backend,
        seed=job.seed,
        replay=[m for r in recorded for m in r.measurements],
        replay_label=job.replay_label(),
        replay_device=next((r.device for r in recorded if r.device), ""),
        do_bench="baselines",
        ray={"address": job.ray_address, "measure": job.ray_measure, "workers": job.ray_workers},
    )  # a search needs graph times only
    with opened as (runner, label, device):
        model = _model(job)  # after the runner: a GPU job without a GPU fails before any training
        events = tune(scenarios, runner, budget=job.budget, strategy=job.strategy, seed=job.seed, model=model,
                      prior=tuple(prior.measurements), controls=controls, job=job.to_mapping(), runner_label=label,
                      device=device, start_round=start_round,
                      elapsed_before=prior.rounds[-1].get("elapsed_s", 0.0) if prior.rounds else 0.0)  # fmt: skip
        for ev in events:
            recorder(ev)
            yield ev
