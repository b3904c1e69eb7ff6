"""Id remapping fitted on the training split: ids seen there (at least `MIN_COUNT` times) map to 1..n,
everything else to the OOV bucket 0 (an embedding row never trained would only add noise at evaluation)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OOV = 0
# An id seen once or twice in training is memorised (its labels) more than learned; mapping it to OOV also
# trains the OOV row on the kind of id the evaluation split is full of (most Taobao items are rare). 3 was chosen
# on the inner split (Taobao: NE after 180k examples 0.980 vs 1.020 with 2; no other dataset has such rare ids).
MIN_COUNT = 3


@dataclass
class Vocab:
    keys: np.ndarray  # sorted unique raw ids seen in training; key k maps to 1 + its position

    @classmethod
    def fit(cls, train_ids: np.ndarray, min_count: int = MIN_COUNT) -> Vocab:
        keys, counts = np.unique(train_ids, return_counts=True)
        return cls(keys[counts >= min_count])

    @property
    def size(self) -> int:  # including the OOV bucket
        return len(self.keys) + 1

    def map(self, ids: np.ndarray) -> np.ndarray:
        if len(self.keys) == 0:
            return np.zeros(len(ids), dtype=np.int64)
        pos = np.searchsorted(self.keys, ids)
        pos_c = np.minimum(pos, len(self.keys) - 1)
        return np.where(self.keys[pos_c] == ids, pos_c + 1, OOV).astype(np.int64)


@dataclass
class FixedVocab:
    """A known id space [0, n): the vocabulary size does not depend on the data (synthetic data, whose schema
    the presets carry), ids unseen in training still map to OOV."""

    n: int
    seen: np.ndarray  # (n,) bool

    @classmethod
    def fit(cls, n: int, train_ids: np.ndarray) -> FixedVocab:
        seen = np.zeros(n, dtype=bool)
        seen[train_ids] = True
        return cls(n, seen)

    @property
    def size(self) -> int:
        return self.n + 1

    def map(self, ids: np.ndarray) -> np.ndarray:
        return np.where(self.seen[ids], ids + 1, OOV).astype(np.int64)
