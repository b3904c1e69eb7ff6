"""The best allocation at a budget, extrapolated from the top trials of the budgets searched (pure numpy).

Allocation (`--target`, and the `holdout` check): from the TOP best feasible trials of each budget, the sampled
`seq_share` (an Optuna param) is fitted linearly in ln(budget) (value and Student-t CI of the mean at the target; the
top trials of a budget count as independent, so the CI is optimistic when the sampler has converged); the categorical
params (`schedule`, with its per-layer sets when generated, and each `window*` param) are the most common choice among
the top trials of the budget nearest the target (in log), with the fraction of them agreeing.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from kunlun.search.reeval import t95
from kunlun.search.scaling.fit import line

TOP = 3  # best trials per budget that the allocation extrapolation reads


def categorical_params(params: dict[str, Any]) -> dict[str, Any]:
    """The schedule (a generated one with its per-layer sets) and each window param of one trial's Optuna params."""
    out: dict[str, Any] = {}
    if "schedule" in params:
        layers = sorted((k for k in params if k.startswith("schedule.L")), key=lambda k: int(k[len("schedule.L"):]))
        name = params["schedule"]
        out["schedule"] = f"generated:{'/'.join(str(params[k]) for k in layers)}" if name == "generated" and layers \
            else name
    out.update({k: params[k] for k in sorted(params) if k == "window" or k.startswith("window.")})
    return out


def top_trials(trials: list[dict[str, Any]], top: int = TOP) -> dict[float, list[dict[str, Any]]]:
    """budget -> its `top` best trials by NE. trials: {"budget", "ne", "params", optional "seq_share_range"
    ([low, high] of the seq_share distribution), ...}, feasible ones."""
    by: dict[float, list[dict[str, Any]]] = {}
    for t in trials:
        if t.get("ne") is not None and math.isfinite(t["ne"]):
            by.setdefault(t["budget"], []).append(t)
    return {b: sorted(ts, key=lambda t: t["ne"])[:top] for b, ts in sorted(by.items())}


def _share_trend(xs: list[float], ys: list[float], x0: float,
                 bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    n, nb = len(ys), len(set(xs))
    if nb < 2:
        return {"value": float(np.mean(ys)), "ci": None, "pi": None, "slope": None, "n": n, "determined": False,
                "reason": "one budget: no trend to extrapolate"}
    x, y = np.asarray(xs), np.asarray(ys)
    intercept, slope = (float(v[0]) for v in line(x, y[None, :]))
    value = intercept + slope * x0
    ci = pi = None
    if n > 2:
        resid = y - (intercept + slope * x)
        s = math.sqrt(float(resid @ resid) / (n - 2))
        lever = 1 / n + (x0 - x.mean()) ** 2 / float(((x - x.mean()) ** 2).sum())
        half, half_one = t95(n - 2) * s * math.sqrt(lever), t95(n - 2) * s * math.sqrt(1 + lever)
        ci, pi = [value - half, value + half], [value - half_one, value + half_one]
    out = {"value": value, "ci": ci, "pi": pi, "slope": slope, "n": n, "determined": ci is not None,
           "reason": None if ci is not None else "too few trials for a CI"}
    if bounds is not None:  # the space's range: an extrapolation past it is clipped, and says so
        lo, hi = bounds
        out.update(range=[lo, hi], unclipped=value, clipped=not lo <= value <= hi, value=min(max(value, lo), hi),
                   ci=None if ci is None else [min(max(c, lo), hi) for c in ci],
                   pi=None if pi is None else [min(max(c, lo), hi) for c in pi])
    return out


def extrapolate_allocation(trials: list[dict[str, Any]], target: float, top: int = TOP) -> dict[str, Any] | None:
    """The best allocation at `target`, from the top trials of each budget (see the module docstring)."""
    by = top_trials(trials, top)
    if not by:
        return None
    pairs = [(math.log(b), float(t["params"]["seq_share"])) for b, ts in by.items() for t in ts
             if t.get("params", {}).get("seq_share") is not None]
    bounds = next((tuple(t["seq_share_range"]) for ts in by.values() for t in ts if t.get("seq_share_range")), None)
    nearest = min(by, key=lambda b: abs(math.log(b / target)))
    cats: dict[str, dict[str, Any]] = {}
    for t in by[nearest]:
        for name, value in categorical_params(t.get("params") or {}).items():
            cats.setdefault(name, []).append(value)
    categorical = {}
    for name, values in cats.items():
        counts = Counter(map(repr, values))
        choice = max(values, key=lambda v: counts[repr(v)])  # ties: the better trial's (max keeps the first)
        categorical[name] = {"choice": choice, "agreement": counts[repr(choice)] / len(by[nearest]),
                             "trials": len(by[nearest])}
    return {"budget": target, "from_budgets": list(by), "top": top,
            "seq_share": _share_trend(*zip(*pairs), math.log(target), bounds) if pairs else None,
            "nearest_budget": nearest, "categorical": categorical}


def holdout(trials: list[dict[str, Any]], top: int = TOP) -> dict[str, Any] | None:
    """The allocation extrapolated from every budget but the largest, against the best trial found at the largest."""
    by = top_trials(trials, top)
    if len(by) < 2:
        return None
    largest = max(by)
    pred = extrapolate_allocation([t for t in trials if t["budget"] < largest], largest, top)
    found = by[largest][0]
    params = found.get("params") or {}
    out: dict[str, Any] = {"budget": largest, "from_budgets": pred["from_budgets"],
                           "found": {k: found.get(k) for k in ("study", "trial", "ne")}, "seq_share": None}
    share = pred["seq_share"]
    if share is not None and params.get("seq_share") is not None:
        got, pi = float(params["seq_share"]), share["pi"]
        out["seq_share"] = {"extrapolated": share["value"], "ci": share["ci"], "pi": pi, "found": got,
                            "error": share["value"] - got,
                            "within_pi": None if pi is None else bool(pi[0] <= got <= pi[1])}
    found_cats = categorical_params(params)
    out["categorical"] = {name: {"extrapolated": c["choice"], "agreement": c["agreement"],
                                 "found": found_cats.get(name), "match": c["choice"] == found_cats.get(name)}
                          for name, c in pred["categorical"].items()}
    return out
