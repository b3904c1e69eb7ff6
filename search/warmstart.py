"""Warm start: seed a new study with the best allocations of finished studies, e.g. at smaller budgets.

An allocation's parameters (family, shares, CompSkip schedule, windows, per-stream capacity) do not depend on the
budget: the solver turns them into widths for whatever budget the study has. So the best allocations found at
a smaller budget are candidates at a larger one, and Optuna runs them first (`enqueue_trial`). A parameter set
is only enqueued if the new space would sample it: every name it asks for present and every value allowed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kunlun.space.space import SearchSpace

WARM_START_ATTR = "warm_start_from"


class _Misfit(Exception):
    pass


class _Check:
    """A trial-like that answers the space's suggest_* calls from given params, refusing what the space forbids."""

    def __init__(self, params: dict[str, Any]):
        self.params = params
        self.used: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        if name not in self.params:
            raise _Misfit(f"{name} missing")
        return self.params[name]

    def suggest_categorical(self, name: str, choices: list) -> Any:
        value = self._get(name)
        if value not in choices:
            raise _Misfit(f"{name}={value!r} not in {choices}")
        self.used[name] = value
        return value

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        value = self._get(name)
        if not (isinstance(value, (int, float)) and value == int(value) and low <= value <= high
                and (int(value) - low) % step == 0):
            raise _Misfit(f"{name}={value!r} outside [{low}, {high}] step {step}")
        self.used[name] = int(value)
        return int(value)

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        value = self._get(name)
        if not (isinstance(value, (int, float)) and low <= value <= high):
            raise _Misfit(f"{name}={value!r} outside [{low}, {high}]")
        self.used[name] = float(value)
        return float(value)


def best_allocations(sources: list[Path], space: SearchSpace, top: int) -> list[dict[str, Any]]:
    """The params of the `top` best (lowest NE) feasible trials over the source study folders that this space
    can sample, best first, without repeats."""
    from kunlun.search.front import groups

    ranked: list[tuple[float, dict[str, Any]]] = []
    for source in sources:
        for group in groups(source):
            for _, trial in group.feasible():
                ne = trial.user_attrs.get("ne")
                if ne is not None and math.isfinite(ne):
                    ranked.append((ne, dict(trial.params)))
    ranked.sort(key=lambda pair: pair[0])
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _, params in ranked:
        check = _Check(params)
        try:
            space.sample(check)
        except _Misfit:
            continue
        key = json.dumps(check.used, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(check.used)
        if len(out) == top:
            break
    return out


def warm_start(study: Any, sources: list[Path], space: SearchSpace, top: int) -> int:
    """Enqueue the best allocations of `sources` into `study`; returns how many."""
    allocations = best_allocations(sources, space, top)
    for params in allocations:
        study.enqueue_trial(params, user_attrs={"warm_start": True}, skip_if_exists=True)
    study.set_user_attr(WARM_START_ATTR, [str(s) for s in sources])
    return len(allocations)
