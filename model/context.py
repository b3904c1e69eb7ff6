"""Context branch inputs: context tokens (`ctx.tokens`) and the gated context summary (`L{l}.ctx.summary`).

Context tokens X (B, n_ctx, d): one embedding per sparse feature (tables of width d, so no projection), the dense
features mapped by one linear layer to `dense_tokens` tokens, and, for the `wukong` family only, each stream
mean-pooled into one token (the baseline without a sequence branch).

Gated summary (InterFormer's X_sum = Gate(MLP(X))): a learned token mix compresses n tokens to n_sum, then a
self-gate Z * sigmoid(Z W_g). It is recomputed every layer from that layer's X.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kunlun.model.batch import Batch
from kunlun.model.config import KunlunConfig
from kunlun.model.flops import OpRecord, matmul
from kunlun.model.stream import StreamEmbedding, StreamTables, truncate


def segment_mean(values: Tensor, offsets: Tensor) -> Tensor:
    """(sum T, D) jagged -> (B, D) per-example mean; empty examples give 0."""
    lengths = offsets[1:] - offsets[:-1]
    batch = torch.repeat_interleave(torch.arange(lengths.numel(), device=values.device), lengths)
    sums = values.new_zeros(lengths.numel(), values.shape[-1]).index_add_(0, batch, values)
    return sums / lengths.clamp(min=1).unsqueeze(-1).to(values.dtype)


def pooled_streams(config: KunlunConfig) -> list[str]:
    """Streams outside the sequence branch: each enters as one mean-pooled context token."""
    return [n for n in config.stream_names if n not in config.sequence_streams]


class ContextTokens(nn.Module):
    key = "ctx.tokens"

    def __init__(self, config: KunlunConfig):
        super().__init__()
        d = config.model.d_model
        self.d = d
        self.tables = nn.ModuleList(nn.Embedding(v, d) for v in config.schema.sparse.values())
        self.by_name = dict(zip(config.schema.sparse, self.tables, strict=True))
        self.n_dense_tokens = config.model.dense_tokens if config.schema.dense > 0 else 0
        self.dense = nn.Linear(config.schema.dense, self.n_dense_tokens * d) if self.n_dense_tokens else None
        # no sequence branch: streams enter as mean-pooled context tokens (their tables are then context parameters)
        self.stream_tables = nn.ModuleDict()
        self.pooled = nn.ModuleDict()
        self.max_len = {}
        for name in pooled_streams(config):
            self.stream_tables[name] = StreamTables(config.schema.streams[name], config.model.embedding_dim,
                                                    self.shared_for(config, name))
            self.pooled[name] = nn.Linear(StreamEmbedding.width(config, name), d)
            self.max_len[name] = config.model.stream(name).max_len
        for t in self.tables:
            nn.init.normal_(t.weight, std=0.05)

    def shared_for(self, config: KunlunConfig, stream: str) -> dict[str, nn.Embedding]:
        """The context tables a stream reads (`model.share_embeddings`)."""
        return {k: self.by_name[f] for k, f in config.shared_tables(stream).items()}

    def forward(self, batch: Batch) -> Tensor:
        b = batch.size
        tokens = [t(batch.sparse[:, i]) for i, t in enumerate(self.tables)]  # each (B, d)
        if self.dense is not None:
            tokens.extend(self.dense(batch.dense).view(b, self.n_dense_tokens, self.d).unbind(1))
        for name, proj in self.pooled.items():
            stream = truncate(batch.streams[name], self.max_len[name])
            tokens.append(proj(segment_mean(self.stream_tables[name](stream), stream.offsets)))
        return torch.stack(tokens, dim=1)  # (B, n_ctx, d)

    @staticmethod
    def flops(config: KunlunConfig, examples: float) -> list[OpRecord]:
        d = config.model.d_model
        ops = []
        if config.schema.dense > 0 and config.model.dense_tokens > 0:
            # raw dense features need no gradient: backward computes the weight gradient only
            ops.append(matmul(ContextTokens.key, examples, config.schema.dense, config.model.dense_tokens * d,
                              input_grad=False))
        for name in pooled_streams(config):
            ops.append(matmul(ContextTokens.key, examples, StreamEmbedding.width(config, name), d))
        return ops

    @staticmethod
    def params(config: KunlunConfig) -> dict[str, int]:
        d = config.model.d_model
        dense, sparse = 0, sum(config.schema.sparse.values()) * d
        if config.schema.dense > 0 and config.model.dense_tokens > 0:
            dense += (config.schema.dense + 1) * config.model.dense_tokens * d
        for n in pooled_streams(config):
            dense += (StreamEmbedding.width(config, n) + 1) * d
            sparse += StreamTables.params(config.schema.streams[n], config.model.embedding_dim,
                                          config.shared_tables(n))
        return {"dense": dense, "sparse": sparse}


class GatedSummary(nn.Module):
    """(B, n, d) -> (B, n_sum, d): token mix then self-gate."""

    def __init__(self, n_in: int, n_out: int, d: int):
        super().__init__()
        self.mix = nn.Parameter(torch.randn(n_in, n_out) / n_in**0.5)
        self.gate = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        z = torch.matmul(x.transpose(1, 2), self.mix).transpose(1, 2)  # (B, n_sum, d)
        return self.norm(z * torch.sigmoid(self.gate(z)))

    @staticmethod
    def flops(key: str, examples: float, n_in: int, n_out: int, d: int) -> list[OpRecord]:
        gate = matmul(key, examples * n_out, d, d)
        gate.transcendentals = examples * n_out * d
        return [matmul(key, examples * d, n_in, n_out), gate]

    @staticmethod
    def params(n_in: int, n_out: int, d: int) -> int:
        return n_in * n_out + (d + 1) * d + 2 * d
