"""Scaling-law fits over budgets (DESIGN.md "Results"): NE(C) = NE_0 - eta * ln(C / C_0), C = training FLOPs
per example, fitted by least squares to each family's best NE per budget; `exponent` is eta, with a Student-t
95% CI. Efficiency = eta_kunlun / eta_baseline (the notes' definition), CI by the delta method."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kunlun.search.reeval import t95

FORM = "log-linear"
BASELINES = ("interformer", "wukong")


@dataclass
class Fit:
    form: str
    params: dict[str, float | None]
    exponent: float  # eta: NE gained per e-fold of compute
    ci: list[float] | None  # 95% CI of the exponent; None when undetermined
    points: list[dict[str, Any]]
    r2: float | None
    determined: bool  # >= 3 budgets: the CI is meaningful
    se: float | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("se")
        return out

    def predict(self, budget: float) -> float:
        return self.params["ne0"] - self.exponent * math.log(budget / self.params["c0"])


def fit(points: list[dict[str, Any]]) -> Fit:
    """points: {"budget", "ne", ...} (one per budget: the best NE there)."""
    pts = sorted(points, key=lambda p: p["budget"])
    if not pts:
        raise ValueError("no points to fit")
    c0 = pts[0]["budget"]
    xs = [math.log(p["budget"] / c0) for p in pts]
    ys = [p["ne"] for p in pts]
    n = len(pts)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if n < 2 or sxx == 0:
        return Fit(FORM, {"ne0": my, "eta": 0.0, "c0": c0}, 0.0, None, pts, None, False)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    intercept = my - slope * mx
    resid = [y - (intercept + slope * x) for x, y in zip(xs, ys)]
    sst = sum((y - my) ** 2 for y in ys)
    r2 = 1 - sum(r * r for r in resid) / sst if sst > 0 else 1.0
    se = math.sqrt(sum(r * r for r in resid) / (n - 2) / sxx) if n > 2 else None
    eta = -slope
    ci = [eta - t95(n - 2) * se, eta + t95(n - 2) * se] if se is not None else None
    return Fit(FORM, {"ne0": intercept, "eta": eta, "c0": c0}, eta, ci, pts, r2, n >= 3, se)


def efficiency(model: Fit, baseline: Fit) -> dict[str, Any]:
    if baseline.exponent == 0:
        return {"value": None, "ci": None, "baseline": None}
    value = model.exponent / baseline.exponent
    ci = None
    if model.se is not None and baseline.se is not None and model.exponent != 0:
        rel = math.sqrt((model.se / model.exponent) ** 2 + (baseline.se / baseline.exponent) ** 2)
        ci = [value - 1.96 * abs(value) * rel, value + 1.96 * abs(value) * rel]
    return {"value": value, "ci": ci}


def report(fits: dict[str, Fit], target: float | None) -> dict[str, Any]:
    main = fits.get("kunlun") or next(iter(fits.values()))
    out: dict[str, Any] = main.to_dict()
    out["families"] = {name: f.to_dict() for name, f in fits.items()}
    baseline = next((b for b in BASELINES if b in fits), None)
    out["efficiency"] = ({**efficiency(fits["kunlun"], fits[baseline]), "baseline": baseline}
                         if "kunlun" in fits and baseline else {"value": None, "ci": None, "baseline": None})
    if target is not None:
        out["target"] = {"budget": target, "ne": {name: f.predict(target) for name, f in fits.items()}}
    return out


def write_png(fits: dict[str, Fit], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, f in fits.items():
        xs = [p["budget"] for p in f.points]
        line = ax.plot(xs, [p["ne"] for p in f.points], "o", label=f"{name}: eta {f.exponent:.4g}")[0]
        if len(xs) > 1:
            grid = [xs[0] * (xs[-1] / xs[0]) ** (i / 50) for i in range(51)]
            ax.plot(grid, [f.predict(x) for x in grid], "-", color=line.get_color(), alpha=0.7)
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs per example (budget)")
    ax.set_ylabel("best NE (lower is better)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
