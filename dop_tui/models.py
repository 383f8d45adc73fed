"""Model presets: the projections a LoRA adapter touches, their shapes, and the groups that share an input.

Llama-2 shapes from the model cards (hidden / intermediate / layers): 7B 4096 / 11008 / 32,
13B 5120 / 13824 / 40. Serving engines call q,k,v together and gate,up together (one shrink reads x once).
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECTIONS = ("q", "k", "v", "o", "gate", "up", "down")
GROUPS = {"qkv": ("q", "k", "v"), "gateup": ("gate", "up")}


@dataclass(frozen=True)
class ModelPreset:
    name: str
    hidden: int
    intermediate: int
    layers: int

    def proj_shape(self, proj: str) -> tuple[int, int]:
        """``(h_in, h_out)`` of one projection."""
        h, m = self.hidden, self.intermediate
        shapes = {
            "q": (h, h),
            "k": (h, h),
            "v": (h, h),
            "o": (h, h),
            "gate": (h, m),
            "up": (h, m),
            "down": (m, h),
        }
        if proj not in shapes:
            raise ValueError(f"unknown projection {proj!r}; expected one of {', '.join(PROJECTIONS + tuple(GROUPS))}")
        return shapes[proj]

    def group_shape(self, proj: str) -> tuple[int, tuple[int, ...]]:
        """``(h_in, h_outs)`` of a projection or of a group of projections that share their input."""
        members = GROUPS.get(proj, (proj,))
        shapes = [self.proj_shape(p) for p in members]
        return shapes[0][0], tuple(s[1] for s in shapes)


MODELS = {
    "llama2-7b": ModelPreset("llama2-7b", 4096, 11008, 32),
    "llama2-13b": ModelPreset("llama2-13b", 5120, 13824, 40),
}


def get_model(name: str) -> ModelPreset:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return MODELS[name]
