"""Scaling-law fits of NE against compute, pure numpy: the forms, their 95% CIs, when a fit is determined, and the
efficiency of one family against a baseline (KUNLUN.md section 4 for the notes' form and efficiency).

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kunlun.search.reeval import t95

LOG_LINEAR = "log-linear"
POWER_LAW = "power-law"
MIN_BUDGETS = {LOG_LINEAR: 3, POWER_LAW: 5}
BASELINES = ("interformer", "wukong")
DRAWS = 2000
RNG_SEED = 0
ALPHA_RANGE = (1e-3, 5.0)
_ALPHAS = np.geomspace(*ALPHA_RANGE, 401)


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
        out: dict[str, Any] = {"form": self.form, "params": json_floats(self.params), "exponent": float(self.exponent),
                               "ci": json_floats(self.ci), "points": self.points, "r2": json_floats(self.r2),
                               "determined": bool(self.determined), "reason": self.reason,
                               "ci_method": self.ci_method, "params_ci": json_floats(self.params_ci),
                               "aic": json_floats(self.aic)}
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


def line(x: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    intercept, slope = (float(v[0]) for v in line(x, y[None, :]))
    eta = -slope
    resid = y - (intercept + slope * x)
    sse, sst = float(resid @ resid), float(((y - y.mean()) ** 2).sum())
    r2 = 1 - sse / sst if sst > 0 else None
    mx, sxx = float(x.mean()), float(((x - x.mean()) ** 2).sum())
    f = Fit(LOG_LINEAR, {"ne0": intercept, "eta": eta, "c0": c0}, eta, None, pts, r2, False,
            aic=_aic(sse, n, 2) if n > 2 else None)
    ys = _seed_resamples(pts, np.random.default_rng(RNG_SEED))
    if ys is not None:
        b_ne0, b_slope = line(x, ys)
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


def json_floats(v: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, non-finite floats to None."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: json_floats(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_floats(x) for x in v]
    return v
