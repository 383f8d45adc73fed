"""Where the checkout's folders are, for tests in any subfolder of tests/."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "sessions"
