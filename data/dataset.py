"""`EventDataset`: every event is an example; flat numpy arrays ready for vectorised batching.

Built from an `EventTable` by `build_dataset`: rows sorted by (user, time); the protocol's time split; ids
remapped with vocabularies fitted on the training split (OOV = 0); dense features standardised on the
training split, plus log1p of each stream's history length where the table asks for it; each stream's
events stored once, flat, with, per example, the range [lo, hi) of that user's events strictly earlier than
the example (equal timestamps never see each other). The schema and the workload (length histograms of the
training examples' histories) come from the data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kunlun.data.events import EventTable
from kunlun.data.split import Split, visible_and_cut
from kunlun.data.vocab import FixedVocab, Vocab
from kunlun.model.config import LengthHistogram, SchemaConfig, StreamSchema, WorkloadConfig
from kunlun.model.yamlio import ConfigError


@dataclass
class StreamHistory:
    values: np.ndarray  # (E,) int64 remapped item ids, sorted by (user, time)
    timestamps: np.ndarray  # (E,) int64
    side: dict[str, np.ndarray]  # name -> (E,) int64 remapped
    lo: np.ndarray  # (N,) int64: first event of the example's user
    hi: np.ndarray  # (N,) int64: one past the last event strictly earlier than the example

    @property
    def lengths(self) -> np.ndarray:
        return self.hi - self.lo


@dataclass
class EventDataset:
    name: str
    schema: SchemaConfig
    workload: WorkloadConfig
    user: np.ndarray  # (N,) raw user ids (kept for checks, not a feature by itself)
    sparse: np.ndarray  # (N, n_sparse) int64
    dense: np.ndarray  # (N, n_dense) float32
    labels: np.ndarray  # (N, num_tasks) float32
    request_time: np.ndarray  # (N,) int64
    streams: dict[str, StreamHistory]
    train_index: np.ndarray  # example indices, time order within each user
    eval_index: np.ndarray
    cut_time: float  # ts <= cut_time trains
    malformed_rows: int = 0

    def __len__(self) -> int:
        return len(self.request_time)


def build_dataset(table: EventTable, name: str, split: Split = "eval",
                  malformed_rows: int = 0) -> EventDataset:
    visible, cut = visible_and_cut(table.ts, split)
    t = table.select(visible) if not visible.all() else table
    order = np.lexsort((np.arange(len(t)), t.ts, t.user))
    t = t.select(order)
    train = t.ts <= cut
    if not train.any() or train.all():
        raise ConfigError("", f"{name}: the time split leaves an empty training or evaluation set "
                          f"({int(train.sum())} of {len(t)} events at or before the cut-off)")

    def vocab(column: str, ids: np.ndarray) -> Vocab | FixedVocab:
        if column in t.fixed_vocab:
            return FixedVocab.fit(t.fixed_vocab[column], ids[train])
        return Vocab.fit(ids[train])

    sparse_vocabs = {k: vocab(k, v) for k, v in t.sparse.items()}
    sparse = np.stack([sparse_vocabs[k].map(v) for k, v in t.sparse.items()], axis=1) if t.sparse else \
        np.zeros((len(t), 0), dtype=np.int64)
    item_vocab = vocab("item", t.item)
    items = item_vocab.map(t.item)
    side_vocabs = {k: vocab(k, v) for k, v in t.side.items()}
    sides = {k: side_vocabs[k].map(v) for k, v in t.side.items()}

    key = _user_time_key(t.user, t.ts)
    streams: dict[str, StreamHistory] = {}
    for sname, spec in t.streams.items():
        idx = np.flatnonzero(spec.mask)  # already in (user, time) order
        skey = key[idx]
        streams[sname] = StreamHistory(
            items[idx], t.ts[idx], {k: sides[k][idx] for k in spec.side},
            np.searchsorted(skey, key & ~np.int64(0xFFFFFFFF), side="left").astype(np.int64),
            np.searchsorted(skey, key, side="left").astype(np.int64),
        )

    dense = _standardise(t.dense, train)
    if t.history_length_features:
        hist = np.zeros((len(t), len(streams)), dtype=np.float32)
        for j, s in enumerate(streams.values()):
            hist[:, j] = np.log1p(s.lengths)
        dense = np.concatenate([dense, _standardise(hist, train)], axis=1)

    schema = SchemaConfig(
        sparse={k: v.size for k, v in sparse_vocabs.items()},
        dense=dense.shape[1],
        streams={k: StreamSchema(item_vocab.size, {s: side_vocabs[s].size for s in spec.side})
                 for k, spec in t.streams.items()},
        tasks=list(t.tasks),
    )
    workload = WorkloadConfig(streams={k: _histogram(s.lengths[train]) for k, s in streams.items()})
    return EventDataset(name, schema, workload, t.user, sparse, dense, t.labels.astype(np.float32), t.ts,
                        streams, np.flatnonzero(train), np.flatnonzero(~train), cut, malformed_rows)


def _user_time_key(user: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """One sortable int64 per event: user rank in the high 32 bits, time offset in the low 32 bits."""
    _, rank = np.unique(user, return_inverse=True)
    offset = ts - ts.min()
    if offset.max() >= 2**32 or rank.max() >= 2**31:
        raise ConfigError("", "timestamps span more than 2^32 seconds or more than 2^31 users: unsupported")
    return (rank.astype(np.int64) << 32) | offset.astype(np.int64)


def _standardise(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    if x.shape[1] == 0:
        return x
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    return ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def _histogram(lengths: np.ndarray) -> LengthHistogram:
    values, counts = np.unique(lengths, return_counts=True)
    return LengthHistogram([int(v) for v in values], [float(c) for c in counts])
