"""`synthetic_batch(config, batch_size, seed)`: random valid batches for tests and benchmarks (not learnable).

Stream lengths are long-tailed (log-normal around a quarter of the stream's max_len, capped at 1.5 x max_len
so that truncation is exercised), and every batch of 4 or more examples includes an empty stream and a
length-1 one."""

from __future__ import annotations

import torch

from kunlun.model.batch import Batch, JaggedStream
from kunlun.model.config import KunlunConfig


def _lengths(gen: torch.Generator, batch_size: int, max_len: int) -> torch.Tensor:
    mean = max(max_len / 4, 1.0)
    raw = torch.exp(torch.randn(batch_size, generator=gen) * 1.0 + torch.log(torch.tensor(mean)))
    lengths = raw.round().clamp(0, int(1.5 * max_len) + 1).to(torch.int64)
    if batch_size >= 4:
        lengths[0], lengths[1] = 0, 1
    return lengths


def synthetic_batch(config: KunlunConfig, batch_size: int, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    schema = config.schema
    sparse = torch.stack([torch.randint(0, v, (batch_size,), generator=gen) for v in schema.sparse.values()], dim=1) \
        if schema.sparse else torch.zeros(batch_size, 0, dtype=torch.int64)
    dense = torch.randn(batch_size, schema.dense, generator=gen)
    request_time = torch.randint(10**6, 2 * 10**6, (batch_size,), generator=gen)
    streams = {}
    for name, s in schema.streams.items():
        lengths = _lengths(gen, batch_size, config.model.stream(name).max_len)
        offsets = torch.zeros(batch_size + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(lengths, 0)
        total = int(offsets[-1])
        batch = torch.repeat_interleave(torch.arange(batch_size), lengths)
        # strictly earlier than the request, oldest first
        gaps = torch.randint(1, 10**5, (total,), generator=gen)
        cs = torch.cumsum(gaps, 0)
        age = cs[offsets[1:][batch] - 1] - cs + gaps  # gaps summed from each event to its example's newest
        streams[name] = JaggedStream(
            values=torch.randint(0, s.vocab, (total,), generator=gen),
            offsets=offsets,
            timestamps=request_time[batch] - age,
            side={k: torch.randint(0, v, (total,), generator=gen) for k, v in s.side.items()},
        )
    labels = torch.randint(0, 2, (batch_size, config.num_tasks), generator=gen).to(torch.float32)
    return Batch(sparse, dense, streams, request_time, labels)
