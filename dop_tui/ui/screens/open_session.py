"""Open a job file (start it) or a session written by a job (resume it)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, Select, Static

from dop_tui.job import JobError, load_job
from dop_tui.session.store import SessionError
from dop_tui.ui.messages import StartJob

SUFFIXES = (".toml", ".json", ".json.gz")


class JobFiles(DirectoryTree):
    """Folders, job files and sessions only."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or p.name.endswith(SUFFIXES))]


def _has_files(folder: Path) -> bool:
    try:
        return any(p.name.endswith(SUFFIXES) for p in folder.iterdir())
    except OSError:
        return False


class OpenScreen(ModalScreen[StartJob | None]):
    """Checks the file before closing: an unreadable one is reported here and nothing else changes.

    ``places`` are the folders offered to browse (this folder, the bundled jobs, the recorded sessions); it
    starts in the first one that holds a job file or a session."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, places: list[tuple[str, Path]]) -> None:
        super().__init__()
        self.places = [(name, path) for name, path in places if path.is_dir()] or [("this folder", Path.cwd())]
        self.root = next((path for _, path in self.places if _has_files(path)), self.places[0][1])

    def compose(self) -> ComposeResult:
        with Vertical(id="open", classes="dialog") as box:
            box.border_title = "Open a job or resume a session"
            yield Label("A job file (.toml) starts that job; a session (.json, .json.gz) resumes its job.")
            yield Static(
                "Recorded measurements without a job (the bundled H200 dataset) open through a replay job, such "
                "as replay-h200.toml among the bundled jobs.",
                classes="hint",
            )
            yield Input(placeholder="path, or pick below", id="open-path")
            with Horizontal(classes="row"):
                yield Label("look in", classes="key")
                yield Select([(f"{name}: {path}", path) for name, path in self.places], value=self.root,
                             allow_blank=False, compact=True, id="open-place")  # fmt: skip
            yield JobFiles(self.root, id="open-tree")
            yield Static(id="open-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Open", id="open-ok", variant="primary")
                yield Button("Cancel", id="open-cancel")

    def on_mount(self) -> None:
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """The file tree takes what the terminal leaves (16 rows at most, 4 at least), so the buttons show."""
        self.query_one(JobFiles).styles.height = max(4, min(16, self.app.size.height - 18))

    @on(Select.Changed, "#open-place")
    def _place(self, event: Select.Changed) -> None:
        self.query_one(JobFiles).path = event.value

    @on(DirectoryTree.FileSelected, "#open-tree")
    def _picked(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#open-path", Input).value = str(event.path)
        self._open()

    @on(Input.Submitted, "#open-path")
    @on(Button.Pressed, "#open-ok")
    def _open(self) -> None:
        text = self.query_one("#open-path", Input).value.strip()
        error = self.query_one("#open-error", Static)
        if not text:
            error.update("give a path, or pick a file below")
            return
        path = Path(text).expanduser()
        try:
            if path.suffix == ".toml":
                self.dismiss(StartJob(load_job(path)))
            else:
                from dop_tui.jobrun import resume_job

                resume_job(path)
                self.dismiss(StartJob(None, resume=path))
        except (JobError, SessionError) as exc:
            error.update(str(exc))

    @on(Button.Pressed, "#open-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
