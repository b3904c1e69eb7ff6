"""Pareto fronts of study folders, with Optuna's own machinery.

Two objectives (NE, predicted B200 time): the study's front. One objective (NE only, until the cost model
exists): the front of NE against train_flops_per_example. Where every feasible trial of a group was timed (`kunlun
search --price measured`), the measured time per example is the x axis instead: a true time axis. Either way only
COMPLETE, feasible trials (constraint <= 0) can be on it: PRUNED, FAILED and infeasible trials never are.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kunlun.model.yamlio import ConfigError
from kunlun.search.store import STUDY_JSON, StudyInfo, load_study, percent, trial_status

ROW_KEYS = ("trial", "study", "budget", "family", "ne", "auc", "train_flops_per_example", "b200_us_per_example",
            "predicted_mfu", "launch_share", "seq_share", "compskip", "windows", "params_dense", "params_sparse",
            "measured_us_per_example", "measured_mfu", "measured_device")


@dataclass
class Group:
    """One front: the trials of one budget and one family (over one or more studies)."""

    budget: float
    family: str
    x_axis: str  # "train_flops_per_example", "b200_us_per_example" or "measured_us_per_example"
    trials: list[tuple[str, Any]] = field(default_factory=list)  # (study folder, FrozenTrial), all states
    front: list[tuple[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        status = [trial_status(t) for _, t in self.trials]
        return {s: status.count(s) for s in ("complete", "infeasible", "pruned", "fail")}

    def feasible(self) -> list[tuple[str, Any]]:
        return [(s, t) for s, t in self.trials if trial_status(t) == "complete"]


def study_folders(root: Path) -> list[Path]:
    if (root / STUDY_JSON).is_file():
        return [root]
    if not root.is_dir():
        raise ConfigError("", "no such study folder", root)
    found = sorted(p.parent for p in root.glob(f"*/{STUDY_JSON}"))
    if not found:
        raise ConfigError("", f"neither a study folder nor a folder of studies (no {STUDY_JSON})", root)
    return found


def groups(root: Path) -> list[Group]:
    out: dict[tuple[float, str], Group] = {}
    for folder in study_folders(root):
        info = StudyInfo.read(folder)
        study = load_study(folder, info)
        x_axis = "b200_us_per_example" if len(info.objectives) > 1 else "train_flops_per_example"
        for t in study.get_trials(deepcopy=False):
            family = t.user_attrs.get("family") or t.params.get("family") or info.families[0]
            g = out.setdefault((info.budget, family), Group(info.budget, family, x_axis))
            g.trials.append((str(folder), t))
    for g in out.values():
        timed = [t.user_attrs.get("measured_us_per_example") for _, t in g.feasible()]
        if timed and None not in timed:
            g.x_axis = "measured_us_per_example"
        g.front = pareto_front(g.trials, g.x_axis)
    return [out[k] for k in sorted(out)]


def pareto_front(trials: list[tuple[str, Any]], x_axis: str) -> list[tuple[str, Any]]:
    """Non-dominated (NE, x_axis) points among COMPLETE feasible trials, by Optuna's own filter."""
    from optuna.study import StudyDirection
    from optuna.study._multi_objective import _get_pareto_front_trials_by_trials
    from optuna.trial import TrialState

    proxies, owner = [], {}
    for folder, t in trials:
        if t.state != TrialState.COMPLETE or trial_status(t) != "complete":
            continue
        ne, x = t.user_attrs.get("ne"), t.user_attrs.get(x_axis)
        if ne is None or x is None or not (math.isfinite(ne) and math.isfinite(x)):
            continue
        p = copy.copy(t)
        p.values = [ne, x]  # the front's two axes, whatever the study optimised
        proxies.append(p)
        owner[id(p)] = (folder, t)
    front = _get_pareto_front_trials_by_trials(proxies, [StudyDirection.MINIMIZE] * 2, consider_constraint=True)
    return sorted((owner[id(p)] for p in front), key=lambda ft: ft[1].user_attrs[x_axis])


def knee(front: list[tuple[str, Any]], x_axis: str) -> tuple[str, Any]:
    """The front point farthest from the chord between its ends, on min-max normalised axes."""
    if not front:
        raise ConfigError("", "the front is empty: no COMPLETE feasible trial")
    pts = [(t.user_attrs[x_axis], t.user_attrs["ne"]) for _, t in front]
    if len(pts) <= 2:
        return min(front, key=lambda ft: ft[1].user_attrs["ne"])
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    nx = [(x - min(xs)) / ((max(xs) - min(xs)) or 1) for x in xs]
    ny = [(y - min(ys)) / ((max(ys) - min(ys)) or 1) for y in ys]
    (x0, y0), (x1, y1) = (nx[0], ny[0]), (nx[-1], ny[-1])
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    dist = [abs((x1 - x0) * (y0 - y) - (x0 - x) * (y1 - y0)) / length for x, y in zip(nx, ny)]
    return front[max(range(len(front)), key=dist.__getitem__)]


def worse_than_base_rate(ne: float | None) -> bool:
    """NE > 1: the model's log loss is above that of predicting the base rate (NE's normaliser)."""
    return ne is not None and ne > 1


def window_label(window: Any) -> Any:
    """A window as printed and exported: its half-width, "full" for no window (None), per layer as a list."""
    if isinstance(window, (list, tuple)):
        return [window_label(w) for w in window]
    return "full" if window is None else window


def row(group: Group, folder: str, t: Any) -> dict[str, Any]:
    a = t.user_attrs
    windows = a.get("windows")
    windows = json.loads(windows) if isinstance(windows, str) else windows
    return {"trial": t.number, "study": Path(folder).name, "budget": group.budget, "family": group.family,
            "ne": a.get("ne"), "auc": a.get("auc"), "train_flops_per_example": a.get("train_flops_per_example"),
            "b200_us_per_example": a.get("b200_us_per_example"), "predicted_mfu": percent(a.get("predicted_mfu")),
            "launch_share": percent(a.get("launch_share")),
            "seq_share": a.get("seq_share"), "compskip": a.get("compskip"),
            "windows": {k: window_label(w) for k, w in (windows or {}).items()},
            "params_dense": a.get("params_dense"), "params_sparse": a.get("params_sparse"),
            "measured_us_per_example": a.get("measured_us_per_example"),
            "measured_mfu": percent(a.get("measured_mfu")), "measured_device": a.get("measured_device")}
