"""The new-job form: every key of a job file, checked by ``job_from_mapping`` before anything starts."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from dop_tui.job import BACKENDS, STRATEGIES, Job, JobError, job_from_mapping
from dop_tui.models import GROUPS, MODELS, PROJECTIONS
from dop_tui.scenario import OPS
from dop_tui.workloads import WORKLOADS

DEFAULTS: dict[str, Any] = {
    "name": "tuning job",
    "model": "llama2-7b",
    "projections": ["q"],
    "ops": list(OPS),
    "ranks": [16],
    "dtypes": ["bf16"],
    "batch_sizes": [1, 8, 16, 32, 64],
    "prefill_segments": [],
    "prefill_tokens": [128, 2048],
    "workloads": list(WORKLOADS),
    "backend": "gpu",
    "replay": "",
    "budget": 1000,
    "seed": 0,
    "strategy": "evolution",
    "warm_start": "",
}


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[,\s]+", text.strip()) if w]


def _paths(text: str) -> list[str]:
    """Comma-separated file paths (a path may hold spaces)."""
    return [p.strip() for p in text.split(",") if p.strip()]


def _ints(key: str, text: str) -> list[int]:
    try:
        return [int(w) for w in _words(text)]
    except ValueError:
        raise JobError(f"{key}: expected whole numbers separated by commas, got {text!r}") from None


def _int(key: str, text: str) -> int:
    vals = _ints(key, text)
    if len(vals) != 1:
        raise JobError(f"{key}: expected one whole number, got {text!r}")
    return vals[0]


def _projections(text: str) -> list[str] | dict[str, list[str]]:
    """``q, down`` for every op, or ``shrink: q down; fused: q`` per op."""
    if ":" not in text:
        return _words(text)
    out: dict[str, list[str]] = {}
    for part in text.split(";"):
        op, sep, names = part.partition(":")
        if not sep or not op.strip():
            raise JobError(f"projections: expected 'op: names; op: names', got {part.strip()!r}")
        out[op.strip()] = _words(names)
    return out


def _shapes(text: str) -> list[list[int]]:
    shapes = []
    for w in _words(text):
        m = re.fullmatch(r"(\d+)x(\d+)", w)
        if not m:
            raise JobError(f"shapes: expected h_inxh_out pairs such as 4096x11008, got {w!r}")
        shapes.append([int(m[1]), int(m[2])])
    return shapes


def _show_projections(p: Any) -> str:
    if isinstance(p, dict):
        return "; ".join(f"{op}: {' '.join(v)}" for op, v in p.items())
    return ", ".join(p)


class NewJobScreen(ModalScreen[tuple[Job, dict[str, Any]] | None]):
    """Dismissed with the valid job and the form's values (to refill the form next time)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Cancel"),
        Binding("ctrl+enter,ctrl+j", "submit", "Start the job"),
    ]

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.values = {**DEFAULTS, **(values or {})}

    def compose(self) -> ComposeResult:
        v = self.values
        with VerticalScroll(id="new-job", classes="dialog") as box:
            box.border_title = "New tuning job"
            with Horizontal(classes="row"):
                yield Label("name", classes="key")
                yield Input(v["name"], id="job-name", compact=True)
            with Horizontal(classes="row"):
                yield Label("model", classes="key")
                yield Select(
                    [(m, m) for m in MODELS],
                    value=v["model"] if v["model"] in MODELS else Select.NULL,
                    allow_blank=False,
                    compact=True,
                    id="job-model",
                )
                yield Label("shapes", classes="key")
                yield Input(
                    ", ".join(f"{a}x{b}" for a, b in v.get("shapes", [])),
                    compact=True,
                    id="job-shapes",
                    placeholder="h_inxh_out, ... (replaces the model's projections)",
                )
            with Horizontal(classes="row"):
                yield Label("projections", classes="key")
                yield Input(
                    _show_projections(v["projections"]),
                    compact=True,
                    id="job-projections",
                    placeholder=f"{', '.join(PROJECTIONS + tuple(GROUPS))}; per op: 'shrink: q down; fused: q'",
                )
            with Horizontal(classes="row"):
                yield Label("ops", classes="key")
                for op in OPS:
                    yield Checkbox(op, op in v["ops"], compact=True, id=f"op-{op}")
            with Horizontal(classes="row"):
                yield Label("ranks", classes="key")
                yield Input(", ".join(map(str, v["ranks"])), compact=True, id="job-ranks")
                yield Label("dtypes", classes="key")
                yield Input(", ".join(v["dtypes"]), compact=True, id="job-dtypes")
            with Horizontal(classes="row"):
                yield Label("batch sizes", classes="key")
                yield Input(", ".join(map(str, v["batch_sizes"])), compact=True, id="job-batch-sizes")
                yield Label("prefill", classes="key")
                yield Input(
                    ", ".join(map(str, v.get("prefill_segments", []))),
                    compact=True,
                    id="job-prefill",
                    placeholder="e.g. 2 4 8",
                )
                yield Label("of tokens", classes="key")
                tokens = v.get("prefill_tokens", DEFAULTS["prefill_tokens"])
                yield Input(", ".join(map(str, tokens)), compact=True, id="job-prefill-tokens")
            with Horizontal(classes="row"):
                yield Label("workloads", classes="key")
                for wl in WORKLOADS:
                    yield Checkbox(wl, wl in v["workloads"], compact=True, id=f"wl-{wl}")
            with Horizontal(classes="row"):
                yield Label("backend", classes="key")
                yield Select(
                    [(b, b) for b in BACKENDS], value=v["backend"], allow_blank=False, compact=True, id="job-backend"
                )
                yield Label("replay", classes="key")
                replay = v.get("replay", "")
                yield Input(
                    replay if isinstance(replay, str) else ", ".join(replay),
                    compact=True,
                    id="job-replay",
                    placeholder="session file(s) a replay job answers from, comma-separated",
                )
            with Horizontal(classes="row"):
                yield Label("budget", classes="key")
                yield Input(str(v["budget"]), compact=True, id="job-budget")
                yield Label("strategy", classes="key")
                yield Select(
                    [(s, s) for s in STRATEGIES],
                    value=v["strategy"],
                    allow_blank=False,
                    compact=True,
                    id="job-strategy",
                )
                yield Label("seed", classes="key")
                yield Input(str(v["seed"]), compact=True, id="job-seed")
            with Horizontal(classes="row"):
                yield Label("warm start", classes="key")
                yield Input(
                    v.get("warm_start", ""),
                    compact=True,
                    id="job-warm-start",
                    placeholder="optional: a session or saved model the cost model starts from",
                )
            yield Static(
                "Lists take commas or spaces. Enter (or ctrl+enter) starts the job, escape cancels; the job in "
                "progress stops, its session stays on disk.",
                classes="hint",
            )
            yield Static(id="job-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Start", id="job-start", variant="primary")
                yield Button("Cancel", id="job-cancel")

    def _text(self, name: str) -> str:
        return self.query_one(f"#job-{name}", Input).value.strip()

    def mapping(self) -> dict[str, Any]:
        """The form as a job table; ``JobError`` for a field that does not parse."""
        d: dict[str, Any] = {"name": self._text("name") or "tuning job"}
        if shapes := self._text("shapes"):
            d["shapes"] = _shapes(shapes)
        else:
            d["model"] = self.query_one("#job-model", Select).value
            d["projections"] = _projections(self._text("projections"))
        d["ops"] = [op for op in OPS if self.query_one(f"#op-{op}", Checkbox).value]
        d["ranks"] = _ints("ranks", self._text("ranks"))
        d["dtypes"] = _words(self._text("dtypes"))
        d["batch_sizes"] = _ints("batch sizes", self._text("batch-sizes"))
        if prefill := _ints("prefill", self._text("prefill")):
            d["prefill_segments"] = prefill
            d["prefill_tokens"] = _ints("prefill tokens", self._text("prefill-tokens"))
        d["workloads"] = [wl for wl in WORKLOADS if self.query_one(f"#wl-{wl}", Checkbox).value]
        d["backend"] = self.query_one("#job-backend", Select).value
        if replay := _paths(self._text("replay")):
            d["replay"] = replay
        d["budget"], d["seed"] = _int("budget", self._text("budget")), _int("seed", self._text("seed"))
        d["strategy"] = self.query_one("#job-strategy", Select).value
        if warm := self._text("warm-start"):
            d["warm_start"] = warm
        return d

    @on(Input.Submitted)
    @on(Button.Pressed, "#job-start")
    def action_submit(self) -> None:
        error = self.query_one("#job-error", Static)
        try:
            d = self.mapping()
            self.dismiss((job_from_mapping(d), d))
        except JobError as exc:
            error.update(f"not started: {exc}")

    @on(Button.Pressed, "#job-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
