"""Turn the H200 timing logs of ``bench/h200_decode.py time`` into one replayable session file.

  python bench/to_session.py OUT.json.gz SUMMARY.json [SUMMARY.json ...]

Each SUMMARY.json sits beside its ``time_runN.jsonl.gz`` (same N). Full-method measurements come first, so
a replay answers with them; screening measurements (graph of 30 calls over at most 30 copies) follow with
their method named.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from h200_decode import decode_scenarios

from dop_tui.measure.record import Measurement
from dop_tui.measure.roofline import roofline
from dop_tui.session.store import Session, save
from dop_tui.space import DEFAULT_DEVICE

ENV = {"device": "NVIDIA H200", "torch": "2.11.0+cu130", "triton": "3.6.0"}


def main(out: str, summaries: list[str]) -> None:
    session = Session(job={"command": "bench/h200_decode.py time", "configs_per_sketch": 40}, device=ENV["device"],
                      env=ENV)  # fmt: skip
    final, screen = [], []
    for path in map(Path, summaries):
        rows = json.loads(path.read_text())
        groups = {(r["op"], r["h_in"], r["h_out"], r["rank"]) for r in rows}
        for op, h_in, h_out, rank in groups:
            for s in decode_scenarios(op, h_in, (h_out,), rank, [1, 8, 16, 32, 64]):
                session.scenarios.setdefault(s.key, s)
        log = path.with_name(path.name.replace("time_summary_", "time_").replace(".json", ".jsonl.gz"))
        with gzip.open(log, "rt") as lines:
            records = [json.loads(line) for line in lines]
        for r in records:
            scn = session.scenarios[r["scenario"]]
            rf = roofline(scn, DEFAULT_DEVICE)
            common = dict(bytes=rf.bytes, flops=rf.flops, floor_us=rf.floor_s * 1e6, env=ENV)
            if r.get("status") == "wrong" or "error" in r:
                status = "wrong" if r.get("status") == "wrong" else "launch_error"
                screen.append(
                    Measurement(
                        r["scenario"],
                        r["kernel"],
                        r["config"],
                        status,
                        rel_error=r.get("rel_error"),
                        message=str(r.get("error") or ""),
                        **common,
                    )
                )
                continue
            is_final = r.get("pass") == "final"
            m = Measurement(
                r["scenario"], r["kernel"], r["config"], "ok", us=r["us"], us_min=r.get("us_min"),
                us_max=r.get("us_max"), method=r["method"] if is_final else f"screen: {r['method']}",
                screening=not is_final, do_bench_us=r["do_bench_us"] if is_final else None, **common,
            )  # fmt: skip
            (final if is_final else screen).append(m)
    session.measurements = final + screen
    save(session, out)
    print(f"{out}: {len(session.scenarios)} scenarios, {len(final)} full-method and {len(screen)} screening records")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
