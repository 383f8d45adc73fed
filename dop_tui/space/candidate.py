"""A candidate is plain data: a sketch id plus its parameter values; hashable, printable, storable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Value = int


@dataclass(frozen=True, order=True)
class Candidate:
    sketch: str
    config: tuple[tuple[str, Value], ...]

    @classmethod
    def make(cls, sketch: str, config: Mapping[str, Value]) -> Candidate:
        return cls(sketch, tuple(sorted((k, int(v)) for k, v in config.items())))

    @property
    def params(self) -> dict[str, Value]:
        return dict(self.config)

    def __str__(self) -> str:
        return f"{self.sketch}[{', '.join(f'{k}={v}' for k, v in self.config)}]"

    def to_json(self) -> dict[str, Any]:
        return {"sketch": self.sketch, "config": self.params}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Candidate:
        return cls.make(d["sketch"], d["config"])
