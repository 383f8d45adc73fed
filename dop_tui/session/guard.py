"""Where a job records its session: checked before anything runs, never clobbering a user's file, one writer.

``check_output`` refuses (``OutputError``, a ``ValueError`` naming the path) a directory, a missing parent, a
folder it cannot write to, and an existing file, unless that file is the session being resumed or
``force`` is given. ``fresh_path`` turns a default name that is taken into ``name-2``, ``name-3``...
``SessionLock`` makes a second job that records to the same file refuse, where one would silently drop the
other's measurements: an exclusive ``<file>.lock`` holding the writer's pid (a lock whose process is gone
is taken over).
"""

from __future__ import annotations

import os
from pathlib import Path


class OutputError(ValueError):
    """A session output the job must not or cannot write, with the reason."""


def check_output(output: Path, resume: Path | None = None, force: bool = False) -> None:
    """Raise ``OutputError`` unless ``output`` can take this job's session without losing anything."""
    if output.is_dir():
        raise OutputError(f"{output} is a directory: give a session file name (-o FILE.json.gz)")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{parent} does not exist: create it or choose another -o")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write in {parent}: choose another -o")
    if output.exists():
        same = resume is not None and resume.exists() and output.resolve() == resume.resolve()
        if not (same or force):
            raise OutputError(f"{output} already exists: choose another -o, continue it with --resume {output}, "
                              "or --force to replace it")  # fmt: skip
        if not os.access(output, os.W_OK):
            raise OutputError(f"{output} is read-only")


def fresh_path(path: Path) -> Path:
    """``path`` if free, else the first free ``stem-N`` beside it (a default name never clobbers a file)."""
    if not path.exists():
        return path
    name = path.name
    base, suffix = (name[: -len(".session.json.gz")], ".session.json.gz") if name.endswith(".session.json.gz") else (
        (path.stem, path.suffix))  # fmt: skip
    n = 2
    while (candidate := path.with_name(f"{base}-{n}{suffix}")).exists():
        n += 1
    return candidate


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SessionLock:
    """``with SessionLock(path):`` holds ``path.lock`` for this process; ``OutputError`` if another live job
    holds it."""

    def __init__(self, path: Path) -> None:
        self.lock = path.with_name(path.name + ".lock")
        self.held = False

    def __enter__(self) -> SessionLock:
        for _ in range(2):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and _alive(pid):
                    raise OutputError(f"another job (pid {pid}) is recording to {self.lock.with_suffix('')}; "
                                      f"wait for it or choose another -o") from None  # fmt: skip
                self.lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.held = True
            return self
        raise OutputError(f"cannot take the lock {self.lock}")

    def __exit__(self, *exc: object) -> None:
        if self.held:
            self.lock.unlink(missing_ok=True)
            self.held = False
