"""Loaders over an `EventDataset`: a training loader that shuffles per epoch and wraps epochs until a number
of examples is reached, and a re-iterable evaluation loader in a fixed order. Batches are assembled on a
background thread (numpy gathers release the GIL) so assembly overlaps the training step; torch uses the
remaining cores."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from kunlun.data.batching import assemble_batch
from kunlun.data.dataset import EventDataset
from kunlun.data.vocab import OOV
from kunlun.model.batch import Batch

PREFETCH = 4


@dataclass
class TrainLoader:
    data: EventDataset
    max_lens: Mapping[str, int]
    batch_size: int
    examples: int  # total training examples yielded; epochs wrap, the last batch is cut to land exactly
    seed: int = 0
    # Share of training ids replaced by the OOV bucket. Vocabularies are fitted on the training split, so without
    # it the OOV row is never trained, yet it is what unseen evaluation ids read. None: per column, the data's own
    # measured novelty (`EventDataset.oov_rates`); a number: that rate for every column (ablations, tests).
    oov_rate: float | None = None

    @property
    def epochs(self) -> float:
        return self.examples / len(self.data.train_index)

    def index_batches(self) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        pending = np.zeros(0, dtype=np.int64)
        left = self.examples
        while left > 0:
            while len(pending) < min(self.batch_size, left):
                pending = np.concatenate([pending, rng.permutation(self.data.train_index)])
            n = min(self.batch_size, left)
            yield pending[:n]
            pending, left = pending[n:], left - n

    def drop_rates(self) -> tuple[list[float], float]:
        """The OOV replacement rate of each sparse column (schema order) and of stream ids."""
        if self.oov_rate is None:
            return [self.data.oov_rates.get(k, 0.0) for k in self.data.schema.sparse], self.data.stream_oov_rate
        return [self.oov_rate] * len(self.data.schema.sparse), self.oov_rate

    def __iter__(self) -> Iterator[Batch]:
        rng = np.random.default_rng([self.seed, 1])  # its own stream: the example order does not depend on it
        sparse, stream_rate = self.drop_rates()
        rates = torch.tensor(sparse, dtype=torch.float64)
        return prefetch(self._drop_ids(assemble_batch(self.data, i, self.max_lens), rng, rates, stream_rate)
                        for i in self.index_batches())

    @staticmethod
    def _drop_ids(batch: Batch, rng: np.random.Generator, rates: torch.Tensor, stream_rate: float) -> Batch:
        if bool((rates > 0).any()):
            batch.sparse[torch.from_numpy(rng.random(batch.sparse.shape)) < rates] = OOV
        if stream_rate > 0:
            for s in batch.streams.values():
                s.values[torch.from_numpy(rng.random(s.values.shape) < stream_rate)] = OOV
        return batch


@dataclass
class EvalLoader:
    data: EventDataset
    max_lens: Mapping[str, int]
    batch_size: int
    index: np.ndarray | None = None  # default: the evaluation split

    def __iter__(self) -> Iterator[Batch]:
        index = self.data.eval_index if self.index is None else self.index
        chunks = (index[i:i + self.batch_size] for i in range(0, len(index), self.batch_size))
        return prefetch(assemble_batch(self.data, c, self.max_lens) for c in chunks)


_DONE = object()


def prefetch(items: Iterator[Batch], depth: int = PREFETCH) -> Iterator[Batch]:
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(_DONE)
        except BaseException as e:  # surfaced in the consumer, not lost in the thread
            q.put(e)

    threading.Thread(target=work, daemon=True).start()
    try:
        while (item := q.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not q.empty():  # unblock a producer waiting on a full queue
            q.get_nowait()
