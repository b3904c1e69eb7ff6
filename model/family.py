"""Model families: what each one fixes. The config checks, the budget solver and the search space read this table;
no other module compares family names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FamilyName = Literal["kunlun", "interformer", "wukong"]


@dataclass(frozen=True)
class Family:
    streams: bool = True  # streams run in a sequence branch; without one each is mean-pooled into a context token
    stream_settings: dict[str, Any] = field(default_factory=dict)  # StreamConfig fields the family fixes
    schedule: str | None = None  # the schedule it fixes (None: any)
    schedule_reason: str = ""
    kvgen: str | None = None  # the kvgen kind it fixes (None: any)


FAMILIES: dict[str, Family] = {
    "kunlun": Family(),
    # InterFormer as published: full softmax attention, a linear PFFN, PMA pooling, every component every layer
    "interformer": Family(stream_settings={"window": None, "swa_activation": "softmax",
                                           "pffn_activation": "identity", "pooling": "pma"},
                          schedule="none", schedule_reason="runs every component", kvgen="interformer"),
    "wukong": Family(streams=False),  # the baseline without a sequence branch
}
