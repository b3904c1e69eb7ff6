"""Jagged batching: a `Batch` from example indices with one vectorised gather per stream (no Python loop over
examples), keeping each stream's most recent `max_len` events."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from kunlun.data.dataset import EventDataset, StreamHistory
from kunlun.model.batch import Batch, JaggedStream


def assemble_batch(data: EventDataset, idx: np.ndarray, max_lens: Mapping[str, int]) -> Batch:
    """`max_lens`: stream -> bound; streams not named are left out of the batch (the model does not run them).
    """
    streams = {name: _jagged(data.streams[name], idx, bound) for name, bound in max_lens.items()}
    return Batch(
        sparse=torch.from_numpy(data.sparse[idx]),
        dense=torch.from_numpy(data.dense[idx]),
        streams=streams,
        request_time=torch.from_numpy(data.request_time[idx]),
        labels=torch.from_numpy(data.labels[idx]),
    )


def _jagged(s: StreamHistory, idx: np.ndarray, bound: int) -> JaggedStream:
    hi = s.hi[idx]
    lo = np.maximum(s.lo[idx], hi - bound)
    lengths = hi - lo
    offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    gather = np.repeat(lo - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
    return JaggedStream(
        values=torch.from_numpy(s.values[gather]),
        offsets=torch.from_numpy(offsets),
        timestamps=torch.from_numpy(s.timestamps[gather]),
        side={k: torch.from_numpy(v[gather]) for k, v in s.side.items()},
    )
