"""The dop-tui workbench: a Textual app around the tuning loop's event stream.

One search runs at a time, in a thread worker that iterates ``dop_tui.jobrun.job_events`` and queues each
event on its ``Run``; the UI thread drains the queue on ``EventsReady`` (bursts collapse to one message),
folds the events into a ``Workbench`` and redraws the panes at most five times a second. Pause blocks the
worker between two events, so the loop does no work until it resumes; stop asks the loop to end after
the round in flight (it then yields ``Finished``). ``make_app`` is the one factory the CLI (``run_app``)
and the tests share.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Tree
from textual.worker import get_current_worker

from dop_tui.job import Job, JobError, job_from_mapping
from dop_tui.measure.calibrate import device_spec, launch_floor_us
from dop_tui.run_control import RunControl
from dop_tui.scenario import scenario_label
from dop_tui.search.events import JobStarted
from dop_tui.session.guard import OutputError, fresh_path
from dop_tui.session.store import SessionError, load, save
from dop_tui.ui.messages import EventsReady, GpuChecked, RunEnded, RunFailed, ScopeChanged, StartJob
from dop_tui.ui.screens.export_package import ExportScreen
from dop_tui.ui.screens.gpu_offer import GpuOfferScreen
from dop_tui.ui.screens.help import HelpScreen
from dop_tui.ui.screens.kernel_source import KernelScreen, kernel_source
from dop_tui.ui.screens.new_job import NewJobScreen
from dop_tui.ui.screens.open_session import OpenScreen
from dop_tui.ui.screens.save_session import SaveScreen
from dop_tui.ui.state import NodeStats, Prior, Scope, Workbench
from dop_tui.ui.widgets.accuracy_strip import AccuracyStrip
from dop_tui.ui.widgets.cost_chart import CostChart
from dop_tui.ui.widgets.event_log import EventLog
from dop_tui.ui.widgets.fitness_chart import FitnessChart
from dop_tui.ui.widgets.job_header import JobHeader
from dop_tui.ui.widgets.leaderboard import Leaderboard
from dop_tui.ui.widgets.pane import Pane
from dop_tui.ui.widgets.roofline_chart import RooflineChart
from dop_tui.ui.widgets.sketch_info import SketchInfo
from dop_tui.ui.widgets.sketch_tree import SketchTree

# An empty Triton kernel in a CUDA graph on the H200 (DESIGN.md section 2); `dop calibrate` measures it.
DEFAULT_LAUNCH_US = 0.69
REDRAW_S = 0.2
SHORT_ROWS = 32  # terminal rows below which the layout gives the charts less room


def autosave_dir() -> Path:
    """Where a job records its session unless told otherwise (next to `dop calibrate`'s cache)."""
    return Path(os.environ.get("DOP_TUI_CACHE", Path.home() / ".cache" / "dop-tui")) / "sessions"


def autosave_path(job: Job) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", job.name.lower()).strip("-") or "job"
    folder = autosave_dir()
    folder.mkdir(parents=True, exist_ok=True)  # the workbench's own folder
    return fresh_path(folder / f"{slug[:40]}-{time.strftime('%Y%m%d-%H%M%S')}.json.gz")


@dataclass
class Run:
    """One search: its inputs, the queue between the worker and the UI, and its controls."""

    id: int
    job: Job | None
    resume: Path | None
    output: Path | None
    queue: deque = field(default_factory=deque)
    control: RunControl = field(default_factory=RunControl)  # pause, stop; its SearchControls carry the pins
    lock: threading.Lock = field(default_factory=threading.Lock)
    intro: str = ""  # the first line of the run's log
    notified: bool = False  # an EventsReady is on its way to the app
    started: bool = False  # JobStarted arrived
    active: bool = True  # the worker has not returned
    t0: float = 0.0

    def elapsed(self) -> float:
        if not self.t0:
            return 0.0
        return time.monotonic() - self.t0 - self.control.paused_for()


class DopApp(App[None]):
    """The workbench. Build it with ``make_app``."""

    CSS_PATH = "app.tcss"
    TITLE = "dop-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start"),
        Binding("p", "pause", "Pause"),
        Binding("p", "resume", "Resume"),
        Binding("x", "stop", "Stop"),
        Binding("n", "new_job", "New job"),
        Binding("o", "open", "Open"),
        Binding("ctrl+s", "save", "Save"),
        Binding("e", "export", "Export"),
        Binding("k", "kernel", "Kernel", show=False),
        Binding("plus", "pin", "Pin"),
        Binding("minus", "exclude", "Exclude"),
        Binding("left_square_bracket", "scenario(-1)", "Previous scenario", show=False),
        Binding("right_square_bracket", "scenario(1)", "Next scenario", show=False),
        Binding("f", "log_kind", "Log filter", show=False),
        Binding("escape", "clear_scope", "Clear filters", show=False),
        Binding("z", "zoom", "Zoom"),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self, job: Job | None = None, session: Path | None = None, *, autostart: bool = True, output: Path | None = None
    ) -> None:
        super().__init__()
        self.initial_job, self.initial_session = job, session
        self.autostart, self.output = autostart, output
        self.state = Workbench()
        self.scope = Scope()
        self.pinned: set[str] = set()
        self.excluded: set[str] = set()
        self.current: Run | None = None
        self.job: Job | None = job  # what `s` starts
        self.last_form: dict[str, Any] | None = None
        self.notice = "idle"
        self._runs = 0
        self._dirty = False
        self._titles_shown: dict[str, tuple[str | None, str | None]] = {}

    # -- layout ----------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield JobHeader(id="header")
        with Horizontal(id="charts"):
            with Pane("Population fitness", id="fitness-pane"):
                yield FitnessChart(id="fitness")
            with Pane("Cost model", id="cost-pane"):
                yield CostChart(id="cost")
                yield AccuracyStrip(id="accuracy")
            with Pane("Roofline", id="roofline-pane"):
                yield RooflineChart(id="roofline")
        with Horizontal(id="lower"):
            with Pane("Sketches", id="tree-pane"):
                yield SketchTree(id="tree")
                yield SketchInfo(id="sketch-info")
            with Vertical(id="right"):
                with Pane("Leaderboard", id="leaderboard-pane"):
                    yield Leaderboard(id="leaderboard")
                with Pane("Log", id="log-pane"):
                    yield EventLog(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self._fit_height()
        self.set_interval(REDRAW_S, self._redraw_if_dirty)
        self.set_interval(1.0, self._tick)
        self.query_one(SketchTree).focus()
        if self.initial_session is not None or self.initial_job is not None:
            if self.initial_job is not None:
                self.preview(self.initial_job)
            if self.autostart:
                self.start(self.initial_job, self.initial_session)
            else:
                self.notice = "ready: press s to start"
        else:
            self.notice = "checking for a GPU"
            self._check_gpu()
        self.redraw()

    # -- starting ----------------------------------------------------------------------------------------
    @work(thread=True, group="gpu", exit_on_error=False)
    def _check_gpu(self) -> None:
        from dop_tui.measure.backends import gpu_available

        try:
            available = gpu_available()
        except Exception:  # a broken torch install is "no GPU" here; a GPU job would say why
            available = False
        self.post_message(GpuChecked(available))

    def on_gpu_checked(self, msg: GpuChecked) -> None:
        from dop_tui.jobrun import default_replay_job

        try:
            replay = default_replay_job()
        except JobError as exc:
            self.failed(f"the bundled replay job does not load: {exc}")
            return
        self.preview(replay)
        if msg.available:
            self.notice = "a GPU is available"
            self.push_screen(GpuOfferScreen(), self._offer_answered)
        elif self.autostart:
            self.start(replay, intro="no GPU here: replaying the bundled H200 dataset (recorded measurements)")
        else:
            self.notice = "ready: press s to replay the bundled H200 dataset"
        self.redraw()

    def _offer_answered(self, answer: str | None) -> None:
        if answer == "gpu":
            self.action_new_job(backend="gpu")
        elif answer == "replay":
            self.start(self.job)

    def preview(self, job: Job) -> None:
        """Make ``job`` the one ``s`` starts and show its scenarios and sketches before it runs."""
        self.job = job
        if self.current is None:
            self.state = Workbench(job=job.to_mapping(), scenarios=tuple(s.key for s in job.scenarios()))
            self.state.budget = job.budget
            self.state.runner = job.replay_label() if job.backend == "replay" else job.backend

    def start(self, job: Job | None, resume: Path | None = None, intro: str = "", keep: bool = False) -> None:
        """Start ``job`` (or resume the session ``resume``), stopping the search in progress; ``intro`` opens
        the new run's log. ``keep``: continue ``resume`` into a new session file, leaving it untouched (a session
        opened in the workbench, a bundled dataset among them)."""
        if self.current is not None and self.current.active:
            self.current.control.stop()
        self._runs += 1
        # -o names the first run's session; later runs record to fresh files, never over an earlier run's
        if keep and resume is not None and not self.output:
            from dop_tui.jobrun import resume_job

            with contextlib.suppress(SessionError, JobError):  # an unreadable session fails in the run, named
                self.output = autosave_path(job or resume_job(resume)[0])
        output, self.output = self.output or resume or (autosave_path(job) if job is not None else None), None
        self.current = Run(self._runs, job, resume, output, intro=intro)
        if job is not None:
            self.job = job
        self.notice = "starting"
        self._drive(self.current)
        self.refresh_bindings()
        self.redraw()

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _drive(self, run: Run) -> None:
        """The search worker: iterate the job's events, queue them, never touch a widget."""
        worker = get_current_worker()
        try:
            from dop_tui.jobrun import job_events, resume_job

            controls = run.control.make_controls()
            with run.lock:
                self._sync_controls(controls)
            if run.resume is not None:
                _, session = resume_job(run.resume)
                self._queue(run, Prior(tuple(session.measurements), tuple(session.rounds)))
            events = job_events(run.job, output=run.output, resume=run.resume, controls=controls)
            for ev in run.control.follow(events, cancelled=lambda: worker.is_cancelled):
                self._queue(run, ev)
        except (JobError, SessionError, OutputError, RuntimeError, OSError) as exc:
            self.post_message(RunFailed(run.id, str(exc)))
        except Exception as exc:
            self.post_message(RunFailed(run.id, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        finally:
            self.post_message(RunEnded(run.id))

    def _queue(self, run: Run, item: object) -> None:
        """Queue an event; post ``EventsReady`` only when none is waiting, so a fast loop cannot flood the
        app's message queue ahead of the user's keys."""
        with run.lock:
            run.queue.append(item)
            notify, run.notified = not run.notified, True
        if notify:
            self.post_message(EventsReady(run.id))

    # -- the event stream --------------------------------------------------------------------------------
    def on_events_ready(self, msg: EventsReady) -> None:
        run = self.current
        if run is None or msg.run_id != run.id:
            return
        with run.lock:
            items, run.notified = list(run.queue), False
            run.queue.clear()
        for item in items:
            if not run.started:
                run.started, run.t0 = True, time.monotonic()
                self._fresh_state(run)
            self.state.apply(item)
            if isinstance(item, JobStarted) and self.job is None:
                with contextlib.suppress(JobError):  # a resumed session's job becomes the one `s` starts
                    self.job = job_from_mapping(item.job)
        if self.state.state == "running" and run.control.stopping:
            self.state.state = "stopping"
        elif self.state.state == "running" and run.control.paused:
            self.state.state = "paused"
        self.notice = self.state.state
        self._dirty = True

    def _fresh_state(self, run: Run) -> None:
        """A new run's first event replaces what the panes showed (the old run's session is on disk)."""
        self.state = Workbench()
        if run.intro:
            self.state.note("job", run.intro)
        if run.output is not None:
            self.state.note("job", f"recording the session to {run.output}")

    def on_run_failed(self, msg: RunFailed) -> None:
        run = self.current
        if run is None or msg.run_id != run.id:
            return
        self.failed(msg.error, msg.detail)

    def failed(self, error: str, detail: str = "") -> None:
        """Show an error in the log and as a notification; whatever the panes show stays."""
        self.state.note("error", error)
        for line in detail.strip().splitlines()[-6:]:
            self.state.note("error", "  " + line)
        if self.state.state in ("running", "paused", "stopping"):
            self.state.state = "failed"
        self.notice = "failed" if self.state.state == "failed" else self.notice
        if self._panes_up:
            self.notify(error, title="dop-tui", severity="error", timeout=8)
            self.redraw()

    def on_run_ended(self, msg: RunEnded) -> None:
        run = self.current
        if run is None or msg.run_id != run.id:
            return
        self.on_events_ready(EventsReady(run.id))
        run.active = False
        if self.state.state == "running":  # ended without Finished: stopped by a new job or an error
            self.state.state = "idle"
        self.notice = self.state.state if run.started else self.notice
        if self.state.state == "finished":
            self.notice = f"finished ({self.state.finish_reason})"
        if self._panes_up:  # the run may end while the app shuts down
            self.refresh_bindings()
            self.redraw()

    # -- drawing -----------------------------------------------------------------------------------------
    def on_resize(self) -> None:
        self._dirty = True  # the leaderboard's columns and the charts' legends depend on the width
        self._fit_height()

    def _fit_height(self) -> None:
        """Below ``SHORT_ROWS`` rows the charts shrink (z zooms one) so the leaderboard keeps rows to show."""
        self.screen_stack[0].set_class(self.size.height < SHORT_ROWS, "-short")

    @property
    def _panes_up(self) -> bool:
        """Whether the panes can be drawn: the app runs and has its screens (not while it shuts down)."""
        return self.is_running and bool(self.screen_stack)

    def _redraw_if_dirty(self) -> None:
        if self._dirty and self._panes_up:
            self.redraw()

    def _tick(self) -> None:
        if self._panes_up and self.current is not None and self.current.active and self.current.started:
            self._draw_header()

    def _elapsed(self) -> float:
        run = self.current
        if run is not None and run.active and run.started:
            return max(run.elapsed(), self.state.elapsed_s)
        return self.state.elapsed_s

    def _draw_header(self) -> None:
        self.query_one(JobHeader).show(self.state.header_view(), self._elapsed(), self.notice)

    def redraw(self) -> None:
        """Update every pane from the state for the current scope."""
        self._dirty = False
        st, scope = self.state, self.scope
        with self.batch_update():
            self._draw_header()
            tree = self.query_one(SketchTree)
            tree.set_ops(tuple(st.job.get("ops", ())))
            stats = {n: st.node_stats(n, scope.scenario) for n in tree.node_ids}
            tree.show(stats, self.pinned, self.excluded, scope.node, bool(scope.scenario))
            self._draw_info(stats.get(tree.cursor_id or ""))
            self.query_one(FitnessChart).show(st.fitness_view(scope))
            self.query_one(CostChart).show(st.cost_view(scope))
            self.query_one(AccuracyStrip).show(st.accuracy, st.n_train)
            device = device_spec(st.device)
            launch_us = launch_floor_us(st.device) or DEFAULT_LAUNCH_US
            self.query_one(RooflineChart).show(st.roofline_view(scope, launch_us), device)
            board = self.query_one(Leaderboard)
            board.set_scenarios(st.scenarios)
            board.show(st.leaderboard(scope), st.baseline_names)
            self.query_one(EventLog).show(st.log)
            self._titles()

    def _draw_info(self, stats: NodeStats | None = None) -> None:
        node = self.query_one(SketchTree).cursor_id
        if stats is None and node is not None:
            stats = self.state.node_stats(node, self.scope.scenario)
        self.query_one(SketchInfo).show(node, stats, self.pinned, self.excluded)

    @on(Tree.NodeHighlighted, "#tree")
    def _node_highlighted(self) -> None:
        self._draw_info()

    def _titles(self) -> None:
        scope = self.scope
        where = " · ".join(x for x in (scope.node, scope.scenario and scenario_label(scope.scenario, short=True)) if x)
        suffix = f" · {where}" if where else ""
        names = " ".join(self.state.baseline_names)
        titles = {
            "#tree-pane": (None, "measured · best " + ("us" if scope.scenario else "x") + " · pop"),
            "#leaderboard-pane": ("Leaderboard" + (f" · speedup over {names}" if names else ""), None),
            "#log-pane": (None, f"f: {self.query_one(EventLog).kind or 'every kind'}"),
        }
        for pane, title in (
            ("#fitness-pane", "Population fitness"),
            ("#cost-pane", "Cost model"),
            ("#roofline-pane", "Roofline"),
        ):
            titles[pane] = (title + suffix, None)
        for pane, shown in titles.items():
            if self._titles_shown.get(pane) != shown:
                self._titles_shown[pane] = shown
                widget = self.query_one(pane)
                if shown[0] is not None:
                    widget.border_title = shown[0]
                if shown[1] is not None:
                    widget.border_subtitle = shown[1]

    # -- scope -------------------------------------------------------------------------------------------
    @on(Tree.NodeSelected, "#tree")
    def _node_selected(self, event: Tree.NodeSelected) -> None:
        self.post_message(ScopeChanged(node=event.node.data or ""))

    def on_scope_changed(self, msg: ScopeChanged) -> None:
        node = self.scope.node if msg.node is None else msg.node
        scenario = self.scope.scenario if msg.scenario is None else msg.scenario
        if Scope(node, scenario) != self.scope:
            self.scope = Scope(node, scenario)
            self.query_one(Leaderboard).pick(scenario)
            self.redraw()

    def action_clear_scope(self) -> None:
        self.post_message(ScopeChanged(node="", scenario=""))

    def action_scenario(self, delta: int) -> None:
        self.query_one(Leaderboard).step(delta)

    def action_log_kind(self) -> None:
        self.query_one(EventLog).cycle_kind()
        self._titles()

    def action_zoom(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
        elif self.focused is not None:
            self.screen.maximize(self.focused)

    # -- controls ----------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        run = self.current
        active = run is not None and run.active
        paused = active and run.control.paused
        if action == "pause":
            return active and not paused and not run.control.stopping
        if action == "resume":
            return paused
        if action == "stop":
            return True if active and not run.control.stopping else None
        if action == "start":
            return True if not active and (self.job is not None) else None
        if action in ("save", "export"):
            return True if run is not None and run.output is not None else None
        return True

    def action_start(self) -> None:
        if self.job is None:
            self.notify("no job to start: press n for a new job or o to open one", severity="warning")
            return
        self.start(self.job)

    def action_pause(self) -> None:
        run = self.current
        if run is not None and run.active:
            run.control.pause()
            self.state.state = "paused"
            self.notice = "paused (the loop waits between two events)"
            self.state.note("job", "paused")
            self.refresh_bindings()
            self.redraw()

    def action_resume(self) -> None:
        run = self.current
        if run is not None and run.active and run.control.paused:
            run.control.resume()
            self.state.state = self.notice = "running"
            self.state.note("job", "resumed")
            self.refresh_bindings()
            self.redraw()

    def action_stop(self) -> None:
        run = self.current
        if run is not None and run.active:
            if run.control.paused:
                self.action_resume()
            run.control.stop()
            self.state.state = "stopping"
            self.notice = "stopping after the round in flight"
            self.state.note("job", "stop requested: the loop ends after the round in flight")
            self.refresh_bindings()
            self.redraw()

    def _toggle(self, pin: bool) -> None:
        """Pin or exclude the sketches under the tree cursor, or undo it when all of them already are."""
        tree = self.query_one(SketchTree)
        node = tree.cursor_id
        sketches = tree.sketch_ids(node) if node is not None else []
        if not sketches:
            self.notify("move the sketch tree's cursor to a sketch first", severity="warning")
            return
        mine, other = (self.pinned, self.excluded) if pin else (self.excluded, self.pinned)
        add = not all(s in mine for s in sketches)
        run = self.current
        with run.lock if run is not None else contextlib.nullcontext():
            for s in sketches:
                if add:
                    mine.add(s)
                    other.discard(s)
                else:
                    mine.discard(s)
            if run is not None and run.control.controls is not None:
                self._sync_controls(run.control.controls)
        verb = "pinned" if pin else "excluded"
        text = f"{verb} {node or 'every sketch'}" if add else f"no longer {verb}: {node or 'every sketch'}"
        self.state.note("job", f"{text} (the loop reads it at the start of the next round)")
        self.notify(text)
        self.redraw()

    def _sync_controls(self, controls: Any) -> None:
        """Make the loop's sets match the app's (call under the run's lock)."""
        for mine, theirs, toggle in (
            (self.pinned, controls.pinned, controls.toggle_pinned),
            (self.excluded, controls.excluded, controls.toggle_excluded),
        ):
            for s in mine ^ set(theirs):
                toggle(s)

    def action_pin(self) -> None:
        self._toggle(pin=True)

    def action_exclude(self) -> None:
        self._toggle(pin=False)

    # -- screens -----------------------------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_new_job(self, backend: str | None = None) -> None:
        values = self.last_form or (self.job.to_mapping() if self.job is not None else None)
        if backend is not None:
            values = {**(values or {}), "backend": backend}
        self.push_screen(NewJobScreen(values), self._form_done)

    def _form_done(self, result: tuple[Job, dict[str, Any]] | None) -> None:
        if result is not None:
            job, self.last_form = result
            self.post_message(StartJob(job))

    def action_open(self) -> None:
        from dop_tui.jobrun import SESSIONS_DIR

        places = [
            ("this folder", Path.cwd()),
            ("bundled with dop-tui", SESSIONS_DIR),
            ("recorded by the workbench", autosave_dir()),
        ]
        self.push_screen(OpenScreen(places), self._opened)

    def _opened(self, result: StartJob | None) -> None:
        if result is not None:
            self.post_message(result)

    def on_start_job(self, msg: StartJob) -> None:
        self.start(msg.job, msg.resume, keep=True)  # an opened session is continued into a new file

    def action_save(self) -> None:
        run = self.current
        if run is None or run.output is None:
            return
        default = Path.cwd() / run.output.name
        self.push_screen(SaveScreen(default, lambda target: self.save_copy(run.output, target)), self._saved)

    def save_copy(self, source: Path, target: Path) -> str:
        """Write the recorded session to ``target`` (atomically); raises ``SessionError`` or ``OSError``."""
        if not source.exists():
            raise SessionError("nothing recorded yet: the session is written after the first round")
        if target.exists() and target.resolve() != source.resolve():
            raise SessionError(f"{target} already exists: choose another name (nothing is overwritten)")
        save(load(source), target)
        return f"saved to {target}"

    def action_export(self) -> None:
        run = self.current
        if run is None or run.output is None:
            return
        default = Path.cwd() / "lora-kernels"
        self.push_screen(ExportScreen(default, lambda d, name, fmt: self.export_session(run.output, d, name, fmt)),
                         self._saved)  # fmt: skip

    def export_session(self, source: Path, directory: Path, name: str, fmt: str) -> str:
        """``dop export`` of the recorded session; raises ``ExportError``, ``SessionError`` or ``OSError``."""
        from dop_tui.export.package import export_package

        if not source.exists():
            raise SessionError("nothing recorded yet: the session is written after the first round")
        table = export_package([(source.name, load(source))], directory, name, fmt=fmt)
        what = f"package {name}" if "entries" in table else "vLLM's tuned-config files"
        return f"exported {what} to {directory}" + (" (with vLLM's files)" if fmt == "both" else "")

    def action_kernel(self) -> None:
        """The highlighted leaderboard row's kernel: config, time and the source the package would ship."""
        board = self.query_one(Leaderboard)
        row = board.highlighted()
        if row is None:
            self.notify("no kernel under the leaderboard's cursor", severity="warning")
            return
        title, path, source = kernel_source(row.kernel, row.config)
        self.push_screen(KernelScreen(f"{title}  {row.us:.2f} us  {scenario_label(row.scenario, short=True)}",
                                      path, source))  # fmt: skip

    def _saved(self, message: str | None) -> None:
        if message:
            self.state.note("job", message)
            self.notify(message)
            self.redraw()

    async def action_quit(self) -> None:
        run = self.current
        if run is not None and run.active:
            run.control.stop()
            self.workers.cancel_group(self, "search")
        self.exit()


def make_app(
    job: Job | None = None, session: Path | None = None, *, autostart: bool = True, output: Path | None = None
) -> DopApp:
    """The workbench for ``job`` or the session to resume; with neither, the bundled replay (or, with a
    GPU, an offer to start a real job). ``output`` overrides where the session is recorded."""
    return DopApp(job, session, autostart=autostart, output=output)


def run_app(job: Job | None, session: Path | None, *, output: Path | None = None) -> None:
    """Entry point of ``dop-tui`` without ``--batch``: the workbench on ``job``, or resuming ``session``."""
    app = make_app(job, session, output=output)
    app.run()
    # The terminal is restored and every finished round is on disk (written atomically after each round):
    # leave now rather than spend a second or two tearing down torch, triton and xgboost.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(app.return_code or 0)
