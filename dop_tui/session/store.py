"""The session file: scenarios, measurements and the environment they came from, written atomically.

Format (JSON, gzip-compressed when the name ends in ``.gz``)::

    {"format": "dop-session", "version": 2, "job": {...}, "device": "NVIDIA H200",
     "env": {...}, "scenarios": {key: Scenario JSON}, "measurements": [Measurement JSON, ...],
     "rounds": [{"round": 1, "budget_used": 16, "elapsed_s": 2.1, "n_train": 40, "metrics": {...}}, ...],
     "finished": "budget"}

Version 1 (no rounds) still reads. ``finished`` is empty while a job runs or after it was killed.

Writes go to a temporary file in the same folder, then ``os.replace``: a crash leaves the old file whole.
A malformed, truncated or newer-version file raises ``SessionError`` naming the problem; nothing
overwrites a file that did not load.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dop_tui.measure.record import Measurement
from dop_tui.scenario import Scenario

FORMAT = "dop-session"
VERSION = 2


class SessionError(ValueError):
    """A session file that cannot be used, with the reason."""


@dataclass
class Session:
    job: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    env: dict[str, str] = field(default_factory=dict)
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # per search round: budget, time, model metrics
    finished: str = ""  # why the job ended ("budget", "stopped", "exhausted"); empty while running or killed

    def examples(self) -> list[tuple[Scenario, Measurement]]:
        """Each measurement with its scenario, in the order measured (those of scenarios the session holds)."""
        return [(self.scenarios[m.scenario], m) for m in self.measurements if m.scenario in self.scenarios]

    def add(self, scn: Scenario, measurements: list[Measurement]) -> None:
        self.scenarios.setdefault(scn.key, scn)
        self.measurements.extend(measurements)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "job": self.job,
            "device": self.device,
            "env": self.env,
            "scenarios": {k: s.to_json() for k, s in self.scenarios.items()},
            "measurements": [m.to_json() for m in self.measurements],
            "rounds": self.rounds,
            "finished": self.finished,
        }

    @classmethod
    def from_json(cls, d: Any) -> Session:
        """Validate every field; ``SessionError`` names the field (``load`` adds the file)."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise SessionError("not a dop session (no 'format': 'dop-session')")
        version = d.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SessionError(f"malformed session: 'version' must be a positive integer, got {version!r}")
        if version > VERSION:
            raise SessionError(f"session format version {version!r} is newer than this dop-tui reads ({VERSION})")
        job, device, env, finished = d.get("job", {}), d.get("device", ""), d.get("env", {}), d.get("finished", "")
        checks = (
            ("job", isinstance(job, dict)),
            ("device", isinstance(device, str)),
            ("env", isinstance(env, dict) and all(isinstance(v, str) for v in env.values())),
            ("finished", isinstance(finished, str)),
            ("scenarios", isinstance(d.get("scenarios", {}), dict)),
            ("measurements", isinstance(d.get("measurements", []), list)),
        )
        for name, ok in checks:
            if not ok:
                raise SessionError(f"malformed session: {name!r} has the wrong type ({type(d.get(name)).__name__})")
        try:
            scenarios = {}
            for k, v in d.get("scenarios", {}).items():
                if not isinstance(v, dict):
                    raise ValueError(f"scenario {k!r} must be an object")
                scenarios[k] = Scenario.from_json(v)
            measurements = []
            for i, m in enumerate(d.get("measurements", [])):
                try:
                    measurements.append(Measurement.from_json(m))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"measurement {i}: {exc}") from None
                if scenarios and measurements[-1].scenario not in scenarios:
                    raise ValueError(f"measurement {i}: unknown scenario {measurements[-1].scenario!r}")
            rounds = d.get("rounds", [])
            if not isinstance(rounds, list):
                raise ValueError("'rounds' must be a list")
            for i, r in enumerate(rounds):
                if not (isinstance(r, dict) and isinstance(r.get("round"), int)):
                    raise ValueError(f"round {i}: must be an object with an integer 'round'")
                for name in ("budget_used", "elapsed_s", "n_train"):
                    v = r.get(name, 0)
                    if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v < math.inf:
                        raise ValueError(f"round {i}: {name!r} must be a finite number >= 0, got {v!r}")
                if not isinstance(r.get("metrics") or {}, dict):
                    raise ValueError(f"round {i}: 'metrics' must be an object or null")
        except (TypeError, ValueError, KeyError) as exc:
            raise SessionError(f"malformed session: {exc}") from None
        return cls(job, device, env, scenarios, measurements, rounds, finished)


def load(path: str | Path) -> Session:
    """Read a session; ``SessionError`` for a missing, unreadable, truncated, malformed or newer file."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        data = json.loads(raw)
    except FileNotFoundError:
        raise SessionError(f"no session file at {path}") from None
    except RecursionError:
        raise SessionError(f"cannot read session {path}: nested too deeply") from None
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionError(f"cannot read session {path}: {exc}") from None
    try:
        return Session.from_json(data)
    except RecursionError:
        raise SessionError(f"{path}: malformed session: nested too deeply") from None
    except SessionError as exc:
        raise SessionError(f"{path}: {exc}") from None


def save(session: Session, path: str | Path) -> None:
    """Write ``session`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    payload = json.dumps(session.to_json(), separators=(",", ":")).encode()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a session is an ordinary file
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
