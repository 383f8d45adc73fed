"""A Llama-architecture decoder with LoRA on all seven projections, random weights, one decode step at a time.

Per layer (pre-norm, as Llama-2): ``h = rmsnorm(x)``; ``qkv = h Wqkv^T + delta_qkv(h)``; rotary embedding of q
and k at the step's position; k and v written into the KV cache; attention of the new token over the cache
(``ctx`` earlier tokens and itself); ``x += o Wo^T + delta_o(o)``; ``h = rmsnorm(x)``;
``gu = h Wgu^T + delta_gateup(h)``; ``a = silu(g) * u``; ``x += a Wdown^T + delta_down(a)``. Then the final norm
and the LM head give the logits. q,k,v and gate,up are one GEMM and one LoRA call each, the way serving engines
group them. ``delta_g(h) = scale * (h A_g[w]^T) B_g[w]^T`` per token with its request's adapter ``w``, computed
by a LoRA backend (``serve.backends``).

Every tensor a LoRA call reads or writes is a static buffer (the same storage every step): a backend binds its
launches once and a CUDA graph of the whole step replays them. The buffers are filled with ``out=`` and
``copy_`` in every step whatever the backend (``none`` included), so the step's time differs between backends
only by their LoRA calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class DecoderShape:
    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    vocab: int

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def groups(self) -> tuple[tuple[str, int, tuple[int, ...]], ...]:
        """The LoRA calls of one layer: (name, h_in, h_outs), in the order the step makes them."""
        h, m = self.hidden, self.intermediate
        return (("qkv", h, (h, h, h)), ("o", h, (h,)), ("gateup", h, (m, m)), ("down", m, (h,)))


# Llama-2 model cards (hidden / intermediate / layers / heads / vocabulary); ``tiny`` runs in the interpreter.
PRESETS = {
    "llama2-7b": DecoderShape("llama2-7b", 4096, 11008, 32, 32, 32000),
    "llama2-13b": DecoderShape("llama2-13b", 5120, 13824, 40, 40, 32000),
    "tiny": DecoderShape("tiny", 64, 160, 2, 4, 256),
}


class LoraCalls(Protocol):
    """A backend's LoRA calls: ``before`` right before a group's base GEMM, ``after`` right after it."""

    def before(self, layer: int, group: str) -> None: ...

    def after(self, layer: int, group: str) -> None: ...


def _rnd(g: torch.Generator, *shape: int, std: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return (torch.randn(*shape, generator=g, device=device) * std).to(dtype)


class Decoder:
    """Weights, KV cache and the static buffers of one batch size. ``adapters``: LoRA adapters held per group,
    stacked as the kernels take them (``A[L, P*r, h_in]``, ``B[L, sum h_outs, r]``)."""

    def __init__(
        self, shape: DecoderShape, *, layers: int, rank: int, adapters: int, batch: int, ctx: int,
        device: torch.device, dtype: torch.dtype, seed: int = 0,
    ) -> None:  # fmt: skip
        self.shape, self.layers, self.rank, self.batch, self.ctx = shape, layers, rank, batch, ctx
        self.device, self.dtype = device, dtype
        g = torch.Generator(device=device).manual_seed(seed)
        h, m, v = shape.hidden, shape.intermediate, shape.vocab

        def w(*dims: int) -> torch.Tensor:
            return _rnd(g, *dims, std=dims[-1] ** -0.5, dtype=dtype, device=device)

        self.embed = _rnd(g, v, h, std=1.0, dtype=dtype, device=device)
        self.norm_final = torch.ones(h, dtype=dtype, device=device)
        self.lm_head = w(v, h)
        self.base = [
            {"ln1": torch.ones(h, dtype=dtype, device=device), "qkv": w(3 * h, h), "o": w(h, h),
             "ln2": torch.ones(h, dtype=dtype, device=device), "gateup": w(2 * m, h), "down": w(h, m)}
            for _ in range(layers)
        ]  # fmt: skip
        # LoRA weights: A scaled so that x A^T is O(1), B so that the delta is comparable to the base output
        self.lora = [
            {name: (_rnd(g, adapters, len(outs) * rank, h_in, std=h_in**-0.5, dtype=dtype, device=device),
                    _rnd(g, adapters, sum(outs), rank, std=0.5 * rank**-0.5, dtype=dtype, device=device))
             for name, h_in, outs in shape.groups()}
            for _ in range(layers)
        ]  # fmt: skip
        hd, heads = shape.head_dim, shape.heads
        kv = (layers, batch, heads, ctx + 1, hd)
        self.k_cache = _rnd(g, *kv, std=1.0, dtype=dtype, device=device)
        self.v_cache = _rnd(g, *kv, std=1.0, dtype=dtype, device=device)
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, device=device, dtype=torch.float32) / hd))
        angle = ctx * inv  # the new token sits at position ctx
        self.cos = torch.cos(angle).repeat(2).to(dtype)
        self.sin = torch.sin(angle).repeat(2).to(dtype)
        self.tokens = torch.randint(0, v, (batch,), generator=g, device=device)
        # static buffers: the LoRA calls' inputs and outputs
        self.buf_in = {name: torch.empty(batch, h_in, dtype=dtype, device=device) for name, h_in, _ in shape.groups()}
        self.buf_out = {
            name: torch.empty(batch, sum(outs), dtype=dtype, device=device) for name, _, outs in shape.groups()
        }
        self.x = torch.empty(batch, h, dtype=dtype, device=device)
        self.logits = torch.empty(batch, v, dtype=dtype, device=device)

    def lora_bytes(self, distinct: int) -> int:
        """Bytes of LoRA weights one step reads with ``distinct`` adapters in the batch."""
        per_adapter = sum(a.shape[1] * a.shape[2] + b.shape[1] * b.shape[2] for a, b in self.lora[0].values())
        return per_adapter * distinct * self.layers * self.embed.element_size()

    def _rmsnorm(self, x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> None:
        var = x.float().pow(2).mean(-1, keepdim=True)
        torch.mul((x.float() * torch.rsqrt(var + 1e-5)).to(self.dtype), weight, out=out)

    def _rope(self, t: torch.Tensor) -> torch.Tensor:
        half = t.shape[-1] // 2
        rotated = torch.cat((-t[..., half:], t[..., :half]), dim=-1)
        return t * self.cos + rotated * self.sin

    def step(self, lora: LoraCalls) -> torch.Tensor:
        """One decode step of every request (writes the new token's K and V at position ctx); the logits."""
        B, h, heads, hd, m = (
            self.batch,
            self.shape.hidden,
            self.shape.heads,
            self.shape.head_dim,
            self.shape.intermediate,
        )
        bi, bo = self.buf_in, self.buf_out
        x = self.x
        x.copy_(self.embed[self.tokens])
        for layer, wts in enumerate(self.base):
            self._rmsnorm(x, wts["ln1"], bi["qkv"])
            lora.before(layer, "qkv")
            torch.matmul(bi["qkv"], wts["qkv"].T, out=bo["qkv"])
            lora.after(layer, "qkv")
            q, k, v = (t.view(B, heads, 1, hd) for t in bo["qkv"].split(h, dim=1))
            self.k_cache[layer, :, :, self.ctx : self.ctx + 1].copy_(self._rope(k))
            self.v_cache[layer, :, :, self.ctx : self.ctx + 1].copy_(v)
            attn = torch.nn.functional.scaled_dot_product_attention(
                self._rope(q), self.k_cache[layer], self.v_cache[layer], scale=1.0 / math.sqrt(hd)
            )
            bi["o"].copy_(attn.view(B, h))
            lora.before(layer, "o")
            torch.matmul(bi["o"], wts["o"].T, out=bo["o"])
            lora.after(layer, "o")
            x += bo["o"]
            self._rmsnorm(x, wts["ln2"], bi["gateup"])
            lora.before(layer, "gateup")
            torch.matmul(bi["gateup"], wts["gateup"].T, out=bo["gateup"])
            lora.after(layer, "gateup")
            gate, up = bo["gateup"].split(m, dim=1)
            torch.mul(torch.nn.functional.silu(gate), up, out=bi["down"])
            lora.before(layer, "down")
            torch.matmul(bi["down"], wts["down"].T, out=bo["down"])
            lora.after(layer, "down")
            x += bo["down"]
        normed = torch.empty_like(x)
        self._rmsnorm(x, self.norm_final, normed)
        torch.matmul(normed, self.lm_head.T, out=self.logits)
        return self.logits
