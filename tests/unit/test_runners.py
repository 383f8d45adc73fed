"""Runners: interpreter correctness with error kinds, replay returns exactly what was recorded."""

import pytest
from paths import ROOT

from dop_tui.measure.record import Measurement
from dop_tui.measure.runners import InterpretRunner, ReplayRunner, classify_exception
from dop_tui.scenario import make_scenario

SCN = make_scenario("shrink", 96, (40,), 8, "fp32", [3, 1, 2])
TILE = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 32, "WEIGHT_HINT": 0, "num_warps": 4, "num_stages": 2}


def test_interpret_runner_ok_invalid_and_baseline():
    bad = dict(TILE, BLOCK_M=128)  # exceeds the padded longest segment (4)
    res = InterpretRunner().measure(
        SCN, [("shrink/tile/dot", TILE), ("shrink/tile/dot", bad), ("shrink/baseline/vllm", {})]
    )
    assert [m.status for m in res] == ["ok", "invalid", "ok"]
    assert res[0].rel_error < 1e-5 and res[0].us is None and res[0].bytes > 0
    assert "BLOCK_M=128" in res[1].message


def test_interpret_runner_missing_parameter_is_invalid():
    # a config missing a parameter is rejected by the space before anything runs
    res = InterpretRunner().measure(SCN, [("shrink/baseline/punica", {}), ("shrink/splitk/dot", dict(TILE))])
    assert res[0].status == "ok"
    assert res[1].status == "invalid" and "missing parameter 'SPLIT_K'" in res[1].message


def test_classify_exception():
    assert classify_exception("CompilationError: at 3:4") == "compile_error"
    assert classify_exception("OutOfResources: shared memory") == "compile_error"
    assert classify_exception("RuntimeError: CUDA error: an illegal memory access") == "launch_error"


def test_replay_returns_exactly_what_was_recorded():
    rec = Measurement(
        SCN.key,
        "shrink/tile/dot",
        TILE,
        "ok",
        us=4.25,
        us_min=4.2,
        us_max=4.3,
        method="graph",
        bytes=1e6,
        flops=2e6,
        floor_us=0.5,
    )
    wrong = Measurement(SCN.key, "shrink/gemv/fma", {"BLOCK_T": 1}, "wrong", rel_error=0.5)
    runner = ReplayRunner([Measurement.from_json(rec.to_json()), wrong])
    got = runner.measure(
        SCN,
        [
            ("shrink/tile/dot", dict(reversed(list(TILE.items())))),
            ("shrink/gemv/fma", {"BLOCK_T": 1}),
            ("shrink/tile/dot", dict(TILE, BLOCK_K=64)),
        ],
    )
    assert got[0] == rec and got[0].us == 4.25
    assert got[1].status == "wrong"
    assert got[2].status == "unmeasured" and got[2].us is None
    other = make_scenario("shrink", 96, (40,), 8, "fp32", [2, 2, 2])
    assert runner.measure(other, [("shrink/tile/dot", TILE)])[0].status == "unmeasured"


def test_measurement_rates_and_validation():
    m = Measurement("s", "k", {}, "ok", us=2.0, bytes=8.6e6, flops=8.4e6, floor_us=2.0)
    assert m.gbps == pytest.approx(4300) and m.tflops == pytest.approx(4.2) and m.floor_fraction == 1.0
    assert Measurement("s", "k", {}, "timeout").gbps is None
    with pytest.raises(ValueError, match="unknown measurement status"):
        Measurement("s", "k", {}, "fast")
    with pytest.raises(ValueError, match="unknown measurement fields"):
        Measurement.from_json({**m.to_json(), "speed": 1})


def test_gpu_workers_keep_scenario_states_within_their_memory_share():
    from dop_tui.measure.gpu_runner import LruCache

    built = []

    def build(key: str, nbytes: int):
        return lambda: (built.append(key) or f"state {key}", nbytes)

    cache = LruCache(max_bytes=100)
    assert cache.get("a", build("a", 40)) == "state a" and cache.get("b", build("b", 40)) == "state b"
    assert cache.get("a", build("a", 40)) == "state a" and built == ["a", "b"]  # kept: not built again
    cache.get("c", build("c", 40))  # over 100 bytes: the least recently used (b) goes
    assert len(cache) == 2
    cache.get("a", build("a", 40))
    cache.get("b", build("b", 40))
    assert built == ["a", "b", "c", "b"]
    cache.get("huge", build("huge", 500))  # the newest always stays, alone
    assert len(cache) == 1 and cache.get("huge", build("huge", 500)) == "state huge" and built[-1] == "huge"


def test_short_graph_timings_are_marked_and_never_the_best_of_their_scenario():
    """On the H200 job's session: short graphs carry their probe in the method, and no summary takes one as a
    scenario's best while a full timing exists. Their few input copies can sit in L2: in this session three short
    graphs (probes slowed by a stall) read 2-4% faster than every full timing of their scenario."""

    from dop_tui.session.store import load
    from dop_tui.session.summary import best_per_scenario

    session = load(ROOT / "sessions" / "h200-7b-decode.json.gz")
    ok = [m for m in session.measurements if m.status == "ok" and m.us is not None]
    short = [m for m in ok if m.short]
    assert short and all("(probe " in m.method for m in short)
    fastest = {}
    for m in ok:
        if m.scenario not in fastest or m.us < fastest[m.scenario].us:
            fastest[m.scenario] = m
    assert any(m.short for m in fastest.values())  # the case the rule is for is in the data
    full = {m.scenario for m in ok if not m.short and "/baseline/" not in m.kernel}
    picked = {b.scenario: b.measurement for b in best_per_scenario(session)}
    assert full <= set(picked) and not any(picked[k].short for k in full)
