"""Scaling-law fits over budgets (DESIGN.md "Results"; KUNLUN.md section 4 for the notes' form and efficiency).

Points: one per budget and family, the best feasible trial there, retrained with extra initialisation seeds
(`ne_seeds`, the original trial's NE first; `ne` is their mean). On C = training FLOPs per example:

- log-linear, always: NE(C) = ne0 - eta * ln(C / c0), c0 the smallest budget; `exponent` = eta (NE gained per e-fold);
- power law with an irreducible term, from 5 budgets up: NE(C) = a + b * (C / c0)^(-alpha); `exponent` = alpha.
  For a fixed alpha the fit is linear least squares in (a, b); alpha is the best of a log grid over ALPHA_RANGE,
  refined by a parabola through the grid's three best neighbours.

95% confidence intervals: with seed repeats, a percentile bootstrap over seeds (each budget's seed NEs resampled with
replacement, their mean refitted, its spread around the seeds' mean rescaled by sqrt(k/(k-1)) so that its variance
matches the mean's; DRAWS draws from a fixed RNG seed, so results are reproducible); without repeats,
Student-t for the log-linear fit and a residual bootstrap for the power law. The seed bootstrap sees seed noise only,
not the search's own noise (a budget where the search found a poorer optimum). A fit is `determined` only with enough
budgets (3 for log-linear, 5 for the power law) and a CI that excludes 0 (log-linear: eta; power law: b, with alpha
clear of its range's ends, where the curve is indistinguishable from a log-linear one or saturates at once); `reason`
says why not. A family's reported fit is the power law when it is determined and has the lower AIC, else the
log-linear one; every fitted form is under `fits`.

Efficiency = eta_kunlun / eta_baseline from the log-linear fits (the notes' definition, whatever form is reported):
CI from paired bootstrap draws when both families have seed repeats, else by the delta method.

Allocation (`--target`, and the `holdout` check): from the TOP best feasible trials of each budget, the sampled
`seq_share` (an Optuna param) is fitted linearly in ln(budget) (value and Student-t CI of the mean at the target; the
top trials of a budget count as independent, so the CI is optimistic when the sampler has converged); the categorical
params (`schedule`, with its per-layer sets when generated, and each `window*` param) are the most common choice among
the top trials of the budget nearest the target (in log), with the fraction of them agreeing.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kunlun.search.reeval import t95

LOG_LINEAR = "log-linear"
POWER_LAW = "power-law"
FORM = LOG_LINEAR  # the notes' form, always fitted
MIN_BUDGETS = {LOG_LINEAR: 3, POWER_LAW: 5}
BASELINES = ("interformer", "wukong")
DRAWS = 2000
RNG_SEED = 0
ALPHA_RANGE = (1e-3, 5.0)
_ALPHAS = np.geomspace(*ALPHA_RANGE, 401)
TOP = 3  # best trials per budget that the allocation extrapolation reads


@dataclass
class Fit:
    form: str
    params: dict[str, float]
    exponent: float  # log-linear: eta; power law: alpha
    ci: list[float] | None  # 95% CI of the exponent
    points: list[dict[str, Any]]
    r2: float | None
    determined: bool
    reason: str | None = None  # why undetermined
    ci_method: str | None = None  # bootstrap-seeds | student-t | bootstrap-residuals
    params_ci: dict[str, list[float]] | None = None
    aic: float | None = None
    alternatives: dict[str, Fit] = field(default_factory=dict)  # every form fitted (the reported one included)
    se: float | None = field(default=None, repr=False)  # standard error of the exponent
    draws: dict[str, np.ndarray] | None = field(default=None, repr=False)  # bootstrap params, keyed like params
    tstats: tuple[int, float, float, float] | None = field(default=None, repr=False)  # n, mean x, sxx, s

    def to_dict(self, nested: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"form": self.form, "params": _floats(self.params), "exponent": float(self.exponent),
                               "ci": _floats(self.ci), "points": self.points, "r2": _floats(self.r2),
                               "determined": bool(self.determined), "reason": self.reason,
                               "ci_method": self.ci_method, "params_ci": _floats(self.params_ci),
                               "aic": _floats(self.aic)}
        if not nested:
            out.pop("points")
        elif self.alternatives:
            out["fits"] = {form: f.to_dict(nested=False) for form, f in self.alternatives.items()}
        return out

    def _curve(self, params: dict[str, Any], budgets: np.ndarray) -> np.ndarray:
        c0 = self.params["c0"]
        if self.form == POWER_LAW:
            a, b, alpha = (np.asarray(params[k])[..., None] for k in ("a", "b", "alpha"))
            return a + b * (budgets / c0) ** (-alpha)
        ne0, eta = (np.asarray(params[k])[..., None] for k in ("ne0", "eta"))
        return ne0 - eta * np.log(budgets / c0)

    def predict(self, budget: float) -> float:
        return float(self._curve(self.params, np.asarray([budget], float))[0])

    def band(self, budgets: list[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """95% band of the fitted mean NE at these budgets: bootstrap percentiles, or Student-t without draws."""
        xs = np.asarray(budgets, float)
        if self.draws is not None:
            curves = self._curve(self.draws, xs)
            return np.percentile(curves, 2.5, axis=0), np.percentile(curves, 97.5, axis=0)
        if self.tstats is None:
            return None
        n, mx, sxx, s = self.tstats
        x = np.log(xs / self.params["c0"])
        half = t95(n - 2) * s * np.sqrt(1 / n + (x - mx) ** 2 / sxx)
        mid = self._curve(self.params, xs)
        return mid - half, mid + half

    def predict_ci(self, budget: float) -> list[float] | None:
        band = self.band([budget])
        return None if band is None else [float(band[0][0]), float(band[1][0])]


# -- fitting -------------------------------------------------------------------------------------------------------

def point_ne(point: dict[str, Any]) -> float:
    seeds = point.get("ne_seeds")
    return float(np.mean(seeds)) if seeds else float(point["ne"])


def fit(points: list[dict[str, Any]]) -> Fit:
    """A family's fit. points: {"budget", "ne", optional "ne_seeds", ...}, one per budget (the best NE there)."""
    log_linear = fit_log_linear(points)
    power = fit_power_law(points)
    chosen = log_linear
    if power is not None and power.determined and (power.aic or math.inf) < (log_linear.aic or math.inf):
        chosen = power
    chosen.alternatives = {LOG_LINEAR: log_linear, **({POWER_LAW: power} if power is not None else {})}
    return chosen


def _prepare(points: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    pts = sorted(points, key=lambda p: p["budget"])
    if not pts:
        raise ValueError("no points to fit")
    if len({p["budget"] for p in pts}) != len(pts):
        raise ValueError("one point per budget")
    return pts, np.asarray([p["budget"] for p in pts], float), np.asarray([point_ne(p) for p in pts], float)


def _seed_resamples(points: list[dict[str, Any]], rng: np.random.Generator) -> np.ndarray | None:
    """(DRAWS, budgets) means of each budget's seed NEs resampled with replacement; None without repeats."""
    if not any(len(p.get("ne_seeds") or []) > 1 for p in points):
        return None
    cols = []
    for p in points:
        s = np.asarray(p.get("ne_seeds") or [p["ne"]], float)
        k, mean = len(s), float(s.mean())
        if k == 1:
            cols.append(np.full(DRAWS, mean))
            continue
        means = s[rng.integers(0, k, (DRAWS, k))].mean(axis=1)
        # a resampled mean of k values varies (k-1)/k as much as the mean itself: rescale its spread to match
        cols.append(mean + math.sqrt(k / (k - 1)) * (means - mean))
    return np.stack(cols, axis=1)


def _residual_resamples(fitted: np.ndarray, resid: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = len(resid)
    scale = math.sqrt(n / (n - k)) if n > k else 1.0
    return fitted + scale * resid[rng.integers(0, n, (DRAWS, n))]


def _percentiles(v: np.ndarray) -> list[float]:
    v = v[np.isfinite(v)]
    return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) else [math.nan, math.nan]


def _spans_zero(ci: list[float] | None) -> bool:
    return ci is None or not (ci[0] > 0 or ci[1] < 0)


def _aic(sse: float, n: int, k: int) -> float:
    return n * math.log(max(sse / n, 1e-300)) + 2 * k


def _line(x: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares intercept and slope of every row of ys (D, n) on x (n,)."""
    xc = x - x.mean()
    slope = (ys - ys.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    return ys.mean(axis=1) - slope * x.mean(), slope


def fit_log_linear(points: list[dict[str, Any]]) -> Fit:
    pts, budgets, y = _prepare(points)
    n, c0 = len(pts), float(budgets[0])
    if n < 2:
        return Fit(LOG_LINEAR, {"ne0": float(y.mean()), "eta": 0.0, "c0": c0}, 0.0, None, pts, None, False,
                   reason=f"{n} budget: too few points (log-linear needs {MIN_BUDGETS[LOG_LINEAR]})")
    x = np.log(budgets / c0)
    intercept, slope = (float(v[0]) for v in _line(x, y[None, :]))
    eta = -slope
    resid = y - (intercept + slope * x)
    sse, sst = float(resid @ resid), float(((y - y.mean()) ** 2).sum())
    r2 = 1 - sse / sst if sst > 0 else None
    mx, sxx = float(x.mean()), float(((x - x.mean()) ** 2).sum())
    f = Fit(LOG_LINEAR, {"ne0": intercept, "eta": eta, "c0": c0}, eta, None, pts, r2, False,
            aic=_aic(sse, n, 2) if n > 2 else None)
    ys = _seed_resamples(pts, np.random.default_rng(RNG_SEED))
    if ys is not None:
        b_ne0, b_slope = _line(x, ys)
        f.draws = {"ne0": b_ne0, "eta": -b_slope}
        f.ci, f.se, f.ci_method = _percentiles(-b_slope), float(np.std(-b_slope)), "bootstrap-seeds"
        f.params_ci = {"ne0": _percentiles(b_ne0), "eta": f.ci}
    elif n > 2:
        s = math.sqrt(sse / (n - 2))
        f.se, f.tstats, f.ci_method = s / math.sqrt(sxx), (n, mx, sxx, s), "student-t"
        t = t95(n - 2)
        f.ci = [eta - t * f.se, eta + t * f.se]
        se0 = s * math.sqrt(1 / n + mx * mx / sxx)
        f.params_ci = {"ne0": [intercept - t * se0, intercept + t * se0], "eta": f.ci}
    if n < MIN_BUDGETS[LOG_LINEAR]:
        f.reason = f"{n} budgets: too few points (log-linear needs {MIN_BUDGETS[LOG_LINEAR]})"
    elif _spans_zero(f.ci):
        f.reason = "the slope's 95% CI spans 0"
    f.determined = f.reason is None
    return f


def _power_params(r: np.ndarray, ys: np.ndarray) -> dict[str, np.ndarray]:
    """Least-squares a + b r^-alpha for every row of ys (D, n): alpha on the grid, refined by a parabola in ln alpha."""
    z = r[None, :] ** -_ALPHAS[:, None]  # (G, n)
    zc = z - z.mean(axis=1, keepdims=True)
    szz = (zc * zc).sum(axis=1)
    yc = ys - ys.mean(axis=1, keepdims=True)
    sse = (yc * yc).sum(axis=1)[:, None] - (yc @ zc.T) ** 2 / szz[None, :]  # (D, G)
    g = sse.argmin(axis=1)
    rows = np.arange(len(ys))
    inner = np.clip(g, 1, len(_ALPHAS) - 2)
    s0, s1, s2 = sse[rows, inner - 1], sse[rows, inner], sse[rows, inner + 1]
    curv = s0 - 2 * s1 + s2
    offset = np.where((g == inner) & (curv > 0), np.clip(0.5 * (s0 - s2) / np.where(curv > 0, curv, 1), -1, 1), 0)
    step = math.log(_ALPHAS[1] / _ALPHAS[0])
    out = {}
    for alpha in (_ALPHAS[g], np.exp(np.log(_ALPHAS[g]) + offset * step)):
        zz = r[None, :] ** -alpha[:, None]
        zzc = zz - zz.mean(axis=1, keepdims=True)
        b = (yc * zzc).sum(axis=1) / (zzc * zzc).sum(axis=1)
        a = ys.mean(axis=1) - b * zz.mean(axis=1)
        res = ys - a[:, None] - b[:, None] * zz
        cand = {"a": a, "b": b, "alpha": alpha, "sse": (res * res).sum(axis=1)}
        better = np.ones(len(ys), bool) if not out else cand["sse"] <= out["sse"]
        out = {k: np.where(better, cand[k], out[k]) if out else cand[k] for k in cand}
    out["edge"] = (g == 0) | (g == len(_ALPHAS) - 1)
    return out


def fit_power_law(points: list[dict[str, Any]]) -> Fit | None:
    """None below MIN_BUDGETS[POWER_LAW] budgets (three parameters need more points than that to be checked)."""
    pts, budgets, y = _prepare(points)
    n, c0 = len(pts), float(budgets[0])
    if n < MIN_BUDGETS[POWER_LAW]:
        return None
    r = budgets / c0
    best = {k: v[0] for k, v in _power_params(r, y[None, :]).items()}
    a, b, alpha = float(best["a"]), float(best["b"]), float(best["alpha"])
    fitted = a + b * r ** -alpha
    resid = y - fitted
    sse, sst = float(resid @ resid), float(((y - y.mean()) ** 2).sum())
    rng = np.random.default_rng(RNG_SEED)
    ys, method = _seed_resamples(pts, rng), "bootstrap-seeds"
    if ys is None:
        ys, method = _residual_resamples(fitted, resid, 3, rng), "bootstrap-residuals"
    d = _power_params(r, ys)
    f = Fit(POWER_LAW, {"a": a, "b": b, "alpha": alpha, "c0": c0}, alpha, _percentiles(d["alpha"]), pts,
            1 - sse / sst if sst > 0 else None, False, ci_method=method,
            params_ci={k: _percentiles(d[k]) for k in ("a", "b", "alpha")}, aic=_aic(sse, n, 3),
            se=float(np.std(d["alpha"])), draws={k: d[k] for k in ("a", "b", "alpha")})
    low, high = float((d["alpha"] <= _ALPHAS[1]).mean()), float((d["alpha"] >= _ALPHAS[-2]).mean())
    if bool(best["edge"]) or low + high > 0.025:
        low_end = alpha <= _ALPHAS[1] if bool(best["edge"]) else low >= high
        f.reason = (f"alpha's 95% CI reaches the end of its range {list(ALPHA_RANGE)}: "
                    + ("indistinguishable from log-linear" if low_end else "NE saturates within the first budgets"))
    elif _spans_zero(f.params_ci["b"]):
        f.reason = "the 95% CI of b (the compute-dependent term) spans 0"
    f.determined = f.reason is None
    return f


def _log_linear(f: Fit) -> Fit:
    return f if f.form == LOG_LINEAR else f.alternatives[LOG_LINEAR]


def efficiency(model: Fit, baseline: Fit) -> dict[str, Any]:
    """eta_model / eta_baseline from the log-linear fits."""
    m, b = _log_linear(model), _log_linear(baseline)
    out: dict[str, Any] = {"value": None, "ci": None, "ci_method": None, "determined": False, "form": LOG_LINEAR}
    if b.exponent == 0:
        return out
    out["value"] = m.exponent / b.exponent
    if m.draws is not None and b.draws is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ci"], out["ci_method"] = _percentiles(m.draws["eta"] / b.draws["eta"]), "paired-bootstrap"
    elif m.se is not None and b.se is not None and m.exponent != 0:
        value = out["value"]
        rel = math.sqrt((m.se / m.exponent) ** 2 + (b.se / b.exponent) ** 2)
        out["ci"], out["ci_method"] = [value - 1.96 * abs(value) * rel, value + 1.96 * abs(value) * rel], "delta"
    out["determined"] = bool(m.determined and b.determined and out["ci"] is not None)
    return out


# -- allocation ----------------------------------------------------------------------------------------------------

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
    intercept, slope = (float(v[0]) for v in _line(x, y[None, :]))
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


# -- report --------------------------------------------------------------------------------------------------------

def report(fits: dict[str, Fit], target: float | None = None,
           trials: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """scaling.json: the Kunlun family's fit at the top level, `families`, `efficiency`, `holdout`, `target`.
    trials: family -> its feasible trials ({"budget", "ne", "params", "study", "trial"}) for the allocation."""
    main = fits.get("kunlun") or next(iter(fits.values()))
    out: dict[str, Any] = main.to_dict()
    out["families"] = {name: f.to_dict() for name, f in fits.items()}
    baseline = next((b for b in BASELINES if b in fits), None)
    out["efficiency"] = ({**efficiency(fits["kunlun"], fits[baseline]), "baseline": baseline}
                         if "kunlun" in fits and baseline else {"value": None, "ci": None, "baseline": None})
    trials = trials or {}
    out["holdout"] = {name: holdout(ts) for name, ts in trials.items()}
    if target is not None:
        largest = max(p["budget"] for f in fits.values() for p in f.points)
        out["target"] = {"budget": target, "extrapolation": target / largest,
                         "ne": {name: f.predict(target) for name, f in fits.items()},
                         "ne_ci": {name: f.predict_ci(target) for name, f in fits.items()},
                         "form": {name: f.form for name, f in fits.items()},
                         "allocation": {name: extrapolate_allocation(ts, target) for name, ts in trials.items()}}
    return _floats(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, float) for x in v):
        return f"[{v[0]:.4g}, {v[1]:.4g}]"
    return str(v)


def summary(result: dict[str, Any]) -> list[str]:
    """The human summary of a report (stderr): every fit, said undetermined where it is."""
    lines = []
    for name, fam in result["families"].items():
        pts = fam["points"]
        seeds = sorted({len(p.get("ne_seeds") or [0]) for p in pts})
        for form, f in (fam.get("fits") or {fam["form"]: fam}).items():
            reported = " (reported)" if form == fam["form"] and len(fam.get("fits") or {}) > 1 else ""
            state = "determined" if f["determined"] else f"UNDETERMINED: {f['reason']}"
            sym = "eta" if form == LOG_LINEAR else "alpha"
            lines.append(f"{name}: {form}{reported} {sym} {_fmt(f['exponent'])} (95% CI {_fmt(f['ci'])}, "
                         f"{f['ci_method'] or 'no CI'}), r2 {_fmt(f['r2'])}, {len(pts)} budgets x "
                         f"{'/'.join(map(str, seeds))} seeds: {state}")
        if len(pts) < MIN_BUDGETS[POWER_LAW]:
            lines.append(f"{name}: power law not fitted ({len(pts)} budgets; it needs {MIN_BUDGETS[POWER_LAW]})")
    eff = result["efficiency"]
    if eff.get("baseline"):
        state = "determined" if eff.get("determined") else "UNDETERMINED"
        lines.append(f"efficiency kunlun/{eff['baseline']} (log-linear eta ratio) {_fmt(eff['value'])} "
                     f"(95% CI {_fmt(eff['ci'])}, {eff.get('ci_method') or 'no CI'}): {state}")
    for name, h in (result.get("holdout") or {}).items():
        if not h:
            continue
        parts = []
        if h.get("seq_share"):
            s = h["seq_share"]
            inside = {True: "inside", False: "outside", None: "no"}[s["within_pi"]] + " its 95% prediction interval"
            parts.append(f"seq_share extrapolated {_fmt(s['extrapolated'])} vs found {_fmt(s['found'])} "
                         f"(error {_fmt(s['error'])}, {inside})")
        parts += [f"{k} {'match' if c['match'] else 'differs'} ({c['extrapolated']} vs {c['found']})"
                  for k, c in h["categorical"].items()]
        lines.append(f"{name}: holdout at {h['budget']:.4g} from {len(h['from_budgets'])} smaller budgets: "
                     + ("; ".join(parts) or "no allocation params"))
    t = result.get("target")
    if t:
        for name, ne in t["ne"].items():
            parts = [f"NE {_fmt(ne)} (95% CI {_fmt(t['ne_ci'][name])}, {t['form'][name]})"]
            alloc = t["allocation"].get(name)
            if alloc and alloc["seq_share"]:
                parts.append(f"seq_share {_fmt(alloc['seq_share']['value'])} (95% CI {_fmt(alloc['seq_share']['ci'])})")
            for k, c in (alloc or {}).get("categorical", {}).items():
                parts.append(f"{k} {c['choice']} ({c['agreement']:.0%} of the top trials at "
                             f"{alloc['nearest_budget']:.4g})")
            lines.append(f"{name}: at target {t['budget']:.4g} ({t['extrapolation']:.3g}x the largest budget): "
                         + "; ".join(parts))
    return lines


def _floats(v: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, non-finite floats to None."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _floats(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_floats(x) for x in v]
    return v


# -- plot ----------------------------------------------------------------------------------------------------------

def write_png(fits: dict[str, Fit], path: Path, target: float | None = None) -> None:
    """Each family: best NE per budget (mean over seeds, error bars one s.d. across seeds), the reported fit with its
    95% band, the other form dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, f in fits.items():
        xs = [p["budget"] for p in f.points]
        ys = [point_ne(p) for p in f.points]
        err = [float(np.std(p["ne_seeds"], ddof=1)) if len(p.get("ne_seeds") or []) > 1 else 0.0 for p in f.points]
        sym = "eta" if f.form == LOG_LINEAR else "alpha"
        label = f"{name}: {f.form}, {sym} {f.exponent:.3g}" + ("" if f.determined else " (undetermined)")
        line = ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=3, label=label)[0]
        if len(xs) < 2:
            continue
        hi_x = max(xs[-1], target or 0)
        grid = np.geomspace(xs[0], hi_x, 80)
        ax.plot(grid, [f.predict(x) for x in grid], "-", color=line.get_color(), alpha=0.8)
        band = f.band(grid)
        if band is not None:
            ax.fill_between(grid, band[0], band[1], color=line.get_color(), alpha=0.15, linewidth=0)
        for form, other in f.alternatives.items():
            if form != f.form:
                ax.plot(grid, [other.predict(x) for x in grid], "--", color=line.get_color(), alpha=0.5,
                        label=f"{name}: {form}")
    if target is not None:
        ax.axvline(target, color="grey", linestyle=":", label=f"target {target:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs per example (budget)")
    ax.set_ylabel("best NE, mean over seeds (lower is better)")
    ax.set_title("NE vs compute: fits with 95% bands; error bars 1 s.d. over seeds", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- seed repeats --------------------------------------------------------------------------------------------------

def seed_ne(config_yaml: str, seed: int) -> float:
    """NE of a trial's config retrained with initialisation seed `seed` (same data and evaluation set), through
    `kunlun pareto --reeval`'s reevaluate (which trains the seeds after the config's own)."""
    from kunlun.model.config import KunlunConfig
    from kunlun.model.yamlio import load_yaml_text
    from kunlun.search.reeval import reevaluate

    config = KunlunConfig.from_dict(load_yaml_text(config_yaml))
    config.train.seed = seed - 1
    result = reevaluate(config.to_yaml(), 1)
    if result["seeds"] != [seed]:
        raise RuntimeError(f"reevaluate trained seeds {result['seeds']}, not [{seed}]")
    return float(result["ne_mean"])


def repeat_seeds(point: dict[str, Any], config_yaml: str | None, seed: int | None, repeats: int,
                 cached: dict[int, float] | None = None, log: Any = None) -> dict[str, Any]:
    """The point with `seeds` and `ne_seeds` for `repeats` seeds: the trial's own (seed, NE) first, then seed+1, ...;
    NEs in `cached` (seed -> NE, from an earlier scaling.json) are reused, the others trained."""
    if seed is None or not config_yaml:
        if repeats > 1 and log:
            log(f"{point.get('study')} trial {point.get('trial')}: no config or seed recorded: one seed only")
        return {**point, "seeds": [seed] if seed is not None else [], "ne_seeds": [point["ne"]]}
    cached = dict(cached or {})
    if seed in cached and not math.isclose(cached[seed], point["ne"], rel_tol=1e-9, abs_tol=1e-12):
        cached = {}  # not the same trial (a study recreated under the same name): retrain
    cached[seed] = point["ne"]
    seeds = [seed + i for i in range(repeats)]
    for s in seeds:
        if s not in cached:
            cached[s] = seed_ne(config_yaml, s)
            if log:
                log(f"{point.get('study')} trial {point.get('trial')}: seed {s}: NE {cached[s]:.5f}")
    nes = [cached[s] for s in seeds]
    return {**point, "ne": float(np.mean(nes)), "seeds": seeds, "ne_seeds": nes}
