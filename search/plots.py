"""pareto.png (matplotlib, Agg) and pareto.html (plotly): every feasible trial coloured by its sequence share,
the front highlighted, NE 1 (the base rate's) drawn where a point is worse than it.

The page loads plotly from `plotly.min.js` beside it (written once per folder, shared by every page there), so it
renders offline and a study folder does not carry 4.8 MB of inlined JavaScript.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kunlun.search.front import Group, window_label, worse_than_base_rate
from kunlun.search.store import percent
from kunlun.space.cost import PRICED_ON

PRICED = f"{PRICED_ON.upper()} (extrapolated)"  # Hopper-measured efficiencies carried to it (space/cost.py)
LABELS = {"train_flops_per_example": "training FLOPs per example",
          "b200_us_per_example": f"predicted {PRICED} us per example (cost model, not measured)",
          "measured_us_per_example": "measured us per example"}


def x_label(groups: list[Group]) -> str:
    """The x axis's name; a measured time names the devices it was measured on (CPU microseconds are no GPU's)."""
    x_axis = groups[0].x_axis if groups else ""
    label = LABELS.get(x_axis, x_axis)
    if x_axis == "measured_us_per_example":
        label += f" ({', '.join(sorted({t.user_attrs['measured_device'] for g in groups for _, t in g.feasible()}))})"
    return label


def _rows(g: Group) -> list[Any]:
    return [t for _, t in g.feasible() if t.user_attrs.get("ne") is not None]


def _title(groups: list[Group]) -> str:
    studies = sorted({Path(folder).name for g in groups for folder, _ in g.trials})
    budgets = ", ".join(sorted({f"{g.budget:.3g}" for g in groups}))
    measured = bool(groups) and groups[0].x_axis == "measured_us_per_example"
    time = "measured" if measured else f"predicted on {PRICED}"
    return f"{', '.join(studies)}: budget {budgets} per example; time {time}"


def _hover(t: Any) -> str:
    a = t.user_attrs
    windows = json.loads(a["windows"]) if isinstance(a.get("windows"), str) else a.get("windows") or {}
    ne = a["ne"]
    worse = " (worse than the base rate)" if worse_than_base_rate(ne) else ""
    lines = [f"trial {t.number} ({a.get('family', '?')})", f"NE {ne:.5f}{worse}", f"AUC {a.get('auc') or 0:.4f}",
             f"predicted {PRICED}: {a.get('b200_us_per_example') or 0:.4g} us/example",
             f"training FLOPs: {a.get('train_flops_per_example') or 0:.4g} per example",
             *([f"measured on {a.get('measured_device')}: {a['measured_us_per_example']:.4g} us/example"]
               if a.get("measured_us_per_example") is not None else []),
             f"seq share {percent(a.get('seq_share') or 0):.1f} %", f"schedule {a.get('compskip', '?')}",
             "windows " + (", ".join(f"{k}={window_label(w)}" for k, w in windows.items()) or "-")]
    return "<br>".join(lines)


def write_png(groups: list[Group], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    scatter, nes = None, []
    for g in groups:
        rows = _rows(g)
        nes += [t.user_attrs["ne"] for t in rows]
        scatter = ax.scatter([t.user_attrs[g.x_axis] for t in rows], [t.user_attrs["ne"] for t in rows],
                             c=[t.user_attrs.get("seq_share") or 0.0 for t in rows], cmap="viridis", vmin=0, vmax=1,
                             s=30, alpha=0.8)
        fx = [t.user_attrs[g.x_axis] for _, t in g.front]
        fy = [t.user_attrs["ne"] for _, t in g.front]
        ax.plot(fx, fy, "-o", mfc="none", ms=10, lw=1.5, label=f"front: {g.family} @ {g.budget:.3g}")
    if any(worse_than_base_rate(ne) for ne in nes):
        ax.axhline(1.0, color="crimson", ls="--", lw=1, label="NE 1: the base rate (above: worse)")
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="sequence share of training FLOPs")
    ax.set_xlabel(x_label(groups))
    ax.set_ylabel("NE (lower is better)")
    ax.set_title(_title(groups), fontsize=9)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_html(groups: list[Group], path: Path) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    nes = []
    for g in groups:
        rows = _rows(g)
        nes += [t.user_attrs["ne"] for t in rows]
        fig.add_trace(go.Scatter(
            x=[t.user_attrs[g.x_axis] for t in rows], y=[t.user_attrs["ne"] for t in rows], mode="markers",
            hovertext=[_hover(t) for t in rows], hoverinfo="text", name=f"{g.family} @ {g.budget:.3g}",
            marker={"color": [t.user_attrs.get("seq_share") or 0.0 for t in rows], "colorscale": "Viridis",
                    "cmin": 0, "cmax": 1, "size": 9,
                    "colorbar": {"title": {"text": "seq share"}, "x": 1.02, "len": 0.8}}))
        fig.add_trace(go.Scatter(
            x=[t.user_attrs[g.x_axis] for _, t in g.front], y=[t.user_attrs["ne"] for _, t in g.front],
            hovertext=[_hover(t) for _, t in g.front], hoverinfo="text", mode="lines+markers",
            name=f"front {g.family} @ {g.budget:.3g}", marker={"size": 14, "symbol": "circle-open"}))
    if any(worse_than_base_rate(ne) for ne in nes):
        fig.add_hline(y=1.0, line_dash="dash", line_color="crimson",
                      annotation_text="NE 1: the base rate (above: worse)")
    # the legend goes under the plot, the colorbar right of it: they never overlap
    fig.update_layout(title={"text": _title(groups), "font": {"size": 13}}, xaxis_title=x_label(groups),
                      yaxis_title="NE (lower is better)", legend={"orientation": "h", "y": -0.2, "x": 0},
                      margin={"b": 120})
    fig.write_html(str(path), include_plotlyjs="directory", full_html=True)
