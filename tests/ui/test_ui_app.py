"""Pilot tests of the workbench, driven by the replay runner through ``job_events`` (small budgets)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from ui_support import REPLAY, finish, small_job, until

from dop_tui.session.store import load
from dop_tui.space import BASELINES
from dop_tui.ui import app as app_module
from dop_tui.ui.app import DopApp, make_app
from dop_tui.ui.messages import EventsReady, RunEnded
from dop_tui.ui.screens.gpu_offer import GpuOfferScreen
from dop_tui.ui.screens.help import HelpScreen
from dop_tui.ui.screens.new_job import NewJobScreen
from dop_tui.ui.screens.open_session import OpenScreen
from dop_tui.ui.screens.save_session import SaveScreen
from dop_tui.ui.state import Scope
from dop_tui.ui.widgets.cost_chart import CostChart
from dop_tui.ui.widgets.event_log import EventLog
from dop_tui.ui.widgets.fitness_chart import FitnessChart
from dop_tui.ui.widgets.job_header import JobHeader
from dop_tui.ui.widgets.leaderboard import Leaderboard
from dop_tui.ui.widgets.roofline_chart import RooflineChart
from dop_tui.ui.widgets.sketch_tree import SketchTree

SIZE = (120, 40)
NAMES = {b.name for b in BASELINES}  # every baseline is in the bundled dataset


def _app(tmp_path: Path, budget: int = 48, autostart: bool = True, **overrides: object) -> DopApp:
    return make_app(small_job(budget, **overrides), autostart=autostart, output=tmp_path / "session.json.gz")


def _plain(widget) -> str:
    return str(widget.render())


async def test_a_replay_job_fills_every_pane_through_coalesced_batches(tmp_path: Path) -> None:
    app = _app(tmp_path, strategy="evolution")
    batches: list[EventsReady] = []
    handle = app.on_events_ready
    app.on_events_ready = lambda msg: (batches.append(msg), handle(msg))  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        st = app.state
        assert st.state == "finished" and st.finish_reason == "budget" and app.notice == "finished (budget)"
        # the worker queued every event; the UI drained them in fewer, coalesced batches
        assert len(batches) < len(st.samples) and not app.current.queue
        assert EventsReady(1).can_replace(EventsReady(1)) and not EventsReady(1).can_replace(EventsReady(2))
        # header: the job, the replay source, progress through the budget
        header = app.query_one(JobHeader)
        title = _plain(header.query_one("#header-title"))
        assert "REPLAY" in title and "h200-decode-foundation.json.gz" in title and "small replay" in title
        assert "48/48 ·" in _plain(header.query_one("#header-stats"))
        # sketch tree: the job's ops only, each node with measurements, best and population share
        tree = app.query_one(SketchTree)
        assert {"", "shrink", "expand", "shrink/splitk/dot", "expand/walk/segments"} <= set(tree.node_ids)
        assert "fused" not in tree.node_ids
        stats = st.node_stats("shrink")
        assert stats.measured > 0 and stats.best_speedup and stats.share
        assert f"{stats.measured}" in str(tree._by_id["shrink"].label)
        # fitness, cost model, roofline: views of the events, drawn by plotext
        fitness = app.query_one(FitnessChart).view
        assert fitness.rounds == [1] == fitness.predicted_rounds and set(fitness.baselines) == NAMES
        cost = app.query_one(CostChart).view
        assert cost.round == 1 and len(cost.predicted) == len(cost.measured) > 0
        roof = app.query_one(RooflineChart).view
        searched = {s.measurement.scenario for s in st.samples if s.round >= 1}
        assert roof.candidates and set(roof.baselines) == NAMES
        assert len(roof.best) == len(roof.launch_caps) == len(searched) > 1
        for chart in (FitnessChart, CostChart, RooflineChart):
            assert "┤" in _plain(app.query_one(chart))
        # leaderboard: the best of each scenario against every baseline, the highlighted row in detail
        board = app.query_one(Leaderboard)
        assert len(board.rows) == len(searched)
        assert all(set(r.speedup) == NAMES for r in board.rows)
        assert f"{board.rows[0].us:.2f} us" in _plain(app.query_one("#leaderboard-detail"))
        # log and session file
        assert {"job", "round", "best"} <= {e.kind for e in st.log}
        assert any("finished (budget)" in e.text for e in st.log)
        assert len(load(tmp_path / "session.json.gz").measurements) == len(st.samples)


async def test_filters_zoom_log_kinds_and_save(tmp_path: Path) -> None:
    app = _app(tmp_path, budget=16)
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        board = app.query_one(Leaderboard)
        # enter on a tree node filters every pane to it; escape clears
        tree = app.query_one(SketchTree)
        tree.focus()
        everything = list(board.rows)
        op = everything[0].kernel.split("/")[0]
        tree.move_cursor(tree._by_id[op])
        await pilot.press("enter")
        assert app.scope == Scope(op, "")
        assert board.rows == [r for r in everything if r.kernel.startswith(op + "/")]
        assert app.query_one(FitnessChart).view == app.state.fitness_view(Scope(op))
        assert len(app.query_one(RooflineChart).view.best) == len(board.rows)
        assert f"Population fitness · {op}" in str(app.query_one("#fitness-pane").border_title)
        await pilot.press("escape")
        assert app.scope == Scope() and board.rows == everything
        # ] and [ step the scenario picker; one scenario lists its candidates, fastest first
        first = app.state.scenarios[0]
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert app.scope.scenario == first and {r.scenario for r in board.rows} == {first}
        assert [r.measurement.speed_key for r in board.rows] == sorted(r.measurement.speed_key for r in board.rows)
        assert app.state.node_stats("", first).best_us == board.rows[0].us
        await pilot.press("left_square_bracket", "left_square_bracket")
        await pilot.pause()
        assert app.scope.scenario == app.state.scenarios[-1]
        # z maximises the focused pane and restores it
        tree.focus()
        await pilot.press("z")
        assert app.screen.maximized is app.query_one("#tree-pane")
        await pilot.press("z")
        assert app.screen.maximized is None
        # f cycles the log through the kinds of entry
        log = app.query_one(EventLog)
        await pilot.press("f")
        assert log.kind == "job" and "f: job" in str(app.query_one("#log-pane").border_subtitle)
        assert log.shown == len(app.state.log_entries("job")) < len(app.state.log)
        await pilot.press(*"fffff")
        assert log.kind == ""
        # ctrl+s writes a copy of the recorded session; a bad target is reported in the dialog
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SaveScreen)
        dialog.query_one("#save-path").value = str(tmp_path)  # a folder
        await pilot.click("#save-ok")
        assert app.screen is dialog and _plain(dialog.query_one("#save-error"))
        mine = tmp_path / "notes.txt"
        mine.write_text("mine")
        dialog.query_one("#save-path").value = str(mine)  # a file of the user's: never overwritten
        await pilot.pause(0.25)
        await pilot.click("#save-ok")
        assert app.screen is dialog and "already exists" in _plain(dialog.query_one("#save-error"))
        assert mine.read_text() == "mine"
        target = tmp_path / "kept.json.gz"
        dialog.query_one("#save-path").value = str(target)
        await pilot.pause(0.25)  # a button ignores a second click within 0.2 s
        await pilot.click("#save-ok")
        assert not isinstance(app.screen, SaveScreen)
        assert len(load(target).measurements) == len(app.state.samples)
        assert any(f"saved to {target}" in e.text for e in app.state.log)


async def test_start_key_runs_a_job_shown_before_it_starts(tmp_path: Path) -> None:
    app = _app(tmp_path, budget=16, autostart=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.current is None and "press s" in app.notice
        assert "expand/tile/dot" in app.query_one(SketchTree).node_ids and len(app.state.scenarios) == 8
        await pilot.press("s")
        await finish(pilot)
        assert app.state.state == "finished"


async def test_pause_holds_the_loop_and_resume_lets_it_finish(tmp_path: Path, gate: threading.Event) -> None:
    app = _app(tmp_path, budget=64, autostart=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", "p")
        gate.set()
        await until(pilot, lambda: app.current.started)
        assert app.state.state == "paused" and app.current.control.paused
        await pilot.pause(0.5)
        held = len(app.current.queue) + len(app.state.samples)
        await pilot.pause(0.5)
        assert len(app.current.queue) + len(app.state.samples) == held
        assert app.current.active and "Resume" in {b.binding.description for b in app.active_bindings.values()}
        await pilot.press("question_mark")  # keys are answered while the loop waits
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "p")
        assert not app.current.control.paused
        await finish(pilot)
        assert app.state.state == "finished" and app.state.finish_reason == "budget"


async def test_stop_ends_the_job_after_the_round(tmp_path: Path, gate: threading.Event) -> None:
    app = _app(tmp_path, budget=2000, autostart=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", "p")  # paused at its first event
        gate.set()
        await until(pilot, lambda: app.current.started)
        await pilot.press("x")
        assert app.current.control.stopping
        await finish(pilot)
        assert app.state.finish_reason == "stopped" and app.state.budget_used < 2000
        assert any("stop requested" in e.text for e in app.state.log)


async def test_pin_and_exclude_reach_the_loop(tmp_path: Path) -> None:
    app = _app(tmp_path, budget=32, autostart=False)
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(SketchTree)
        tree.focus()
        tree.move_cursor(tree._by_id["shrink/splitk/dot"])
        await pilot.press("minus")
        tree.move_cursor(tree._by_id["shrink/tile/dot"])
        await pilot.press("plus")
        assert app.excluded == {"shrink/splitk/dot"} and app.pinned == {"shrink/tile/dot"}
        assert "⊘" in str(tree._by_id["shrink/splitk/dot"].label)
        await pilot.press("s")
        await until(pilot, lambda: app.current.control.controls is not None)
        assert app.current.control.controls.excluded == {"shrink/splitk/dot"}
        assert app.current.control.controls.pinned == {"shrink/tile/dot"}
        await finish(pilot)
        searched = {s.measurement.kernel for s in app.state.samples if s.round >= 1}
        assert {k for k in searched if k.startswith("shrink/")} == {"shrink/tile/dot"}
        await pilot.press("plus")  # again: no longer pinned, in the app and in the run's controls
        assert not app.pinned and not app.current.control.controls.pinned


async def test_new_job_form_reports_bad_input_and_loses_nothing(tmp_path: Path) -> None:
    app = _app(tmp_path, budget=16)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await finish(pilot)
        before = list(app.state.samples)
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NewJobScreen) and form.query_one("#job-name").value == "small replay"
        # a field that does not parse: reported in the form, which stays open
        form.query_one("#job-ranks").value = "16, sixteen"
        await pilot.click("#job-start")
        assert app.screen is form and "ranks" in _plain(form.query_one("#job-error"))
        # a job the checks reject
        form.query_one("#job-ranks").value = "16"
        form.query_one("#job-budget").value = "0"
        await pilot.pause(0.25)
        await pilot.click("#job-start")
        assert app.screen is form and "budget" in _plain(form.query_one("#job-error"))
        # a GPU job on a machine without one: the error reaches the log, the panes keep what they showed
        form.query_one("#job-budget").value = "8"
        form.query_one("#job-backend").value = "gpu"
        await pilot.pause(0.25)
        await pilot.click("#job-start")
        await finish(pilot)
        assert any("no CUDA GPU" in e.text for e in app.state.log if e.kind == "error")
        assert app.state.samples == before and app.state.state == "finished"
        # the form comes back as it was sent; a good job starts
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert form.query_one("#job-backend").value == "gpu" and form.query_one("#job-budget").value == "8"
        form.query_one("#job-backend").value = "replay"
        form.query_one("#job-name").value = "second job"
        await pilot.click("#job-start")
        await finish(pilot)
        assert app.state.job_name == "second job" and app.state.budget == 8 and app.state.state == "finished"


async def test_open_reports_bad_files_starts_job_files_and_resumes_sessions(tmp_path: Path) -> None:
    app = _app(tmp_path, budget=16)
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        written = tmp_path / "session.json.gz"
        bad = tmp_path / "bad.json.gz"
        bad.write_bytes(b"not gzip")
        await pilot.press("o")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, OpenScreen)
        for path, expect in (
            (bad, "cannot read session"),
            (REPLAY, "not written by a tuning job"),
            (tmp_path / "missing.toml", "no job file"),
        ):
            dialog.query_one("#open-path").value = str(path)
            await pilot.pause(0.25)
            await pilot.click("#open-ok")
            assert app.screen is dialog and expect in _plain(dialog.query_one("#open-error"))
        assert app.state.state == "finished" and app.state.budget_used == 16  # nothing lost
        so_far, before = len(load(written).measurements), written.read_bytes()
        dialog.query_one("#open-path").value = str(written)
        await pilot.pause(0.25)
        await pilot.click("#open-ok")
        await finish(pilot)
        # an opened session is continued into a new file: the opened one is never written
        assert app.current.resume == written and app.current.output != written and written.read_bytes() == before
        assert len(load(app.current.output).measurements) >= so_far  # the prior, carried into the new file
        assert any(f"session so far: {so_far} measurements" in e.text for e in app.state.log)
        assert len(app.state.samples) >= 40  # the prior, then the resumed run's own measurements
        job_file = tmp_path / "job.toml"
        job_file.write_text(
            f'name = "from a file"\nops = ["expand"]\nbatch_sizes = [8]\nworkloads = ["distinct"]\n'
            f'backend = "replay"\nreplay = "{REPLAY}"\nbudget = 8\n'
        )
        await pilot.press("o")
        await pilot.pause()
        app.screen.query_one("#open-path").value = str(job_file)
        await pilot.press("enter")
        await finish(pilot)
        assert app.state.job_name == "from a file" and app.state.state == "finished"


async def test_help_lists_every_key(tmp_path: Path) -> None:
    app = _app(tmp_path, autostart=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(f"{k} {what}" for k, what in app.screen.key_rows())
        for binding in DopApp.BINDINGS:
            assert binding.description in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_without_arguments_and_without_gpu_it_replays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dop_tui.jobrun

    monkeypatch.setattr(dop_tui.measure.backends, "gpu_available", lambda: False)
    monkeypatch.setattr(dop_tui.jobrun, "default_replay_job", lambda: small_job(16))
    monkeypatch.setattr(app_module, "autosave_dir", lambda: tmp_path / "autosave")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        assert app.state.state == "finished" and app.state.runner.startswith("replay of")
        assert any("no GPU here" in e.text for e in app.state.log)
        assert list((tmp_path / "autosave").glob("small-replay-*.json.gz"))


async def test_with_a_gpu_it_offers_a_real_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dop_tui.jobrun

    monkeypatch.setattr(dop_tui.measure.backends, "gpu_available", lambda: True)
    monkeypatch.setattr(dop_tui.jobrun, "default_replay_job", lambda: small_job(16))
    app = make_app(output=tmp_path / "session.json.gz")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, GpuOfferScreen))
        await pilot.pause()
        await pilot.click("#offer-gpu")
        await pilot.pause()
        assert isinstance(app.screen, NewJobScreen) and app.screen.query_one("#job-backend").value == "gpu"
        await pilot.press("escape")
        assert app.current is None and app.job is not None and app.job.backend == "replay"


async def test_an_unreadable_session_from_the_command_line_is_shown(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json.gz"
    bad.write_bytes(b"\x1f\x8b truncated")
    app = make_app(None, bad)
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        errors = [e.text for e in app.state.log if e.kind == "error"]
        assert errors and "cannot read session" in errors[0]
        assert bad.read_bytes() == b"\x1f\x8b truncated"  # never overwritten


async def test_resume_a_session_from_the_command_line(tmp_path: Path) -> None:
    first = _app(tmp_path, budget=16)
    async with first.run_test(size=SIZE) as pilot:
        await finish(pilot)
    session = tmp_path / "session.json.gz"
    so_far = len(load(session).measurements)
    app = make_app(None, session)
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        assert app.current.output == session and app.state.state == "finished"
        assert any(f"session so far: {so_far} measurements" in e.text for e in app.state.log)
        assert app.job is not None and app.job.name == "small replay"  # what `s` starts next
        assert "-/min" in _plain(app.query_one(JobHeader).query_one("#header-stats"))  # nothing new measured


def test_the_new_job_form_reads_replay_files_comma_separated() -> None:
    from dop_tui.ui.screens.new_job import _paths

    assert _paths(" a.json.gz, my runs/b.json.gz ,") == ["a.json.gz", "my runs/b.json.gz"]
    assert _paths("  ") == []


async def test_export_and_kernel_source_from_the_workbench(tmp_path: Path) -> None:
    from dop_tui.ui.screens.export_package import ExportScreen
    from dop_tui.ui.screens.kernel_source import KernelScreen

    app = _app(tmp_path, budget=16)
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        mine = tmp_path / "mine"
        mine.mkdir()
        (mine / "notes.txt").write_text("keep")
        await pilot.press("e")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportScreen)
        dialog.query_one("#export-path").value = str(mine)
        dialog.query_one("#export-name").value = "wb_kernels"
        await pilot.click("#export-ok")
        await pilot.pause()
        assert app.screen is dialog and "not an export" in _plain(dialog.query_one("#export-error"))
        assert [p.name for p in mine.iterdir()] == ["notes.txt"]  # nothing of the user's touched
        path = dialog.query_one("#export-path")
        path.value = str(tmp_path / "pkg")
        path.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, ExportScreen), _plain(dialog.query_one("#export-error"))
        assert (tmp_path / "pkg" / "wb_kernels" / "dispatch.json").is_file()
        assert any("exported package wb_kernels" in e.text for e in app.state.log)

        board = app.query_one(Leaderboard)
        app.query_one("#leaderboard-table").focus()
        await pilot.press("down")  # the detail line follows the cursor
        await pilot.pause()
        row = board.highlighted()
        assert row is board.rows[1] and f"{row.us:.2f} us" in _plain(app.query_one("#leaderboard-detail"))
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, KernelScreen)
        assert "@triton.jit" in app.screen.source and row.kernel in app.screen.title_text
        await pilot.press("escape")
        assert not isinstance(app.screen, KernelScreen)


async def test_an_80x24_terminal_keeps_leaderboard_rows_and_every_dialog_reachable(tmp_path: Path) -> None:
    """At 80x24 the charts shrink so the leaderboard shows rows with their times, the new-job form scrolls to
    its Start button, and the open dialog's tree leaves its buttons on screen."""
    app = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await finish(pilot)
        assert app.screen.has_class("-short")
        table = app.query_one("#leaderboard-table")
        assert table.row_count > 0 and table.size.height >= 3  # a header and at least two rows
        assert {"us", "vs best"} <= {str(c.label) for c in table.columns.values()}
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NewJobScreen)
        start = form.query_one("#job-start")
        form.set_focus(start)
        await until(pilot, lambda: start.region.height > 0 and start.region.bottom <= 24, timeout=5)  # scrolled in
        await pilot.press("escape")
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, OpenScreen)
        assert app.screen.query_one("#open-ok").region.bottom <= 24
    tall = _app(tmp_path, autostart=False)
    async with tall.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not tall.screen.has_class("-short")


async def test_charts_name_their_units_mark_baselines_by_shape_and_label_the_roofs(tmp_path: Path) -> None:
    from dop_tui.ui.widgets.chart import BASELINE_STYLE, baseline_style, times_ticks

    assert len({mark for _, mark in BASELINE_STYLE.values()}) == len(BASELINE_STYLE)  # one shape per baseline
    assert baseline_style("new-system") == ("white", "n")
    assert times_ticks(1.0, 2.5, 4) == ([1.0, 1.5, 2.0, 2.5], ["1.00x", "1.50x", "2.00x", "2.50x"])
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        roof = _plain(app.query_one(RooflineChart))
        assert "TFLOP/s" in roof and "TB/s" in roof and "FLOP per byte" in roof
        legend = str(app.query_one("#roofline-pane").border_subtitle)
        assert all(baseline_style(n)[1] in legend for n in app.state.baseline_names)
        fitness = _plain(app.query_one(FitnessChart))
        assert "round" in fitness and "x┤" in fitness  # speedup ticks carry their unit
        assert "predicted score" in _plain(app.query_one(CostChart))


async def test_the_new_job_form_makes_prefill_jobs(tmp_path: Path) -> None:
    from dop_tui.job import job_from_mapping

    app = _app(tmp_path, autostart=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NewJobScreen) and form.query_one("#job-prefill").value == ""
        assert "prefill_segments" not in form.mapping()  # no prompts: a decode job as before
        form.query_one("#job-batch-sizes").value = ""
        form.query_one("#job-prefill").value = "2, 8"
        form.query_one("#job-prefill-tokens").value = "256 1024"
        job = job_from_mapping(form.mapping())
        assert (job.batch_sizes, job.prefill_segments, job.prefill_tokens) == ((), (2, 8), (256, 1024))
        assert {s.workload for s in job.scenarios()} == {"prefill"}
        form.query_one("#job-prefill-tokens").value = "256"
        await pilot.click("#job-start")
        assert app.screen is form and "prefill_tokens" in _plain(form.query_one("#job-error"))


async def test_sketch_tree_figures_stay_in_their_columns_for_long_names(tmp_path: Path) -> None:
    from dop_tui.jobrun import default_replay_job

    # every op's sketches: the tree scrolls, and its narrower rows cannot hold walk/segments or splitk-last whole
    app = make_app(default_replay_job().with_overrides(budget=64), output=tmp_path / "s.json.gz")
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
        tree = app.query_one(SketchTree)
        rows = [(node, node.label.plain) for node in tree._by_id.values()]
        ends = {tree.guide_depth * _tree_depth(node) + (2 if node.children else 0) + len(text) for node, text in rows}
        assert len(ends) == 1, ends  # the figures end at one column whatever the name
        assert {text.split()[0] for _, text in rows} >= {"walk/segmen…", "splitk-la…"}


def _tree_depth(node) -> int:
    depth = 0
    while node.parent is not None:
        node, depth = node.parent, depth + 1
    return depth


async def test_a_run_that_ends_while_the_app_shuts_down_is_noted_quietly(tmp_path: Path) -> None:
    """The worker's RunEnded can arrive after the screens are gone (quitting as a job finishes): it is still
    taken (the run is marked inactive), and nothing is drawn."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await finish(pilot)
    run = app.current
    run.active = True
    assert not app.screen_stack
    app.on_run_ended(RunEnded(run.id))
    assert not run.active and app.notice == "finished (budget)"
