"""scaling.json and its human summary (DESIGN.md "Results")."""

from __future__ import annotations

from typing import Any

from kunlun.search.scaling.allocation import extrapolate_allocation, holdout
from kunlun.search.scaling.fit import BASELINES, LOG_LINEAR, MIN_BUDGETS, POWER_LAW, Fit, efficiency, json_floats


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
    return json_floats(out)


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
