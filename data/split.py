"""The evaluation protocol's time split (BASELINES.md): a global time quantile, `ts <= q` trains, later
evaluates. The inner split, for choosing hyper-parameters, applies the same rule inside the training split
at its own 90% quantile, so no choice ever sees the evaluation period."""

from __future__ import annotations

from typing import Literal

import numpy as np

EVAL_QUANTILE = 0.8
INNER_QUANTILE = 0.9
Split = Literal["eval", "inner"]


def split_time(ts: np.ndarray, quantile: float = EVAL_QUANTILE) -> float:
    return float(np.quantile(ts, quantile, method="linear"))


def visible_and_cut(ts: np.ndarray, split: Split) -> tuple[np.ndarray, float]:
    """(mask of the events that exist in this world, the train/eval cut-off time)."""
    q = split_time(ts)
    if split == "eval":
        return np.ones(len(ts), dtype=bool), q
    visible = ts <= q
    return visible, split_time(ts[visible], INNER_QUANTILE)
