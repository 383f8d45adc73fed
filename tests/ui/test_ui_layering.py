"""The workbench stays on top: the CLI, the job runner, ``--batch`` and the UI's own aggregation never load
textual; only ``dop_tui.ui.app`` and what it imports do."""

from __future__ import annotations

import subprocess
import sys


def _textual_after(stmt: str) -> list[str]:
    code = f"import sys; {stmt}; print(' '.join(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_cli_jobrun_batch_and_the_ui_state_do_not_load_textual() -> None:
    assert _textual_after("import dop_tui.cli, dop_tui.cli_tune, dop_tui.jobrun, dop_tui.batch, dop_tui.ui.state") == []


def test_the_app_module_is_where_textual_comes_in() -> None:
    assert "textual" in _textual_after("import dop_tui.ui.app")
