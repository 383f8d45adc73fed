"""A Llama-architecture decoder with LoRA on all seven projections, random weights, one step at a time.

Per layer (pre-norm, as Llama-2): ``h = rmsnorm(x)``; ``qkv = h Wqkv^T + delta_qkv(h)``; rotary embedding of q
and k at each token's position; attention; ``x += o Wo^T + delta_o(o)``; ``h = rmsnorm(x)``;
``gu = h Wgu^T + delta_gateup(h)``; ``a = silu(g) * u``; ``x += a Wdown^T + delta_down(a)``. Then the final norm
and the LM head give the logits. q,k,v and gate,up are one GEMM and one LoRA call each, the way serving engines
group them. ``delta_g(h) = scale * (h A_g[w]^T) B_g[w]^T`` per token with its request's adapter ``w``, computed
by a LoRA backend (``serve.backends``).

``Weights`` (base and every adapter) are built once; a ``Step`` holds the static buffers of one step of ``T``
tokens over them. Two kinds of step:

- ``DecodeStep``: one new token per request at position ``ctx``, its K and V written into a ``KVCache`` of
  ``ctx`` earlier tokens per request, attention over the ``ctx + 1`` tokens; every token's logits.
- ``PrefillStep``: whole prompts, positions ``0 .. len - 1``, causal attention within each prompt (one call per
  prompt); the logits of each prompt's last token only (its first output token), as serving engines compute.

Simplifications of a server, the same for every backend: a decode step attends over a fixed ``ctx`` tokens
rather than each request's growing context, and a prefill step does not write its K and V into the cache.

Every tensor a LoRA call reads or writes is a static buffer (the same storage every step): a backend binds its
launches once and a CUDA graph of the whole step replays them. The buffers are filled with ``out=`` and
``copy_`` in every step whatever the backend (``none`` included), so the step's time differs between backends
only by their LoRA calls.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
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


def _rotary(positions: torch.Tensor, head_dim: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles ``p / 10000^(2i/d)`` at ``positions``, shaped ``[*positions, d]``."""
    inv = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angle = positions.float()[..., None] * inv
    angle = torch.cat((angle, angle), dim=-1)
    return torch.cos(angle).to(dtype), torch.sin(angle).to(dtype)


class Weights:
    """The base model's weights and ``adapters`` LoRA adapters per group, stacked as the kernels take them
    (``A[L, P*r, h_in]``, ``B[L, sum h_outs, r]``)."""

    def __init__(
        self, shape: DecoderShape, *, layers: int, rank: int, adapters: int, device: torch.device,
        dtype: torch.dtype, seed: int = 0,
    ) -> None:  # fmt: skip
        self.shape, self.layers = shape, layers
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

    def lora_bytes(self, distinct: int) -> int:
        """Bytes of LoRA weights one step reads with ``distinct`` adapters in the batch."""
        per_adapter = sum(a.shape[1] * a.shape[2] + b.shape[1] * b.shape[2] for a, b in self.lora[0].values())
        return per_adapter * distinct * self.layers * self.embed.element_size()


class KVCache:
    """K and V of ``ctx`` earlier tokens (random) and a slot for the new one, for up to ``requests`` requests:
    ``k, v[layers, requests, heads, ctx + 1, head_dim]``. A decode step of ``B`` requests uses the first ``B``."""

    def __init__(self, weights: Weights, *, requests: int, ctx: int, seed: int = 1) -> None:
        self.requests, self.ctx = requests, ctx
        g = torch.Generator(device=weights.device).manual_seed(seed)
        shape = weights.shape
        kv = (weights.layers, requests, shape.heads, ctx + 1, shape.head_dim)
        self.k = _rnd(g, *kv, std=1.0, dtype=weights.dtype, device=weights.device)
        self.v = _rnd(g, *kv, std=1.0, dtype=weights.dtype, device=weights.device)


class Step:
    """The static buffers of one step of ``tokens`` tokens over ``weights`` (the LoRA calls' inputs ``buf_in``
    and outputs ``buf_out`` per group, the residual stream ``x``, the ``logits``); a subclass attends.
    ``positions``: the tokens' positions, shaped to broadcast over the rotary embedding's operands."""

    def __init__(
        self, weights: Weights, tokens: int, logit_rows: int, positions: torch.Tensor, seed: int = 2
    ) -> None:  # fmt: skip
        self.weights, self.tokens = weights, tokens
        shape, dtype, device = weights.shape, weights.dtype, weights.device
        self.cos, self.sin = _rotary(positions, shape.head_dim, dtype)
        g = torch.Generator(device=device).manual_seed(seed)
        self.token_ids = torch.randint(0, shape.vocab, (tokens,), generator=g, device=device)
        self.buf_in = {name: torch.empty(tokens, h_in, dtype=dtype, device=device) for name, h_in, _ in shape.groups()}
        self.buf_out = {
            name: torch.empty(tokens, sum(outs), dtype=dtype, device=device) for name, _, outs in shape.groups()
        }
        self.x = torch.empty(tokens, shape.hidden, dtype=dtype, device=device)
        self.logits = torch.empty(logit_rows, shape.vocab, dtype=dtype, device=device)

    @property
    def shape(self) -> DecoderShape:
        return self.weights.shape

    @property
    def lora(self) -> list[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        return self.weights.lora

    @property
    def device(self) -> torch.device:
        return self.weights.device

    @property
    def dtype(self) -> torch.dtype:
        return self.weights.dtype

    def _rmsnorm(self, x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> None:
        var = x.float().pow(2).mean(-1, keepdim=True)
        torch.mul((x.float() * torch.rsqrt(var + 1e-5)).to(self.dtype), weight, out=out)

    def _rope(self, t: torch.Tensor) -> torch.Tensor:
        half = t.shape[-1] // 2
        rotated = torch.cat((-t[..., half:], t[..., :half]), dim=-1)
        return t * self.cos + rotated * self.sin

    def _attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Attention of the step's tokens (``q, k, v[T, h]`` before the rotary embedding) into ``buf_in["o"]``."""
        raise NotImplementedError

    def _head_rows(self) -> torch.Tensor:
        """The rows of ``x`` that go through the final norm and the LM head (one per row of ``logits``)."""
        return self.x

    def step(self, lora: LoraCalls) -> torch.Tensor:
        """Run the step with the backend's LoRA calls; the logits."""
        h, m = self.shape.hidden, self.shape.intermediate
        bi, bo = self.buf_in, self.buf_out
        x = self.x
        x.copy_(self.weights.embed[self.token_ids])
        for layer, wts in enumerate(self.weights.base):
            self._rmsnorm(x, wts["ln1"], bi["qkv"])
            lora.before(layer, "qkv")
            torch.matmul(bi["qkv"], wts["qkv"].T, out=bo["qkv"])
            lora.after(layer, "qkv")
            self._attend(layer, *bo["qkv"].split(h, dim=1))
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
        rows = self._head_rows()
        normed = torch.empty_like(rows)
        self._rmsnorm(rows, self.weights.norm_final, normed)
        torch.matmul(normed, self.weights.lm_head.T, out=self.logits)
        return self.logits


class DecodeStep(Step):
    """One decode step of ``batch`` requests (one token each) over the first ``batch`` requests of ``cache``: the
    new token at position ``ctx``, its K and V written there, attention over the ``ctx + 1`` tokens."""

    def __init__(self, weights: Weights, cache: KVCache, batch: int, seed: int = 2) -> None:
        if batch > cache.requests:
            raise ValueError(f"a decode step of {batch} requests over a cache of {cache.requests}")
        super().__init__(weights, batch, batch, torch.tensor(cache.ctx, device=weights.device), seed)
        self.ctx = cache.ctx
        self.k_cache, self.v_cache = cache.k[:, :batch], cache.v[:, :batch]

    def _attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        B, heads, hd = self.tokens, self.shape.heads, self.shape.head_dim
        q, k, v = (t.view(B, heads, 1, hd) for t in (q, k, v))
        self.k_cache[layer, :, :, self.ctx : self.ctx + 1].copy_(self._rope(k))
        self.v_cache[layer, :, :, self.ctx : self.ctx + 1].copy_(v)
        attn = torch.nn.functional.scaled_dot_product_attention(
            self._rope(q), self.k_cache[layer], self.v_cache[layer], scale=1.0 / math.sqrt(hd)
        )
        self.buf_in["o"].copy_(attn.view(B, self.shape.hidden))


class PrefillStep(Step):
    """One prefill step of whole prompts of ``prompt_lens`` tokens, laid out one after the other: each prompt's
    tokens at positions ``0 .. len - 1`` attend causally within their prompt; the logits of each prompt's last
    token."""

    def __init__(self, weights: Weights, prompt_lens: Sequence[int], seed: int = 2) -> None:
        self.prompt_lens = tuple(int(n) for n in prompt_lens)
        if not self.prompt_lens or min(self.prompt_lens) < 1:
            raise ValueError(f"a prefill step needs prompts of at least one token, got {self.prompt_lens}")
        positions = torch.cat([torch.arange(n, device=weights.device) for n in self.prompt_lens])
        # [T, 1]: the rotary tables [T, 1, d] broadcast over the heads of q, k[T, heads, d]
        super().__init__(weights, sum(self.prompt_lens), len(self.prompt_lens), positions[:, None], seed)
        self.bounds = list(itertools.pairwise(itertools.accumulate(self.prompt_lens, initial=0)))
        self.last = torch.tensor([hi - 1 for _, hi in self.bounds], device=weights.device)
        self.last_x = torch.empty(len(self.prompt_lens), self.shape.hidden, dtype=self.dtype, device=self.device)

    def _attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        T, heads, hd = self.tokens, self.shape.heads, self.shape.head_dim
        q, k = (self._rope(t.view(T, heads, hd)).transpose(0, 1) for t in (q, k))  # [heads, T, d]
        v = v.view(T, heads, hd).transpose(0, 1)
        out = self.buf_in["o"].view(T, heads, hd)
        for lo, hi in self.bounds:
            attn = torch.nn.functional.scaled_dot_product_attention(
                q[:, lo:hi], k[:, lo:hi], v[:, lo:hi], is_causal=True, scale=1.0 / math.sqrt(hd)
            )
            out[lo:hi].copy_(attn.transpose(0, 1))

    def _head_rows(self) -> torch.Tensor:
        torch.index_select(self.x, 0, self.last, out=self.last_x)
        return self.last_x
