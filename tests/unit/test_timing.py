"""``time_graph``'s short graph, with the CUDA calls replaced by a script of replay times: a candidate whose probe
is slower than the bar gets a short graph; if that graph reads at or under the bar, the probe was slowed, not the
kernel, and the candidate is timed again in full."""

import pytest
import torch

from dop_tui.measure import timing


@pytest.fixture
def scripted(monkeypatch):
    """Replace the device: ``_replay_us`` answers from a script (the probe's one replay, then the graph's)."""
    script: list[list[float]] = []
    captured: list[int] = []

    class Dummy:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def wait_stream(self, other):
            return None

    monkeypatch.setattr(timing, "bind", lambda kid, ops, cfg: lambda: None)
    monkeypatch.setattr(torch.cuda, "Stream", lambda: Dummy())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: Dummy())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda: Dummy())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(timing, "_capture", lambda runs, calls: captured.append(calls) or calls)
    monkeypatch.setattr(timing, "_replay_us", lambda graph, calls, replays: script.pop(0)[:replays])
    return script, captured


def test_a_short_graph_under_the_bar_is_timed_again_in_full(scripted):
    script, captured = scripted
    script += [[89.0], [2.4] * 3, [2.5], [2.6] * 5]  # stalled probe, short graph, then probe and graph again
    t = timing.time_graph("expand/tile/dot", [object()] * 20, {}, calls=100, replays=5, slow_us=3.0)
    assert not t.short and t.us == 2.6 and ", short" not in t.method
    assert not script and captured[-1] == 100  # the full graph: all its calls


def test_a_short_graph_over_the_bar_stays_short(scripted):
    script, _ = scripted
    script += [[89.0], [40.0] * 3]
    t = timing.time_graph("expand/tile/dot", [object()] * 20, {}, calls=100, replays=5, slow_us=3.0)
    assert t.short and t.us == 40.0 and "short (probe 89.0 us)" in t.method and not script
