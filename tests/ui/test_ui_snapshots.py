"""Snapshots of the workbench at 120x40 (and one at 200x60), after a replay job with a steady clock.

Update with ``pytest tests/test_ui_snapshots.py --snapshot-update`` and look at every changed SVG.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from ui_support import finish, small_job, steady_clock

import dop_tui.jobrun
from dop_tui.ui.app import DopApp, make_app
from dop_tui.ui.widgets.sketch_tree import SketchTree


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DopApp:
    """A finished-when-shown replay job whose clock and file names do not depend on the machine."""
    real = dop_tui.jobrun.job_events
    monkeypatch.setattr(dop_tui.jobrun, "job_events", lambda *a, **kw: steady_clock(real(*a, **kw)))
    monkeypatch.chdir(tmp_path)
    return make_app(small_job(48, strategy="evolution"), output=Path("session.json.gz"))


def test_workbench_after_a_replay_job(app: DopApp, snap_compare) -> None:
    assert snap_compare(app, terminal_size=(120, 40), run_before=finish)


def test_workbench_large_terminal(app: DopApp, snap_compare) -> None:
    assert snap_compare(app, terminal_size=(200, 60), run_before=finish)


def test_filtered_to_a_sketch_and_a_scenario(app: DopApp, snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        app = await finish(pilot)
        tree = app.query_one(SketchTree)
        tree.focus()
        tree.move_cursor(tree._by_id["shrink/splitk/dot"])
        await pilot.press("enter")
        measured = {s.measurement.scenario for s in app.state.samples if s.measurement.kernel == "shrink/splitk/dot"}
        steps = next(i for i, key in enumerate(app.state.scenarios) if key in measured) + 1
        await pilot.press(*["right_square_bracket"] * steps)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_help_screen(app: DopApp, snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await finish(pilot)
        await pilot.press("question_mark")

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_new_job_form_with_an_error(app: DopApp, snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await finish(pilot)
        await pilot.press("n")
        await pilot.pause()
        form = pilot.app.screen
        for field in form.query(Input):
            field.cursor_blink = False
        form.query_one("#job-replay", Input).value = "sessions/h200-decode-foundation.json.gz"
        sizes = form.query_one("#job-batch-sizes", Input)
        sizes.value = "1, 8, 5000"
        sizes.focus()
        await pilot.press("enter")  # submits the form (no mouse: a hovered button would change colour)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
