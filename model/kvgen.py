"""Personalized weight generation for GDPA-PFFN (`L{l}.{stream}.kvgen`): per-example K, V of n_kv rows.

KUNLUN.md 3.8 leaves the generator open; three are offered, all feeding the same kernel:
- `tokens` (default): the context summary X_sum (B, n_sum, d) is token-mixed to n_kv rows (skipped when
  n_kv == n_sum) and projected to K and V; K is layer-normalised per head (QK-norm keeps the activation's inputs
  bounded, as production GDPA does).
- `lowrank`: a rank-r hypernetwork: z = flatten(X_sum) W_1 (B, r); [K, V] = z W_2 + b (b: the static part).
- `interformer`: InterFormer's PFFN, K static (learned, shared by the batch), V = the (mixed) summary projected.
One generator per stream and layer; a generator above `kvgen.max_params` parameters is a validation error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from kunlun.model.flops import OpRecord, matmul

if TYPE_CHECKING:  # config.py checks kvgen sizes with kvgen_params: importing it at run time would be a cycle
    from kunlun.model.config import ModelConfig, StreamConfig


def kvgen_params(model: ModelConfig, stream: StreamConfig) -> int:
    d, d_e, n_sum, n_kv = model.d_model, stream.d, model.summary_tokens, stream.kv_len
    kind = model.kvgen.kind
    mix = n_sum * n_kv if n_kv != n_sum else 0
    if kind == "tokens":
        return mix + (d + 1) * 2 * d_e + 2 * stream.head_dim
    if kind == "lowrank":
        r = model.kvgen.rank
        return (n_sum * d + 1) * r + (r + 1) * 2 * n_kv * d_e + 2 * stream.head_dim
    return mix + n_kv * d_e + (d + 1) * d_e


class KvGen(nn.Module):
    def __init__(self, model: ModelConfig, stream: StreamConfig):
        super().__init__()
        self.kind = model.kvgen.kind
        self.n_kv, self.heads, self.d_e = stream.kv_len, stream.heads, stream.d
        n_sum, d = model.summary_tokens, model.d_model
        mixes = self.kind != "lowrank" and self.n_kv != n_sum
        self.mix = nn.Parameter(torch.randn(n_sum, self.n_kv) / n_sum**0.5) if mixes else None
        if self.kind == "tokens":
            self.proj = nn.Linear(d, 2 * self.d_e)
        elif self.kind == "lowrank":
            self.down = nn.Linear(n_sum * d, model.kvgen.rank)
            self.up = nn.Linear(model.kvgen.rank, 2 * self.n_kv * self.d_e)
        else:
            self.k_static = nn.Parameter(torch.randn(self.n_kv, self.d_e) / self.d_e**0.5)
            self.proj = nn.Linear(d, self.d_e)
        if self.kind != "interformer":
            self.k_norm = nn.LayerNorm(stream.head_dim)

    def forward(self, x_sum: Tensor) -> tuple[Tensor, Tensor]:
        b = x_sum.shape[0]
        shape = (b, self.n_kv, self.heads, self.d_e // self.heads)
        if self.kind == "lowrank":
            kv = self.up(self.down(x_sum.flatten(1))).view(b, 2, *shape[1:])
            return self.k_norm(kv[:, 0]), kv[:, 1]
        if self.mix is not None:
            x_sum = torch.matmul(x_sum.transpose(1, 2), self.mix).transpose(1, 2)  # (B, n_kv, d)
        if self.kind == "tokens":
            k, v = self.proj(x_sum).view(b, self.n_kv, 2, *shape[2:]).unbind(2)
            return self.k_norm(k), v
        k = self.k_static.view(1, *shape[1:]).expand(shape)
        if not torch.is_grad_enabled():
            # a view of a parameter made under no_grad still requires grad but has no grad_fn, which hooks that
            # walk module outputs (FlopCounterMode's module tracker) cannot handle
            k = k.detach()
        return k, self.proj(x_sum).view(shape)

    @staticmethod
    def flops(key: str, model: ModelConfig, stream: StreamConfig, examples: float) -> list[OpRecord]:
        d, d_e, n_sum, n_kv = model.d_model, stream.d, model.summary_tokens, stream.kv_len
        kind = model.kvgen.kind
        if kind == "lowrank":
            r = model.kvgen.rank
            return [matmul(key, examples, n_sum * d, r), matmul(key, examples, r, 2 * n_kv * d_e)]
        ops = [matmul(key, examples * d, n_sum, n_kv)] if n_kv != n_sum else []
        ops.append(matmul(key, examples * n_kv, d, 2 * d_e if kind == "tokens" else d_e))
        return ops
