"""`EventTable`: what a reader produces, one row per event (= one example), raw ids, any row order. The
dataset builder (`kunlun.data.dataset`) turns it into remapped flat arrays with causal histories."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np


@dataclass
class StreamSpec:
    mask: np.ndarray  # (N,) bool: the events that enter this stream as history of later events
    side: list[str] = field(default_factory=list)  # names of `EventTable.side` columns this stream carries
    # whose history: the example's user's earlier events, or the candidate item's earlier events by anyone (its
    # audience so far: what "item positive rate so far" features summarise by hand); strictly earlier either way
    by: Literal["user", "item"] = "user"


@dataclass
class EventTable:
    user: np.ndarray  # (N,) int64 raw user ids: histories never cross users
    ts: np.ndarray  # (N,) int64 seconds
    item: np.ndarray  # (N,) int64 raw item ids (the stream values)
    labels: np.ndarray  # (N, num_tasks) float32 in {0, 1}
    sparse: dict[str, np.ndarray]  # context feature -> (N,) raw ids, in schema order
    dense: np.ndarray  # (N, n_dense) float32
    side: dict[str, np.ndarray]  # side feature -> (N,) raw ids of the event when it is someone's history
    streams: dict[str, StreamSpec]
    tasks: list[str]
    # Columns (sparse names, "item", side names) whose raw ids are already in [0, n): the vocabulary is then
    # n + 1 whatever the data, so a schema can be stated in advance (synthetic data).
    fixed_vocab: dict[str, int] = field(default_factory=dict)
    # Add log1p(history length) per stream as dense features (the context branch then knows how much history
    # there is); off where a schema must be known in advance.
    history_length_features: bool = True

    def __len__(self) -> int:
        return len(self.ts)

    def select(self, mask: np.ndarray) -> EventTable:
        return EventTable(
            self.user[mask], self.ts[mask], self.item[mask], self.labels[mask],
            {k: v[mask] for k, v in self.sparse.items()}, self.dense[mask],
            {k: v[mask] for k, v in self.side.items()},
            {k: replace(s, mask=s.mask[mask], side=list(s.side)) for k, s in self.streams.items()},
            list(self.tasks), dict(self.fixed_vocab), self.history_length_features,
        )
