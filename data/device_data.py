"""Batches gathered on the device from a dataset copied there once: the GPU training path's loaders.

The host loaders (`kunlun.data.loader`) gather every batch with numpy on a thread and copy it over; on a GPU that
host work competes with the step's kernel launches for the interpreter. Here the dataset's arrays go to the device
once, and so does a plan of every batch (example indices; per stream the offsets and each example's first event),
computed on the host before the first step. A batch is then a few device gathers whose output sizes the plan already
knows, so assembling it never waits for the GPU.

The examples, their order and the truncation to each stream's `max_len` are the host loaders' (the same index
batches, the same [lo, hi) ranges); the training loader's OOV replacement draws from a device generator at the host
loader's rates, so which ids it replaces differs from the host loader's draw.

`KUNLUN_DEVICE_DATA=auto|on|off` (search/training.py): auto uses these loaders on CUDA only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kunlun.data.dataset import EventDataset
from kunlun.data.loader import EvalLoader, TrainLoader
from kunlun.data.vocab import OOV
from kunlun.model.batch import Batch, JaggedStream


class DeviceData:
    """An `EventDataset`'s arrays on `device` (the streams the model reads), copied once."""

    def __init__(self, data: EventDataset, max_lens: Mapping[str, int], device: torch.device | str):
        self.data, self.max_lens, self.device = data, dict(max_lens), torch.device(device)
        self.sparse, self.dense, self.labels, self.request_time = (
            self._put(a) for a in (data.sparse, data.dense, data.labels, data.request_time))
        self.streams = {n: (self._put(data.streams[n].values), self._put(data.streams[n].timestamps),
                            {k: self._put(v) for k, v in data.streams[n].side.items()}) for n in self.max_lens}

    def _put(self, a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)


@dataclass
class _Plan:
    """Every batch's gather arguments, on the device; batch k is rows [start[k], start[k+1]) of `index`."""

    index: Tensor  # (examples,) example indices, batch after batch
    first: dict[str, Tensor]  # stream -> (examples,) lo minus the example's offset in its batch
    offsets: dict[str, Tensor]  # stream -> (examples + batches,) each batch's offsets (B + 1 of them)
    start: list[int]  # host: row where each batch begins, and the end
    events: dict[str, list[int]]  # host: stream -> events in each batch (the gathers' output sizes)


class DeviceBatches:
    """Re-iterable batches of fixed index arrays, gathered on the device. `examples`: their total (what `fit` reads
    for its schedule and its timing window). `drop`: (per-sparse-column rates, stream-id rate, seed) of the OOV
    replacement, redrawn each pass."""

    def __init__(self, data: DeviceData, batches: list[np.ndarray],
                 drop: tuple[list[float], float, int] | None = None):
        self.data, self.drop = data, drop
        self.examples = int(sum(len(b) for b in batches))
        self.plan = _make_plan(data, batches)
        self.rates = torch.tensor(drop[0], dtype=torch.float32, device=data.device) if drop else None

    def __len__(self) -> int:
        return len(self.plan.start) - 1

    def __iter__(self) -> Iterator[Batch]:
        d, p = self.data, self.plan
        generator = None
        if self.drop is not None:
            generator = torch.Generator(d.device)
            generator.manual_seed(self.drop[2])
        for k in range(len(self)):
            a, b = p.start[k], p.start[k + 1]
            idx = p.index[a:b]
            streams = {}
            for name, (values, timestamps, side) in d.streams.items():
                total = p.events[name][k]
                offsets = p.offsets[name][a + k:b + k + 1]
                # event j of example i sits at first[i] + j; output row offsets[i] + j
                gather = torch.repeat_interleave(p.first[name][a:b], offsets[1:] - offsets[:-1], output_size=total)
                gather += torch.arange(total, device=d.device)
                streams[name] = JaggedStream(values[gather], offsets, timestamps[gather],
                                             {s: v[gather] for s, v in side.items()})
            batch = Batch(d.sparse[idx], d.dense[idx], streams, d.request_time[idx], d.labels[idx])
            if generator is not None:
                self._drop_ids(batch, generator)
            yield batch

    def _drop_ids(self, batch: Batch, generator: torch.Generator) -> None:
        """As `TrainLoader._drop_ids`, drawn on the device (the gathers made copies: the dataset is untouched)."""
        sparse_rates, stream_rate, _ = self.drop
        if any(r > 0 for r in sparse_rates):
            mask = torch.rand(batch.sparse.shape, generator=generator, device=batch.sparse.device) < self.rates
            batch.sparse.masked_fill_(mask, OOV)
        if stream_rate > 0:
            for s in batch.streams.values():
                s.values.masked_fill_(torch.rand(s.values.shape, generator=generator, device=s.values.device)
                                      < stream_rate, OOV)


def _make_plan(data: DeviceData, batches: list[np.ndarray]) -> _Plan:
    """The host loaders' ranges (`kunlun.data.batching`: the most recent `max_len` events of [lo, hi)), for every
    batch at once."""
    index = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    start = np.zeros(len(batches) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in batches], out=start[1:])
    first, offsets, events = {}, {}, {}
    for name, bound in data.max_lens.items():
        s = data.data.streams[name]
        hi = s.hi[index]
        lo = np.maximum(s.lo[index], hi - bound)
        lengths = hi - lo
        per_batch = np.split(lengths, start[1:-1]) if batches else []
        offs = [np.concatenate([[0], np.cumsum(n)]) for n in per_batch]
        events[name] = [int(o[-1]) for o in offs]
        offsets[name] = data._put(np.concatenate(offs).astype(np.int64) if offs else np.zeros(0, dtype=np.int64))
        first[name] = data._put(lo - np.concatenate([o[:-1] for o in offs]) if offs else lo)
    return _Plan(data._put(index.astype(np.int64)), first, offsets, [int(x) for x in start], events)


def on_device(train: TrainLoader, evaluation: EvalLoader, device: torch.device | str) -> tuple[DeviceBatches,
                                                                                              DeviceBatches]:
    """The device counterparts of a training and an evaluation loader over the same dataset."""
    data = DeviceData(train.data, train.max_lens, device)
    sparse, stream_rate = train.drop_rates()
    index = train.data.eval_index if evaluation.index is None else evaluation.index
    chunks = [index[i:i + evaluation.batch_size] for i in range(0, len(index), evaluation.batch_size)]
    return (DeviceBatches(data, list(train.index_batches()), (sparse, stream_rate, train.seed)),
            DeviceBatches(data, chunks))
