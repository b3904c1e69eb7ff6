"""An Allocation: one sampled point of a search space, before the solver picks widths."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StreamAllocation:
    share: float  # this stream's share of the sequence branch (shares sum to 1)
    heads: int
    kv_len: int
    seeds: int
    summary_tokens: int
    window: int | None | tuple[int | None, ...]  # one for all layers, or one per layer
    depth: int | None
    max_len: int | None = None  # most recent events kept; None = the base config's


@dataclass(frozen=True)
class Allocation:
    family: str
    target_seq_share: float  # sampled share of training FLOPs in the sequence branch (realised: `seq_share`)
    num_layers: int
    schedule: str | tuple[tuple[str, ...], ...]  # 'none' | 'alternate' | per-layer component sets
    experts: int
    fm_rank: int
    streams: dict[str, StreamAllocation] = field(default_factory=dict)

    def structure(self) -> tuple:
        """Everything but the shares: allocations with equal structure share one FLOP polynomial."""
        streams = tuple((n, s.heads, s.kv_len, s.seeds, s.summary_tokens, s.window, s.depth, s.max_len)
                        for n, s in self.streams.items())
        return (self.family, self.num_layers, self.schedule, self.experts, self.fm_rank, streams)

    def schedule_label(self) -> str:
        if isinstance(self.schedule, str):
            return self.schedule
        return "|".join("+".join(layer) for layer in self.schedule)
