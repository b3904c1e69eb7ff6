"""Sequence summaries (`L{l}.{stream}.hsp`): Hierarchical Seed Pooling, and PMA as the ablation.

HSP (KUNLUN.md 3.2): learned seeds E (n_seed, d_e), layer-normalised and shared by the batch, attend over the
stream's keys/values (one shared-q GDPA call: short queries, long jagged keys); an output projection follows;
SumKronLinear compresses n_seed tokens to n_tok: Y_b = sum_i Z_i^T H_b W_i (rank k). Open choices (KUNLUN.md 6.7):
the seed-attention activation is `hsp_activation`; softmax normalises over the keys, every other activation is
divided by the example's length (per-row 1/N), so no history is summed unnormalised; Z_i ~ N(0, 1/n_seed),
W_i ~ N(0, 1/(k d_e)). The presets use softmax: a seed can then pick the few recent events that matter, where an
unnormalised activation divided by N dilutes them (Taobao, kunlun-small with time embeddings, inner split,
60k examples: NE 0.9179 with softmax against 0.9553 with silu). Summaries are projected to the context width d
(always, so that FLOPs stay a smooth function of the widths, which the budget solver relies on).

PMA (InterFormer): n_tok learned queries, softmax attention over the stream, output projection; no compression.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kunlun.kernels import gdpa
from kunlun.model.config import StreamConfig
from kunlun.model.flops import OpRecord, StreamStats, gdpa_op, matmul


class SumKronLinear(nn.Module):
    """(B, n_seed, d) -> (B, n_tok, d) with the rank-k Kronecker-structured map sum_i Z_i^T H W_i."""

    def __init__(self, n_seed: int, n_tok: int, d: int, rank: int):
        super().__init__()
        self.n_tok, self.rank = n_tok, rank
        self.z = nn.Parameter(torch.randn(n_seed, rank * n_tok) / n_seed**0.5)  # [Z_1 | ... | Z_k]
        self.w = nn.Parameter(torch.randn(rank, d, d) / (rank * d) ** 0.5)

    def forward(self, h: Tensor) -> Tensor:
        b, _, d = h.shape
        a = torch.matmul(h.transpose(1, 2), self.z)  # (B, d, k * n_tok)
        a = a.view(b, d, self.rank, self.n_tok).permute(2, 0, 3, 1).reshape(self.rank, b * self.n_tok, d)
        return torch.bmm(a, self.w).sum(0).view(b, self.n_tok, d)  # (B, n_tok, d)

    @staticmethod
    def flops(key: str, examples: float, n_seed: int, n_tok: int, d: int, rank: int) -> list[OpRecord]:
        return [matmul(key, examples * d, n_seed, rank * n_tok),
                matmul(key, rank * examples * n_tok, d, d, kind="bmm")]

    @staticmethod
    def params(n_seed: int, n_tok: int, d: int, rank: int) -> int:
        return rank * (n_seed * n_tok + d * d)


class SeedPooling(nn.Module):
    def __init__(self, stream: StreamConfig, d_model: int):
        super().__init__()
        self.pma = stream.pooling == "pma"
        self.heads = stream.heads
        self.activation = "softmax" if self.pma else stream.hsp_activation
        n_queries = stream.summary_tokens if self.pma else stream.seeds
        self.seeds = nn.Parameter(torch.randn(n_queries, stream.d) * 0.5)
        self.seed_norm = None if self.pma else nn.LayerNorm(stream.d)
        self.norm = nn.LayerNorm(stream.d)
        self.kv = nn.Linear(stream.d, 2 * stream.d)
        self.out = nn.Linear(stream.d, stream.d)
        self.compress = None if self.pma else SumKronLinear(stream.seeds, stream.summary_tokens, stream.d,
                                                             stream.kron_rank)
        self.to_model = nn.Linear(stream.d, d_model)
        self.out_norm = nn.LayerNorm(d_model)

    def forward(self, s: Tensor, offsets: Tensor, max_len: int) -> Tensor:
        t, d = s.shape
        b = offsets.numel() - 1
        k, v = self.kv(self.norm(s)).view(t, 2, self.heads, d // self.heads).unbind(1)
        seeds = self.seeds if self.seed_norm is None else self.seed_norm(self.seeds)
        q = seeds.view(-1, self.heads, d // self.heads)
        h = gdpa(q, k, v, kv_offsets=offsets, max_kv_len=max_len, activation=self.activation)  # (B, n_q, H, Dh)
        if self.activation != "softmax":
            h = h / (offsets[1:] - offsets[:-1]).clamp(min=1).view(b, 1, 1, 1).to(h.dtype)
        h = self.out(h.reshape(b, -1, d))  # (B, n_q, d_e)
        if self.compress is not None:
            h = self.compress(h)  # (B, n_tok, d_e)
        return self.out_norm(self.to_model(h))  # (B, n_tok, d)

    @staticmethod
    def flops(key: str, stream: StreamConfig, d_model: int, stats: StreamStats) -> list[OpRecord]:
        pma = stream.pooling == "pma"
        n_q = stream.summary_tokens if pma else stream.seeds
        b = stats.examples
        ops = [
            matmul(key, stats.tokens, stream.d, 2 * stream.d),
            gdpa_op(key, n_q * stats.tokens, b * n_q, stats.tokens, stream.heads, stream.head_dim,
                    "softmax" if pma else stream.hsp_activation),
            matmul(key, b * n_q, stream.d, stream.d),
        ]
        if not pma:
            ops += SumKronLinear.flops(key, b, stream.seeds, stream.summary_tokens, stream.d, stream.kron_rank)
        ops.append(matmul(key, b * stream.summary_tokens, stream.d, d_model))
        return ops

    @staticmethod
    def params(stream: StreamConfig, d_model: int) -> int:
        pma = stream.pooling == "pma"
        d = stream.d
        n = (stream.summary_tokens if pma else stream.seeds) * d + 2 * d + (d + 1) * 3 * d + 2 * d_model
        if not pma:
            n += 2 * d + SumKronLinear.params(stream.seeds, stream.summary_tokens, d, stream.kron_rank)
        return n + (d + 1) * d_model
