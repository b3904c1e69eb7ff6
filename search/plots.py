"""pareto.png (matplotlib, Agg) and pareto.html (plotly): every feasible trial coloured by its sequence share,
the front highlighted."""

from __future__ import annotations

from pathlib import Path

from kunlun.search.front import Group

LABELS = {"train_flops_per_example": "training FLOPs per example", "b200_us_per_example": "B200 us per example",
          "measured_us_per_example": "measured us per example"}


def x_label(groups: list[Group]) -> str:
    """The x axis's name; a measured time names the devices it was measured on (CPU microseconds are no GPU's)."""
    x_axis = groups[0].x_axis if groups else ""
    label = LABELS.get(x_axis, x_axis)
    if x_axis == "measured_us_per_example":
        label += f" ({', '.join(sorted({t.user_attrs['measured_device'] for g in groups for _, t in g.feasible()}))})"
    return label


def _points(g: Group) -> tuple[list[float], list[float], list[float], list[str]]:
    rows = [t for _, t in g.feasible() if t.user_attrs.get("ne") is not None]
    return ([t.user_attrs[g.x_axis] for t in rows], [t.user_attrs["ne"] for t in rows],
            [t.user_attrs.get("seq_share") or 0.0 for t in rows], [f"trial {t.number}" for t in rows])


def write_png(groups: list[Group], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    scatter = None
    for g in groups:
        x, y, c, _ = _points(g)
        scatter = ax.scatter(x, y, c=c, cmap="viridis", vmin=0, vmax=1, s=30, alpha=0.8)
        fx = [t.user_attrs[g.x_axis] for _, t in g.front]
        fy = [t.user_attrs["ne"] for _, t in g.front]
        ax.plot(fx, fy, "-o", mfc="none", ms=10, lw=1.5, label=f"front: {g.family} @ {g.budget:.3g}")
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="sequence share of training FLOPs")
    ax.set_xlabel(x_label(groups))
    ax.set_ylabel("NE (lower is better)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_html(groups: list[Group], path: Path) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    for g in groups:
        x, y, c, text = _points(g)
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", text=text, name=f"{g.family} @ {g.budget:.3g}",
                                 marker={"color": c, "colorscale": "Viridis", "cmin": 0, "cmax": 1,
                                         "colorbar": {"title": "seq share"}}))
        fig.add_trace(go.Scatter(x=[t.user_attrs[g.x_axis] for _, t in g.front],
                                 y=[t.user_attrs["ne"] for _, t in g.front],
                                 text=[f"trial {t.number}" for _, t in g.front], mode="lines+markers",
                                 name=f"front {g.family} @ {g.budget:.3g}",
                                 marker={"size": 12, "symbol": "circle-open"}))
    fig.update_layout(xaxis_title=x_label(groups), yaxis_title="NE (lower is better)")
    fig.write_html(str(path), include_plotlyjs=True)
