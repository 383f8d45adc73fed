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
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise SessionError("not a dop session (no 'format': 'dop-session')")
        version = d.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise SessionError(f"session format version {version!r} is newer than this dop-tui reads ({VERSION})")
        try:
            scenarios = {k: Scenario.from_json(v) for k, v in d.get("scenarios", {}).items()}
            measurements = [Measurement.from_json(m) for m in d.get("measurements", [])]
            rounds = d.get("rounds", [])
            if not isinstance(rounds, list) or not all(isinstance(r, dict) and "round" in r for r in rounds):
                raise ValueError("'rounds' must be a list of objects with a 'round'")
        except (TypeError, ValueError, KeyError) as exc:
            raise SessionError(f"malformed session: {exc}") from None
        return cls(d.get("job", {}), d.get("device", ""), d.get("env", {}), scenarios, measurements, rounds,
                   str(d.get("finished", "")))  # fmt: skip


def load(path: str | Path) -> Session:
    """Read a session; ``SessionError`` for a missing, unreadable, truncated, malformed or newer file."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        data = json.loads(raw)
    except FileNotFoundError:
        raise SessionError(f"no session file at {path}") from None
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionError(f"cannot read session {path}: {exc}") from None
    return Session.from_json(data)


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
