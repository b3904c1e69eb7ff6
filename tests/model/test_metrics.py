from __future__ import annotations

import math

import numpy as np
import pytest

from kunlun.model.metrics import auc, calibration, evaluate, logloss, ne


def test_auc_hand_cases_with_ties() -> None:
    # Pairs (pos, neg): 0.35>0.1 yes, 0.35>0.4 no, 0.8 beats both: 3/4.
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    # A tie between a positive and a negative counts one half: pairs (0.5+, 0.1-)=1, (0.5+, 0.5-)=0.5,
    # (0.9+, 0.1-)=1, (0.9+, 0.5-)=1 -> 3.5 / 4.
    assert auc(np.array([0.1, 0.5, 0.5, 0.9]), np.array([0, 1, 0, 1])) == 0.875
    assert auc(np.full(6, 0.3), np.array([0, 1, 0, 1, 1, 0])) == 0.5
    assert math.isnan(auc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_auc_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 200) / 4.0  # many ties
    y = rng.random(200) < 0.3
    pos, neg = s[y], s[~y]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert auc(s, y) == pytest.approx(pairwise, abs=1e-12)


def test_logloss_ne_calibration_by_hand() -> None:
    y = np.array([1, 0, 1, 1])
    p = np.array([0.9, 0.2, 0.6, 0.5])
    ll = -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.5)) / 4
    assert logloss(p, y) == pytest.approx(ll)
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert ne(p, y) == pytest.approx(ll / entropy)
    assert ne(np.full(4, 0.75), y) == pytest.approx(1.0)  # predicting the base rate
    assert calibration(p, y) == pytest.approx(np.mean(p) / 0.75)
    # Predictions are clipped to [1e-7, 1 - 1e-7]: a confident mistake costs -log(1e-7), not infinity.
    assert logloss(np.array([0.0]), np.array([1])) == pytest.approx(-math.log(1e-7))


def test_evaluate_per_task() -> None:
    pred = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    labels = np.array([[1, 0], [0, 1], [1, 1]])
    out = evaluate(pred, labels, ["a", "b"])
    assert out["auc"] == out["per_task"]["a"]["auc"] == 1.0
    assert set(out["per_task"]) == {"a", "b"}
    assert out["per_task"]["b"]["auc"] == 1.0 and out["ne"] == out["per_task"]["a"]["ne"]
