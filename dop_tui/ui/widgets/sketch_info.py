"""What the node under the sketch-tree cursor is: the sketch's structure, its state in the search."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from dop_tui.space import SKETCH_BY_ID, SKETCHES
from dop_tui.ui.state import NodeStats, under


class SketchInfo(Static):
    """A few lines under the tree: the sketch's docstring (or what a node groups), pins and exclusions."""

    _shown: Text | None = None

    def _put(self, text: Text) -> None:
        if text != self._shown:
            self._shown = text
            self.update(text, layout=False)

    def show(self, node_id: str | None, stats: NodeStats | None, pinned: set[str], excluded: set[str]) -> None:
        text = Text()
        if node_id is None:
            self._put(text)
            return
        sketches = [s.id for s in SKETCHES if s.id.count("/") == 2 and under(s.id, node_id)]
        if node_id in SKETCH_BY_ID:
            sk = SKETCH_BY_ID[node_id]
            text.append(f"{node_id}\n", style="bold")
            text.append(sk.doc[0].upper() + sk.doc[1:] + ".\n", style="dim")
            text.append(f"{len(sk.params)} parameters: {', '.join(n for n, _ in sk.params)}\n", style="dim")
        else:
            text.append(f"{node_id or 'every sketch'}: {len(sketches)} sketches\n", style="bold")
        if stats is not None and stats.measured:
            text.append(f"{stats.measured} measured: ")
            for i, (status, n) in enumerate(stats.statuses.items()):
                text.append(", " if i else "")
                text.append(f"{n} {status.replace('_', ' ')}", style="green" if status == "ok" else "red")
            if stats.share is not None:
                text.append(f"; {stats.share:.0%} of the current population")
            text.append("\n")
        state = [s for s in sketches if s in pinned], [s for s in sketches if s in excluded]
        if state[0]:
            ops = sorted({s.split("/")[0] for s in pinned})
            text.append(f"pinned: {', '.join(ops)} searches only its pinned sketches ({len(pinned)}); "
                        "other ops keep every sketch\n", style="cyan")  # fmt: skip
        if state[1]:
            text.append(f"excluded from the search ({len(state[1])} of {len(sketches)})\n", style="red")
        text.append("enter filter · + pin · - exclude", style="dim italic")
        self._put(text)
