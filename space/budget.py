"""Budgets: per training example, on the config's workload (DESIGN.md, "Budgets, solver, cost model")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from kunlun.model.yamlio import ConfigError

_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_TIME = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}
_FLOPS_RE = re.compile(r"^\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*([kKMGTP]?)\s*(?:FLOPs?|flops?)?\s*$")
_TIME_RE = re.compile(r"^\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*(s|ms|us|ns)\s*$")


@dataclass
class Budget:
    kind: Literal["flops", "b200_time"] = "flops"
    value: float | str = 1e7  # FLOPs per training example, or B200 microseconds per training example
    tolerance: float = 0.02  # relative to the whole budget

    def check(self, path: str) -> None:
        self.value = parse_budget(self.value, f"{path}.value" if path else "value", self.kind)
        if not 0 < self.tolerance < 0.5:
            raise ConfigError(f"{path}.tolerance", f"must be in (0, 0.5), got {self.tolerance}")

    @property
    def amount(self) -> float:
        return float(self.value)


def parse_budget(value: float | str, path: str = "budget", kind: str | None = None) -> float:
    """`2.5e9`, `'2.5G'` (FLOPs) or `'40us'` (B200 time in microseconds) -> a positive float."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out = float(value)
    elif isinstance(value, str) and (m := _TIME_RE.match(value)) and kind in (None, "b200_time"):
        out = float(m.group(1)) * _TIME[m.group(2)]
    elif isinstance(value, str) and (m := _FLOPS_RE.match(value)) and kind in (None, "flops"):
        out = float(m.group(1)) * _SI[m.group(2)]
    else:
        allowed = "a number or '2.5G'" if kind == "flops" else "'40us', '1.5ms'" if kind else "2.5e9, '2.5G' or '40us'"
        raise ConfigError(path, f"{value!r} is not a budget (allowed: {allowed})")
    if not out > 0 or out == float("inf"):
        raise ConfigError(path, f"must be a positive finite number, got {value!r}")
    return out


def budget_kind_of(value: str) -> Literal["flops", "b200_time"]:
    """The kind a command-line `--budget` names: a time unit means B200 time."""
    return "b200_time" if _TIME_RE.match(value) else "flops"
