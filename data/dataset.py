"""`EventDataset`: every event is an example; flat numpy arrays ready for vectorised batching.

Built from an `EventTable` by `build_dataset`: rows sorted by (user, time); the protocol's time split; ids
remapped with vocabularies fitted on the training split (OOV = 0), and each id column's novelty measured
(below); dense features standardised on the training split, plus log1p of each stream's history length where
the table asks for it; each stream's events stored once, flat, with, per example, the range [lo, hi) of that
user's (or, for a stream `by: item`, that item's) events strictly earlier than the example (equal timestamps
never see each other). The schema and the workload (length histograms of the training examples' histories)
come from the data.

Novelty (`oov_rates`): how often a column's id is out of vocabulary when the model meets data later than what it
trained on, measured inside the training split alone: the share of its last 10% (in time) whose id a vocabulary
fitted on its first 90% maps to OOV. The training loader replaces ids by OOV at that rate, so the OOV row is
trained as often as it will be read: most MovieLens evaluation users are new, every Taobao user is known but most
Taobao items are not. No evaluation-period event enters the measure."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kunlun.data.events import EventTable
from kunlun.data.split import INNER_QUANTILE, Split, split_time, visible_and_cut
from kunlun.data.vocab import OOV, FixedVocab, Vocab
from kunlun.model.config import LengthHistogram, SchemaConfig, StreamSchema, WorkloadConfig
from kunlun.model.yamlio import ConfigError


@dataclass
class StreamHistory:
    values: np.ndarray  # (E,) int64 remapped item ids, sorted by (user, time) or, for a stream by item, (item, time)
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
    oov_rates: dict[str, float] = field(default_factory=dict)  # sparse feature -> novelty (module docstring)
    stream_oov_rate: float = 0.0  # the novelty of the item column, whose ids the streams carry

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

    def vocab(column: str, ids: np.ndarray, fitted_on: np.ndarray = train) -> Vocab | FixedVocab:
        if column in t.fixed_vocab:
            return FixedVocab.fit(t.fixed_vocab[column], ids[fitted_on])
        return Vocab.fit(ids[fitted_on])

    early = train & (t.ts <= split_time(t.ts[train], INNER_QUANTILE))
    late = train & ~early

    def novelty(column: str, ids: np.ndarray) -> float:
        if not late.any():
            return 0.0
        return float(np.mean(vocab(column, ids, early).map(ids[late]) == OOV))

    sparse_vocabs = {k: vocab(k, v) for k, v in t.sparse.items()}
    sparse = np.stack([sparse_vocabs[k].map(v) for k, v in t.sparse.items()], axis=1) if t.sparse else \
        np.zeros((len(t), 0), dtype=np.int64)
    item_vocab = vocab("item", t.item)
    items = item_vocab.map(t.item)
    side_vocabs = {k: vocab(k, v) for k, v in t.side.items()}
    sides = {k: side_vocabs[k].map(v) for k, v in t.side.items()}

    keys = {"user": _group_time_key(t.user, t.ts)}
    if any(spec.by == "item" for spec in t.streams.values()):
        keys["item"] = _group_time_key(t.item, t.ts)
    streams: dict[str, StreamHistory] = {}
    for sname, spec in t.streams.items():
        key = keys[spec.by]
        idx = np.flatnonzero(spec.mask)  # rows are in (user, time) order
        if spec.by == "item":
            idx = idx[np.argsort(key[idx], kind="stable")]
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
                        streams, np.flatnonzero(train), np.flatnonzero(~train), cut, malformed_rows,
                        {k: novelty(k, v) for k, v in t.sparse.items()}, novelty("item", t.item))


def _group_time_key(group: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """One sortable int64 per event: group (user or item) rank in the high 32 bits, time offset in the low 32."""
    _, rank = np.unique(group, return_inverse=True)
    offset = ts - ts.min()
    if offset.max() >= 2**32 or rank.max() >= 2**31:
        raise ConfigError("", "timestamps span more than 2^32 seconds or more than 2^31 users or items: "
                          "unsupported")
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
