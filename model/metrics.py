"""Evaluation metrics, exactly as BASELINES.md defines them, over a whole evaluation split (not averaged per
batch).

NE = log loss / entropy of the evaluated split's own base rate (predicting that rate gives 1.0); AUC is
exact, with average ranks for tied scores; log loss clips predictions to [1e-7, 1 - 1e-7]; calibration =
mean prediction / observed rate."""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-7


def logloss(pred: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(np.asarray(pred, dtype=np.float64), EPS, 1 - EPS)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def ne(pred: np.ndarray, labels: np.ndarray) -> float:
    """Normalized entropy; NaN when the split has a single class (its entropy is 0)."""
    rate = float(np.mean(labels))
    if rate <= 0.0 or rate >= 1.0:
        return math.nan
    entropy = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
    return logloss(pred, labels) / entropy


def auc(pred: np.ndarray, labels: np.ndarray) -> float:
    """Exact ROC AUC by the rank-sum (Mann-Whitney) formula; tied scores share their average rank. NaN when
    either class is absent."""
    s = np.asarray(pred, dtype=np.float64)
    y = np.asarray(labels) > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # Average 1-based rank of each run of equal scores.
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    run_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(run_rank, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def calibration(pred: np.ndarray, labels: np.ndarray) -> float:
    rate = float(np.mean(labels))
    return float(np.mean(pred)) / rate if rate > 0 else math.nan


def task_metrics(pred: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {"ne": ne(pred, labels), "auc": auc(pred, labels), "logloss": logloss(pred, labels),
            "calibration": calibration(pred, labels), "base_rate": float(np.mean(labels)),
            "examples": len(labels)}


def evaluate(pred: np.ndarray, labels: np.ndarray, tasks: list[str]) -> dict:
    """`pred`, `labels`: (N, num_tasks). Top-level `ne`, `auc`, `logloss`, `calibration` are task 0's;
    `per_task` maps every task name to its metrics."""
    pred = np.asarray(pred).reshape(len(pred), -1)
    labels = np.asarray(labels).reshape(len(labels), -1)
    per_task = {name: task_metrics(pred[:, i], labels[:, i]) for i, name in enumerate(tasks)}
    first = per_task[tasks[0]]
    return {k: first[k] for k in ("ne", "auc", "logloss", "calibration")} | {"per_task": per_task}
