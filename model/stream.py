"""Stream inputs: embedding tables of one event stream and the projection to the stream width (`{stream}.embed`).

Each event is its item embedding concatenated with one embedding per side feature (width embedding_dim each),
projected to the stream's d_e. Streams longer than the stream's `max_len` keep their most recent events.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kunlun.model.batch import JaggedStream
from kunlun.model.config import KunlunConfig, StreamSchema
from kunlun.model.flops import OpRecord, StreamStats, matmul


def truncate(stream: JaggedStream, max_len: int) -> JaggedStream:
    """Keep each example's `max_len` most recent events (streams are oldest first)."""
    lengths = stream.lengths
    if stream.values.numel() == 0 or int(lengths.max()) <= max_len:
        return stream
    keep = lengths.clamp(max=max_len)
    offsets = torch.zeros_like(stream.offsets)
    offsets[1:] = torch.cumsum(keep, 0)
    batch = torch.repeat_interleave(torch.arange(keep.numel(), device=keep.device), keep)
    pos = torch.arange(int(offsets[-1]), device=keep.device) - offsets[batch]
    index = stream.offsets[1:][batch] - keep[batch] + pos
    return JaggedStream(stream.values[index], offsets, stream.timestamps[index],
                        {k: v[index] for k, v in stream.side.items()})


class StreamTables(nn.Module):
    """Lookups only: (sum T,) ids and side ids -> (sum T, embedding_dim * (1 + n_side))."""

    def __init__(self, schema: StreamSchema, dim: int):
        super().__init__()
        self.item = nn.Embedding(schema.vocab, dim)
        self.side = nn.ModuleDict({k: nn.Embedding(v, dim) for k, v in schema.side.items()})
        for t in [self.item, *self.side.values()]:
            nn.init.normal_(t.weight, std=0.05)

    def forward(self, stream: JaggedStream) -> Tensor:
        parts = [self.item(stream.values)] + [t(stream.side[k]) for k, t in self.side.items()]
        return torch.cat(parts, dim=-1)

    @staticmethod
    def params(schema: StreamSchema, dim: int) -> int:
        return (schema.vocab + sum(schema.side.values())) * dim


class StreamEmbedding(nn.Module):
    def __init__(self, config: KunlunConfig, name: str):
        super().__init__()
        self.key = f"{name}.embed"
        self.tables = StreamTables(config.schema.streams[name], config.model.embedding_dim)
        self.proj = nn.Linear(self.width(config, name), config.model.stream(name).d)

    @staticmethod
    def width(config: KunlunConfig, name: str) -> int:
        return config.model.embedding_dim * (1 + len(config.schema.streams[name].side))

    def forward(self, stream: JaggedStream) -> Tensor:
        return self.proj(self.tables(stream))  # (sum T, d_e)

    @staticmethod
    def flops(config: KunlunConfig, name: str, stats: StreamStats) -> list[OpRecord]:
        width = StreamEmbedding.width(config, name)
        return [matmul(f"{name}.embed", stats.tokens, width, config.model.stream(name).d)]

    @staticmethod
    def params(config: KunlunConfig, name: str) -> dict[str, int]:
        d_e = config.model.stream(name).d
        return {"dense": (StreamEmbedding.width(config, name) + 1) * d_e,
                "sparse": StreamTables.params(config.schema.streams[name], config.model.embedding_dim)}
