"""Taobao UserBehavior reader: headerless CSV `user,item,category,behavior,timestamp` (a file or a folder
holding one `*.csv` / `*.csv.gz`).

Example = one event; label = behaviour in {cart, fav, buy} (vs pv). The event's own behaviour is never a
feature: it enters only later events' histories. Context: user, item, category, hour of day (China time).
Streams: `pv`, `cart`, `fav`, `buy` (the user's earlier events of each behaviour; side feature: category) and
`audience` (the candidate item's earlier events by anyone, side: their behaviour; a stream `by: item`, the only
history most evaluation items have, since 70% of them are unseen in training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kunlun.data.events import EventTable, StreamSpec
from kunlun.data.textio import parse_rows
from kunlun.model.yamlio import ConfigError

BEHAVIORS = ("pv", "cart", "fav", "buy")
WHAT = "a Taobao UserBehavior CSV (user,item,category,behavior in pv/cart/fav/buy,timestamp)"
CHINA_UTC_OFFSET = 8 * 3600


def _row(line: str) -> tuple[int, int, int, int, int]:
    f = line.split(",")
    if len(f) != 5:
        raise ValueError("expected 5 fields")
    return int(f[0]), int(f[1]), int(f[2]), BEHAVIORS.index(f[3]), int(f[4])  # index: ValueError if unknown


def read_taobao(path: Path) -> tuple[EventTable, int]:
    """(events, malformed rows skipped)."""
    rows, bad = parse_rows(_locate(path), _row, WHAT)
    r = np.asarray(rows, dtype=np.int64)
    user, item, category, behavior, ts = r.T
    hour = ((ts + CHINA_UTC_OFFSET) // 3600) % 24
    sparse = {"user": user, "item": item, "category": category, "hour": hour}
    return EventTable(
        user=user, ts=ts, item=item, labels=(behavior > 0).astype(np.float32)[:, None], sparse=sparse,
        dense=np.zeros((len(r), 0), dtype=np.float32), side={"category": category, "behavior": behavior},
        streams={**{b: StreamSpec(behavior == i, ["category"]) for i, b in enumerate(BEHAVIORS)},
                 "audience": StreamSpec(np.ones(len(r), dtype=bool), ["behavior"], by="item")},
        tasks=["engage"],
    ), bad


def _locate(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted([*path.glob("*.csv"), *path.glob("*.csv.gz")])
        if len(found) == 1:
            return found[0]
        raise ConfigError("", f"expected exactly one *.csv or *.csv.gz file here, found {len(found)}", path)
    raise ConfigError("", "no such file or folder", path)
