"""scaling.png (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kunlun.search.scaling.fit import LOG_LINEAR, Fit, point_ne


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
