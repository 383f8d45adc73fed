"""The sketch tree: op -> family -> sketch, each node with its measurements, best and population share."""

from __future__ import annotations

from collections import Counter

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from dop_tui.space import SKETCHES
from dop_tui.ui.state import NodeStats, under

STATS_WIDTH = 18  # " 1234 10.05us  38%"


class SketchTree(Tree[str]):
    """Node data is the sketch-tree id ("" for the root, "shrink", "shrink/splitk", "shrink/splitk/dot").

    A family with one sketch shows as one node, ``splitk/dot`` (its id is the sketch's), as file browsers
    compact a folder with one child. Enter (or a click) on a node filters the other panes to it; the app's
    pin and exclude keys act on the node under the cursor.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("all sketches", data="", id=id)
        self.guide_depth = 2
        self.auto_expand = False
        self.show_root = True
        self._by_id: dict[str, TreeNode[str]] = {"": self.root}
        self._names: dict[str, str] = {"": "all sketches"}
        self._ops: tuple[str, ...] = ()

    def set_ops(self, ops: tuple[str, ...]) -> None:
        """(Re)build the tree for the ops of a job; keeps nothing from the previous job."""
        if ops == self._ops:
            return
        self._ops = ops
        self.clear()
        self._by_id, self._names = {"": self.root}, {"": "all sketches"}
        chosen = [sk for sk in SKETCHES if sk.op in ops]
        family_size = Counter((sk.op, sk.family) for sk in chosen)
        for sk in chosen:
            op = self._by_id.get(sk.op) or self._add(self.root, sk.op, sk.op)
            if family_size[sk.op, sk.family] == 1:
                self._add(op, sk.id, f"{sk.family}/{sk.name}", leaf=True)
                continue
            family = f"{sk.op}/{sk.family}"
            parent = self._by_id.get(family) or self._add(op, family, sk.family)
            self._add(parent, sk.id, sk.name, leaf=True)
        self.root.expand_all()

    def _add(self, parent: TreeNode[str], node_id: str, name: str, leaf: bool = False) -> TreeNode[str]:
        node = parent.add_leaf(name, data=node_id) if leaf else parent.add(name, data=node_id, expand=True)
        self._by_id[node_id] = node
        self._names[node_id] = name
        return node

    @property
    def node_ids(self) -> list[str]:
        return list(self._by_id)

    @property
    def cursor_id(self) -> str | None:
        """The id of the node under the cursor."""
        node = self.cursor_node
        return None if node is None else node.data

    def sketch_ids(self, node_id: str) -> list[str]:
        """The sketch (leaf) ids at or under ``node_id``."""
        return [n for n in self._by_id if n.count("/") == 2 and under(n, node_id)]

    def show(
        self, stats: dict[str, NodeStats], pinned: set[str], excluded: set[str], selected: str, one_scenario: bool
    ) -> None:
        """Relabel every node: ``name  measured  best  share``, marking pins, exclusions and the filter."""
        width = self.scrollable_content_region.width - 1
        for node_id, node in self._by_id.items():
            leaves = self.sketch_ids(node_id)
            mark, style = " ", ""
            if leaves and all(s in excluded for s in leaves):
                mark, style = "⊘", "dim strike"
            elif leaves and any(s in pinned for s in leaves):
                mark, style = "●", "bold"
            label = Text(mark, style="red" if mark == "⊘" else "cyan")
            name, st = self._names[node_id], stats.get(node_id)
            room = width - self.guide_depth * _depth(node) - (2 if node.children else 0)  # this row's columns
            if st is not None and len(name) > room - STATS_WIDTH - 2 > 1:  # cut: the figures keep their columns
                name = name[: room - STATS_WIDTH - 3] + "…"
            label.append(name, style=style + (" reverse" if node_id == selected else ""))
            if st is not None:
                label.append(" " * max(1, room - len(label) - STATS_WIDTH))
                label.append_text(_stats(st, one_scenario))
            if label != node.label:
                node.set_label(label)


def _depth(node: TreeNode[str]) -> int:
    depth = 0
    while node.parent is not None:
        node, depth = node.parent, depth + 1
    return depth


def _stats(st: NodeStats, one_scenario: bool) -> Text:
    out = Text(f"{st.measured:>5} ", style="dim" if not st.measured else "")
    if one_scenario:
        best = "-" if st.best_us is None else f"{st.best_us:.2f}us" if st.best_us < 100 else f"{st.best_us:.0f}us"
    else:
        best = f"{st.best_speedup:.2f}x" if st.best_speedup is not None else "-"
    out.append(f"{best:>7}", style="green" if best != "-" else "dim")
    out.append(f"{st.share:>5.0%}" if st.share is not None else "    -", style="cyan")
    return out
