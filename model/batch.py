"""`Batch`: one mini-batch of ranking examples with jagged event streams.

Jagged layout (as the kernels consume it): a stream's events for the whole batch are concatenated in example order,
`values[offsets[b]:offsets[b + 1]]` are example b's item ids, oldest first, and `timestamps`/`side` are aligned with
`values`. `request_time[b]` is the time of the event being ranked; every history event is strictly earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class JaggedStream:
    values: Tensor  # (sum T,) int64 item ids
    offsets: Tensor  # (B + 1,) int64
    timestamps: Tensor  # (sum T,) int64 seconds
    side: dict[str, Tensor] = field(default_factory=dict)  # name -> (sum T,) int64 side ids

    @property
    def lengths(self) -> Tensor:  # (B,)
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def max_len(self) -> int:
        return int(self.lengths.max()) if self.offsets.numel() > 1 else 0

    def to(self, device: torch.device | str) -> JaggedStream:
        return JaggedStream(
            self.values.to(device),
            self.offsets.to(device),
            self.timestamps.to(device),
            {k: v.to(device) for k, v in self.side.items()},
        )


@dataclass
class Batch:
    sparse: Tensor  # (B, n_sparse) int64, columns in schema order
    dense: Tensor  # (B, n_dense) float32
    streams: dict[str, JaggedStream]
    request_time: Tensor  # (B,) int64 seconds
    labels: Tensor  # (B, num_tasks) float32 in {0, 1}

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.sparse.to(device),
            self.dense.to(device),
            {k: s.to(device) for k, s in self.streams.items()},
            self.request_time.to(device),
            self.labels.to(device),
        )
