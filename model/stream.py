"""Stream inputs: embedding tables of one event stream and the projection to the stream width (`{stream}.embed`).

Each event is its item embedding concatenated with one embedding per side feature (width embedding_dim each, or
d_model for a table shared with the context, `model.share_embeddings`), projected to the stream's d_e. Streams
longer than the stream's `max_len` keep their most recent events.

With `model.time_embedding`, each token adds two learned vectors of width d_e (lookups: no FLOPs): one for the
bucketed gap from the event to the request, one for the gap to the stream's previous event (the first event has a
row of its own, as does the oldest event kept when a history is cut at `max_len`: its predecessor is not in
the batch). Buckets are half-octaves of seconds, log2(1 + gap) * 2, so minutes, hours and days each get
their own rows; gaps past 2^31.5 s share the last.

With `model.recency_embedding`, each token also adds a learned vector for its recency rank among the kept
events (0 = the most recent), exact up to 15 and half-octaves beyond (`recency_bucket`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from kunlun.model.batch import JaggedStream
from kunlun.model.config import KunlunConfig, StreamSchema
from kunlun.model.flops import OpRecord, StreamStats, matmul

TIME_BUCKETS = 64
EXACT_RANKS = 16
RECENCY_BUCKETS = 32  # ranks past 16 * 2^7.5 (about 2,900) share the last row


def time_bucket(gap: Tensor) -> Tensor:
    """(N,) gaps in seconds (>= 0) -> (N,) int64 half-octave buckets in [0, TIME_BUCKETS)."""
    return (2 * torch.log2(1 + gap.clamp(min=0).to(torch.float32))).long().clamp(max=TIME_BUCKETS - 1)


def recency_bucket(rank: Tensor) -> Tensor:
    """(N,) ranks (0 = the latest event) -> (N,) int64 buckets in [0, RECENCY_BUCKETS): the rank itself below
    EXACT_RANKS, then half-octaves EXACT_RANKS + 2 * log2(rank / EXACT_RANKS)."""
    r = rank.clamp(min=0).to(torch.float32)
    far = EXACT_RANKS + (2 * torch.log2(r.clamp(min=EXACT_RANKS) / EXACT_RANKS)).long()
    return torch.where(r < EXACT_RANKS, r.long(), far).clamp(max=RECENCY_BUCKETS - 1)


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
    """Lookups only: (sum T,) ids and side ids -> (sum T, width) with width = `StreamEmbedding.width`.
    `shared`: tables owned by the context (`item` or a side name -> table), read here, not owned."""

    def __init__(self, schema: StreamSchema, dim: int, shared: dict[str, nn.Embedding] | None = None):
        super().__init__()
        shared = shared or {}
        self._shared = shared  # a plain dict: the context registers these parameters, not this module
        self.item = None if "item" in shared else nn.Embedding(schema.vocab, dim)
        self.side = nn.ModuleDict({k: nn.Embedding(v, dim) for k, v in schema.side.items() if k not in shared})
        self.side_names = list(schema.side)
        for t in [self.item, *self.side.values()]:
            if t is not None:
                nn.init.normal_(t.weight, std=0.05)

    def _table(self, key: str) -> nn.Embedding:
        if key in self._shared:
            return self._shared[key]
        return self.item if key == "item" else self.side[key]

    def forward(self, stream: JaggedStream) -> Tensor:
        parts = [self._table("item")(stream.values)] + [self._table(k)(stream.side[k]) for k in self.side_names]
        return torch.cat(parts, dim=-1)

    @staticmethod
    def params(schema: StreamSchema, dim: int, shared: Iterable[str] = ()) -> int:
        own = {"item": schema.vocab, **schema.side}
        return sum(v for k, v in own.items() if k not in set(shared)) * dim


class StreamEmbedding(nn.Module):
    def __init__(self, config: KunlunConfig, name: str, shared: dict[str, nn.Embedding] | None = None):
        super().__init__()
        self.key = f"{name}.embed"
        missing = set(config.shared_tables(name)) - set(shared or {})
        if missing:
            raise ValueError(f"stream {name!r} reads the context's tables {sorted(missing)} "
                             "(model.share_embeddings): pass them as `shared`")
        self.tables = StreamTables(config.schema.streams[name], config.model.embedding_dim, shared)
        d_e = config.model.stream(name).d
        self.proj = nn.Linear(self.width(config, name), d_e)
        self.request_gap = self.previous_gap = None
        if config.model.time_embedding:
            # embedding rows with the sparse optimiser (its larger learning rate): Taobao, inner split, 60k examples,
            # NE 0.918 and 0.913 over two seeds, against 0.944 and 0.946 as dense parameters at the dense rate
            self.request_gap = nn.Embedding(TIME_BUCKETS, d_e)
            self.previous_gap = nn.Embedding(TIME_BUCKETS + 1, d_e)  # + the first event's row
            for t in (self.request_gap, self.previous_gap):
                nn.init.normal_(t.weight, std=0.05)
        self.recency = None
        if config.model.recency_embedding:
            self.recency = nn.Embedding(RECENCY_BUCKETS, d_e)
            nn.init.normal_(self.recency.weight, std=0.05)

    @staticmethod
    def width(config: KunlunConfig, name: str) -> int:
        shared = config.shared_tables(name)
        parts = ["item", *config.schema.streams[name].side]
        return sum(config.model.d_model if k in shared else config.model.embedding_dim for k in parts)

    def forward(self, stream: JaggedStream, request_gap: Tensor, position: Tensor, length: Tensor) -> Tensor:
        """`request_gap` (sum T,): request time - event time; `position` (sum T,): index in its example (oldest
        kept = 0); `length` (sum T,): its example's number of kept events."""
        s = self.proj(self.tables(stream))  # (sum T, d_e)
        if self.recency is not None:
            s = s + self.recency(recency_bucket(length - 1 - position)).to(s.dtype)
        if self.request_gap is None:
            return s
        ts = stream.timestamps
        previous = torch.zeros_like(ts)
        previous[1:] = ts[1:] - ts[:-1]
        previous_bucket = torch.where(position > 0, time_bucket(previous), TIME_BUCKETS)
        # in s's dtype: fp32 rows would otherwise turn a bf16 (autocast) residual stream into fp32 for every layer
        to_request = self.request_gap(time_bucket(request_gap)).to(s.dtype)
        return s + to_request + self.previous_gap(previous_bucket).to(s.dtype)

    @staticmethod
    def flops(config: KunlunConfig, name: str, stats: StreamStats) -> list[OpRecord]:
        width = StreamEmbedding.width(config, name)
        return [matmul(f"{name}.embed", stats.tokens, width, config.model.stream(name).d)]

    @staticmethod
    def params(config: KunlunConfig, name: str) -> dict[str, int]:
        d_e = config.model.stream(name).d
        time = (2 * TIME_BUCKETS + 1) * d_e if config.model.time_embedding else 0
        recency = RECENCY_BUCKETS * d_e if config.model.recency_embedding else 0
        return {"dense": (StreamEmbedding.width(config, name) + 1) * d_e,
                "sparse": time + recency + StreamTables.params(
                    config.schema.streams[name], config.model.embedding_dim, config.shared_tables(name))}
