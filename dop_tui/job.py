"""A tuning job: which scenarios to tune, on which backend, for how many measurements. TOML in, plain data out.

Example (every key but ``ops`` has a default)::

    name = "llama2-7b decode, rank 16"
    model = "llama2-7b"                      # preset; or shapes = [[4096, 4096], [11008, 4096]] (h_in, h_out)
    projections = ["q", "down"]              # of the preset: q k v o gate up down, or groups qkv, gateup;
                                             # or per op: projections = {shrink = ["q", "down"], fused = ["q"]}
    ops = ["shrink", "expand", "fused"]
    ranks = [16]
    dtypes = ["bf16"]
    batch_sizes = [1, 8, 16, 32, 64]         # decode: one token per request ([] for a prefill-only job)
    prefill_segments = [2, 4, 8]             # optional: prefill batches of that many prompts
    prefill_tokens = [128, 2048]             # prompt lengths drawn uniformly in this range (seeded)
    workloads = ["distinct", "uniform", "skewed", "identical"]
    backend = "replay"                       # gpu | replay | interpret | ray
    replay = ["h200-7b-decode.json.gz"]      # the recorded session(s) a replay job answers from
    ray_address = "local"                    # ray: "local" (a loopback-only cluster for the job), "auto" (the
                                             # cluster `ray start` runs here) or a head node's "HOST:PORT"
    ray_measure = "gpu"                      # ray: gpu (every GPU of the cluster) | interpret (CPU workers)
    ray_workers = 0                          # ray: workers to start (0: one per GPU, or the CPUs less one)
    budget = 2000                            # measurements the search may spend (baselines not counted)
    seed = 0
    strategy = "evolution"                   # evolution | random | genetic | grid
    warm_start = "h200-decode-foundation.json.gz"  # optional: a session (or saved model) the cost model starts from
    sketches = ["shrink/vllm/triton"]        # optional: only these sketches for their ops (dop space lists them)

A projection ``p`` of shape ``h_in -> h_out`` gives the scenarios shrink ``h_in -> r``, expand ``r -> h_out``
and fused ``h_in -> r -> h_out`` (each scenario keeps the projection's shape). Scenarios that compute the same
thing are tuned once: shrinks with the same ``h_in`` and projection count (q and gate), expands with the same
outputs (q and down), and workloads whose segments coincide (at batch 1 all four are one token).
Relative paths in a job file are relative to the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dop_tui.measure.backends import BACKENDS
from dop_tui.models import GROUPS, MODELS, PROJECTIONS, get_model
from dop_tui.scenario import DTYPES, OPS, Scenario, make_scenario
from dop_tui.space.sketches import SKETCHES
from dop_tui.workloads import WORKLOADS, decode_lens, prefill_lens

STRATEGIES = ("evolution", "random", "genetic", "grid")


class JobError(ValueError):
    """A job that cannot run, with the key at fault."""


@dataclass(frozen=True)
class Job:
    ops: tuple[str, ...]
    name: str = "tuning job"
    model: str = "llama2-7b"
    projections: tuple[str, ...] = ("q",)
    op_projections: tuple[tuple[str, tuple[str, ...]], ...] = ()  # per-op projections, replacing `projections`
    shapes: tuple[tuple[int, int], ...] = ()  # explicit (h_in, h_out); replaces model/projections when set
    ranks: tuple[int, ...] = (16,)
    dtypes: tuple[str, ...] = ("bf16",)
    batch_sizes: tuple[int, ...] = (1, 8, 16, 32, 64)
    prefill_segments: tuple[int, ...] = ()  # prefill scenarios: this many prompt segments each
    prefill_tokens: tuple[int, int] = (128, 2048)  # their lengths' range
    workloads: tuple[str, ...] = WORKLOADS
    backend: str = "gpu"
    replay: tuple[str, ...] = ()  # session files for the replay backend (the first record of a candidate wins)
    ray_address: str = "local"
    ray_measure: str = "gpu"
    ray_workers: int = 0
    budget: int = 1000
    seed: int = 0
    strategy: str = "evolution"
    warm_start: str = ""  # session or saved cost model that seeds the model
    sketches: tuple[str, ...] = ()  # only these sketches, for the ops they belong to (others: every sketch)
    source: str = field(default="", compare=False)  # the file it came from, for messages

    def __post_init__(self) -> None:
        _check_choices("ops", self.ops, OPS)
        _check_choices("dtypes", self.dtypes, DTYPES)
        _check_choices("workloads", self.workloads, WORKLOADS)
        if not self.shapes:
            if self.model not in MODELS:
                raise JobError(f"model: unknown preset {self.model!r}; expected one of {', '.join(MODELS)}")
            _check_choices("projections", self.projections, PROJECTIONS + tuple(GROUPS))
            for op, projs in self.op_projections:
                _check_choices(f"projections.{op}", (op,), OPS)
                _check_choices(f"projections.{op}", projs, PROJECTIONS + tuple(GROUPS))
        for h_in, h_out in self.shapes:
            if h_in < 1 or h_out < 1:
                raise JobError(f"shapes: sizes must be positive, got [{h_in}, {h_out}]")
        if not self.ranks or any(v < 1 for v in self.ranks):
            raise JobError(f"ranks: expected a non-empty list of positive integers, got {list(self.ranks)}")
        if not self.batch_sizes and not self.prefill_segments:
            raise JobError("batch_sizes: expected decode batch sizes (or prefill_segments for a prefill-only job)")
        if any(not 1 <= n <= 64 for n in self.prefill_segments):
            raise JobError(f"prefill_segments: prompts per batch go from 1 to 64, got {list(self.prefill_segments)}")
        if len(self.prefill_tokens) != 2 or not 1 <= self.prefill_tokens[0] <= self.prefill_tokens[1] <= 32768:
            raise JobError(
                f"prefill_tokens: expected [lo, hi] with 1 <= lo <= hi <= 32768, got {list(self.prefill_tokens)}"
            )
        if any(not 1 <= bs <= 4096 for bs in self.batch_sizes):
            raise JobError(f"batch_sizes: decode batch sizes go from 1 to 4096, got {list(self.batch_sizes)}")
        if self.backend not in BACKENDS:
            raise JobError(f"backend: unknown {self.backend!r}; expected one of {', '.join(BACKENDS)}")
        if self.backend != "ray" and (self.ray_address, self.ray_measure, self.ray_workers) != ("local", "gpu", 0):
            raise JobError(
                f'ray_address, ray_measure, ray_workers: only for backend = "ray" (this job: {self.backend})'
            )
        if self.ray_measure not in ("gpu", "interpret"):
            raise JobError(f"ray_measure: unknown {self.ray_measure!r}; expected gpu or interpret")
        if not self.ray_address:
            raise JobError('ray_address: expected "local", "auto" or a head node\'s "HOST:PORT"')
        if self.ray_workers < 0:
            raise JobError(f"ray_workers: expected 0 (one per GPU) or a positive count, got {self.ray_workers}")
        if self.backend == "replay" and not self.replay:
            raise JobError('replay: a replay job needs the session file(s) to replay (replay = "FILE" or a list)')
        if self.strategy not in STRATEGIES:
            raise JobError(f"strategy: unknown {self.strategy!r}; expected one of {', '.join(STRATEGIES)}")
        if self.budget < 1:
            raise JobError(f"budget: expected a positive number of measurements, got {self.budget}")
        if self.sketches:
            _check_choices("sketches", self.sketches, tuple(sk.id for sk in SKETCHES))
        stray = [i for i in self.sketches if i.split("/")[0] not in self.ops]
        if stray:
            raise JobError(f"sketches: {', '.join(stray)} belong to ops the job does not tune ({', '.join(self.ops)})")

    def shape_list(self, op: str) -> list[tuple[int, tuple[int, ...]]]:
        """``(h_in, h_outs)`` per projection (or group sharing x) that ``op`` is tuned on."""
        if self.shapes:
            return [(h_in, (h_out,)) for h_in, h_out in self.shapes]
        preset = get_model(self.model)
        return [preset.group_shape(p) for p in dict(self.op_projections).get(op, self.projections)]

    def scenarios(self) -> list[Scenario]:
        """Every scenario of the job, each computation once, in a stable order (op, shape, rank, dtype, batch,
        workload)."""
        seen: dict[tuple, Scenario] = {}
        for op in self.ops:
            for h_in, h_outs in self.shape_list(op):
                what = {"shrink": (h_in, len(h_outs)), "expand": h_outs}.get(op, (h_in, h_outs))
                for r in self.ranks:
                    for dt in self.dtypes:
                        for bs in self.batch_sizes:
                            for wl in self.workloads:
                                lens = decode_lens(wl, bs)
                                seen.setdefault((op, what, r, dt, tuple(lens)),
                                                make_scenario(op, h_in, h_outs, r, dt, lens, workload=wl))  # fmt: skip
                        for n in self.prefill_segments:
                            lens = prefill_lens(n, *self.prefill_tokens, seed=n)
                            scn = make_scenario(op, h_in, h_outs, r, dt, lens, workload="prefill")
                            seen.setdefault((op, what, r, dt, tuple(lens)), scn)
        return list(seen.values())

    def resolve(self, name: str) -> Path:
        """A path named in the job, relative to the job file. A session records its paths absolute (older ones
        relative to where they ran); one missing here (the session moved with its folder: a checkout elsewhere,
        or copied out of it) is taken by its name beside the source, else as named from the working folder."""
        folder = Path(self.source).parent if self.source else Path()
        path = folder / name
        if self.source and not path.exists():
            for moved in (folder / path.name, Path(name)):
                if moved.exists():
                    return moved
        return path

    def replay_paths(self) -> list[Path]:
        return [self.resolve(name) for name in self.replay]

    def replay_label(self) -> str:
        """What a replay job answers from, for titles and logs: the files' names."""
        return "replay of " + " + ".join(p.name for p in self.replay_paths())

    def to_mapping(self) -> dict[str, Any]:
        """The job as the TOML table ``job_from_mapping`` reads back, with its paths resolved."""
        d: dict[str, Any] = {"name": self.name, "ops": list(self.ops)}
        if self.shapes:
            d["shapes"] = [list(p) for p in self.shapes]
        else:
            d["model"] = self.model
            d["projections"] = {op: list(p) for op, p in self.op_projections} or list(self.projections)
        d.update(ranks=list(self.ranks), dtypes=list(self.dtypes), batch_sizes=list(self.batch_sizes),
                 workloads=list(self.workloads), backend=self.backend, budget=self.budget, seed=self.seed,
                 strategy=self.strategy)  # fmt: skip
        if self.prefill_segments:
            d.update(prefill_segments=list(self.prefill_segments), prefill_tokens=list(self.prefill_tokens))
        if self.backend == "ray":
            d.update(ray_address=self.ray_address, ray_measure=self.ray_measure, ray_workers=self.ray_workers)
        if self.replay:  # absolute: a session that records its job resumes from any folder
            paths = [str(p.resolve()) for p in self.replay_paths()]
            d["replay"] = paths[0] if len(paths) == 1 else paths
        if self.warm_start:
            d["warm_start"] = str(self.resolve(self.warm_start).resolve())
        if self.sketches:
            d["sketches"] = list(self.sketches)
        return d

    def with_overrides(self, **overrides: Any) -> Job:
        """A copy with the non-None overrides applied (CLI flags win over the file)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _check_choices(key: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    if not values:
        raise JobError(f"{key}: expected a non-empty list")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise JobError(f"{key}: unknown {', '.join(map(repr, bad))}; expected some of {', '.join(allowed)}")


_LIST_KEYS = ("ops", "ranks", "dtypes", "batch_sizes", "workloads", "sketches", "prefill_segments", "prefill_tokens")
_INT_LISTS = ("ranks", "batch_sizes", "prefill_segments", "prefill_tokens")
_SCALARS = {
    "name": str,
    "model": str,
    "backend": str,
    "budget": int,
    "seed": int,
    "strategy": str,
    "warm_start": str,
    "ray_address": str,
    "ray_measure": str,
    "ray_workers": int,
}


def job_from_mapping(d: Mapping[str, Any], source: str = "") -> Job:
    """Validate a parsed job table; ``JobError`` names the first bad key."""
    known = set(_LIST_KEYS) | set(_SCALARS) | {"shapes", "projections", "replay"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise JobError(f"unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}")
    if "ops" not in d:
        raise JobError('ops: missing; which operators to tune, e.g. ops = ["shrink", "expand", "fused"]')
    kw: dict[str, Any] = {"source": source}
    for key in _LIST_KEYS:
        if key in d:
            v = d[key]
            if not isinstance(v, list):
                raise JobError(f"{key}: expected a list, got {v!r}")
            want = int if key in _INT_LISTS else str
            if not all(isinstance(x, want) and not isinstance(x, bool) for x in v):
                raise JobError(f"{key}: expected a list of {want.__name__}, got {v!r}")
            kw[key] = tuple(v)
    for key, typ in _SCALARS.items():
        if key in d:
            if not isinstance(d[key], typ) or isinstance(d[key], bool):
                raise JobError(f"{key}: expected {typ.__name__}, got {d[key]!r}")
            kw[key] = d[key]
    if "replay" in d:
        r = d["replay"]
        if isinstance(r, str):
            r = [r]
        if not (isinstance(r, list) and all(isinstance(x, str) and x for x in r)):
            raise JobError(f"replay: expected a session file or a list of them, got {d['replay']!r}")
        kw["replay"] = tuple(r)
    if "projections" in d:
        p = d["projections"]
        if isinstance(p, dict):
            if not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in p.values()):
                raise JobError(f"projections: expected per-op lists of projection names, got {p!r}")
            kw["op_projections"] = tuple((op, tuple(v)) for op, v in p.items())
        elif isinstance(p, list) and all(isinstance(x, str) for x in p):
            kw["projections"] = tuple(p)
        else:
            raise JobError(f"projections: expected a list of names or a table of lists per op, got {p!r}")
    if "shapes" in d:
        s = d["shapes"]
        if not (isinstance(s, list) and all(isinstance(p, list) and len(p) == 2 for p in s)):
            raise JobError(f"shapes: expected a list of [h_in, h_out] pairs, got {s!r}")
        if not all(isinstance(x, int) for p in s for x in p):
            raise JobError(f"shapes: sizes must be integers, got {s!r}")
        kw["shapes"] = tuple((p[0], p[1]) for p in s)
    return Job(**kw)


def load_job(path: str | Path) -> Job:
    """Read and validate a TOML job file; ``JobError`` for a missing, unparsable or invalid file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise JobError(f"no job file at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(f"cannot read job file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise JobError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise JobError(f"{path} nests arrays or tables too deeply to read") from None
    try:
        return job_from_mapping(data, source=str(path))
    except JobError as exc:
        raise JobError(f"{path}: {exc}") from None
