"""The leaderboard: the fastest candidates of a scenario (or the best of each), against the baselines."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Select, Static

from dop_tui.scenario import scenario_label
from dop_tui.ui.messages import ScopeChanged
from dop_tui.ui.state import LeaderRow, scenario_labels, short_config

ALL = "*"  # the picker's "every scenario" value (Select needs a non-blank value)


def squeeze(label: str, width: int) -> str:
    """A scenario label cut to ``width`` from the middle: its tail (tokens and workload) tells rows apart."""
    if len(label) <= width:
        return label
    op, shape, *rest = [*label.split(" "), "", ""]
    tail = " ".join(x for x in rest if x)
    head = f"{op[:3]} {shape}"
    if len(head) + 1 + len(tail) > width:
        head = head[: max(0, width - len(tail) - 2)] + "…"
    return f"{head} {tail}"[:width]


WIDTHS = {"#": 2, "sketch": 13, "config": 30, "us": 6, "vs best": 7, "floor": 5}  # at least, padding aside


class Leaderboard(Vertical):
    """A scenario picker, a table and a detail line for the highlighted row."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[LeaderRow] = []
        self.labels: dict[str, str] = {}
        self.baselines: list[str] = []
        self._detail_text: Text | None = None
        self._columns: tuple[tuple[str, ...], tuple[int, ...]] = ((), ())

    def compose(self) -> ComposeResult:
        yield Select(
            [("every scenario: the best of each", ALL)],
            value=ALL,
            allow_blank=False,
            compact=True,
            id="scenario-picker",
        )
        yield DataTable(cursor_type="row", zebra_stripes=True, id="leaderboard-table")
        yield Static(id="leaderboard-detail")

    @property
    def scenario(self) -> str:
        value = self.query_one("#scenario-picker", Select).value
        return "" if value in (ALL, Select.NULL) else str(value)

    def set_scenarios(self, keys: tuple[str, ...]) -> None:
        """Offer the job's scenarios in the picker (resets it to every scenario)."""
        if tuple(self.labels) == keys:
            return
        self.labels = scenario_labels(keys)
        picker = self.query_one("#scenario-picker", Select)
        with picker.prevent(Select.Changed):
            picker.set_options([("every scenario: the best of each", ALL)] + [(scenario_label(k), k) for k in keys])
            picker.value = ALL

    def pick(self, scenario: str) -> None:
        self.query_one("#scenario-picker", Select).value = scenario or ALL

    def step(self, delta: int) -> None:
        """Move the picker to the previous or next scenario (wrapping through "every scenario")."""
        picker = self.query_one("#scenario-picker", Select)
        values = [v for _, v in picker._options]
        i = values.index(picker.value) if picker.value in values else 0
        picker.value = values[(i + delta) % len(values)]

    @on(Select.Changed, "#scenario-picker")
    def _picked(self, event: Select.Changed) -> None:
        event.stop()
        self.post_message(ScopeChanged(scenario=self.scenario))

    def _fit(self, one: bool, baselines: list[str], widths: dict[str, int]) -> tuple[str, ...]:
        """The columns that fit: the essentials, then the config, then one column per baseline (instead of
        the speedup over the best one). Narrower than the essentials, the time and the speedup stay, then the
        sketch, and the first column's entry in ``widths`` shrinks to what is left."""
        first, room = ("#" if one else "scenario"), self.size.width

        def fits(cols: tuple[str, ...]) -> bool:
            return sum(widths[c] + 2 for c in cols) <= room

        full = (first, "sketch", "config", "us", "vs best", "floor")
        if not fits(full):
            cols = next((c for c in ((first, "sketch", "us", "vs best", "floor"), (first, "us", "vs best", "sketch"))
                         if fits(c)), (first, "us", "vs best"))  # fmt: skip
            spare = room - 2 - sum(widths[c] + 2 for c in cols)  # a cut table also shows its scrollbar
            if spare < 0 and room:
                widths[first] = max(12, widths[first] + spare)
            return cols
        per_baseline = (*(c for c in full if c not in ("vs best", "floor")), *baselines, "floor")
        return per_baseline if baselines and fits(per_baseline) else full

    def show(self, rows: list[LeaderRow], baselines: list[str]) -> None:
        """Fill the table; columns get fixed widths (the widest cell, at least the usual width) so that they
        neither jump while a job runs nor depend on when the table measures itself."""
        one = bool(self.scenario)
        names = ("#" if one else "scenario", "sketch", "config", "us", "vs best", *baselines, "floor")
        cells = {c: [self._cell(c, i, r) for i, r in enumerate(rows)] for c in names}
        widths = {c: max(len(c), WIDTHS.get(c, 6), *(Text(x).cell_len if isinstance(x, str) else x.cell_len
                                                      for x in cells[c])) for c in names}  # fmt: skip
        if not one:
            widths["scenario"] = max(widths["scenario"], max(map(len, self.labels.values()), default=0))
        columns = self._fit(one, baselines, widths)
        if not one:
            cells["scenario"] = [squeeze(x, widths["scenario"]) for x in cells["scenario"]]
        shape = (columns, tuple(widths[c] for c in columns))
        self.baselines = baselines
        if rows == self.rows and shape == self._columns:
            return
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear(columns=True)
        for c in columns:
            table.add_column(c, width=widths[c], key=c)
        self.rows, self._columns = rows, shape
        for i in range(len(rows)):
            table.add_row(*(cells[c][i] for c in columns), key=str(i))
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        self._detail(table.cursor_row)

    def on_resize(self) -> None:
        """Zoomed or resized: fit the columns to the new width."""
        self.show(self.rows, self.baselines)

    def _cell(self, column: str, i: int, r: LeaderRow) -> str | Text:
        if column == "#":
            return str(i + 1)
        if column == "scenario":
            return self.labels.get(r.scenario, r.scenario)
        if column == "sketch":
            return r.kernel.split("/", 1)[1]
        if column == "config":
            return short_config(r.config)
        if column == "us":
            return Text(f"{r.us:.2f}", justify="right")
        if column == "floor":
            return Text(f"{r.floor_fraction:.0%}" if r.floor_fraction is not None else "-", justify="right")
        x = min(r.speedup.values(), default=None) if column == "vs best" else r.speedup.get(column)
        if x is None:
            return Text("-", style="dim", justify="right")
        return Text(f"{x:.2f}x", style="green" if x >= 1 else "red", justify="right")

    def highlighted(self) -> LeaderRow | None:
        """The row under the table's cursor, if any."""
        i = self.query_one("#leaderboard-table", DataTable).cursor_row
        return self.rows[i] if 0 <= i < len(self.rows) else None

    @on(DataTable.RowHighlighted, "#leaderboard-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.cursor_row)

    def _detail(self, i: int) -> None:
        detail = self.query_one("#leaderboard-detail", Static)
        if not 0 <= i < len(self.rows):
            text = Text("no timed candidate in this view yet", style="dim")
            if text != self._detail_text:
                self._detail_text = text
                detail.update(text, layout=False)
            return
        r = self.rows[i]
        m = r.measurement
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{scenario_label(r.scenario)}  ", style="bold")
        spread = f" ({m.us_min:.2f}-{m.us_max:.2f})" if m.us_min is not None and m.us_max is not None else ""
        head.append(f"{r.us:.2f} us{spread}")
        if m.do_bench_us is not None:
            head.append(f" (do_bench {m.do_bench_us:.2f} us)", style="dim")
        for name, x in r.speedup.items():
            head.append(f"  {x:.2f}x {name}", style="green" if x >= 1 else "red")
        head.append(f"  round {r.round}  {m.method}", style="dim")
        body = Text(no_wrap=True, overflow="ellipsis")
        body.append(f"{r.kernel} ", style="bold")
        body.append(" ".join(f"{k}={v}" for k, v in sorted(r.config.items())), style="cyan")
        if m.gbps is not None:
            body.append(f"  {m.gbps:,.0f} GB/s", style="dim")
        text = Text("\n", no_wrap=True, overflow="ellipsis").join([head, body])
        if text != self._detail_text:
            self._detail_text = text
            detail.update(text, layout=False)
