"""Pareto rows against a brute-force non-dominated filter, on hand-made studies."""

import json
import random

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from kunlun.search.cli import main
from kunlun.search.front import knee
from kunlun.search.store import StudyInfo, storage_url


def _study(out, objectives, seed=0, n=40):
    out.mkdir(parents=True)
    url = storage_url(None, out)
    StudyInfo(name="s", storage=url, space="demo", budget=4e6, budget_kind="flops", families=["kunlun"],
              objectives=objectives, seed=0, trials=n, data="synthetic").write(out)
    study = optuna.create_study(study_name="s", storage=url, directions=["minimize"] * len(objectives))
    rng = random.Random(seed)
    dist = {"x": FloatDistribution(0, 1)}
    for i in range(n):
        ne, flops, us = rng.uniform(0.8, 1.0), rng.uniform(1e6, 4e6), rng.uniform(1, 9)
        attrs = {"ne": ne, "auc": 0.7, "train_flops_per_example": flops, "b200_us_per_example": us,
                 "seq_share": rng.random(), "family": "kunlun", "compskip": "alternate", "windows": "{}"}
        values = [ne, us][: len(objectives)]
        kind = i % 5
        if kind == 3:  # infeasible: +inf with a positive constraint
            attrs.update(infeasible_reason="too small")
            study.add_trial(create_trial(values=[float("inf")] * len(objectives), params={"x": 0.5},
                                         distributions=dist, user_attrs=attrs,
                                         system_attrs={"constraints:budget": 1.0}))
        elif kind == 4:  # pruned or failed with excellent numbers: never on the front
            attrs["ne"] = 0.1
            study.add_trial(create_trial(state=TrialState.PRUNED if i % 2 else TrialState.FAIL, params={"x": 0.5},
                                         distributions=dist, user_attrs=attrs))
        else:
            study.add_trial(create_trial(values=values, params={"x": 0.5}, distributions=dist, user_attrs=attrs,
                                         system_attrs={"constraints:budget": 0.0}))
    return study


def _brute_front(study, x_axis):
    pts = [(t.number, t.user_attrs["ne"], t.user_attrs[x_axis]) for t in study.trials
           if t.state == TrialState.COMPLETE and "infeasible_reason" not in t.user_attrs]
    return sorted(n for n, a, b in pts
                  if not any(a2 <= a and b2 <= b and (a2 < a or b2 < b) for _, a2, b2 in pts))


@pytest.mark.parametrize("objectives,x_axis", [(["ne"], "train_flops_per_example"),
                                                (["ne", "b200_us_per_example"], "b200_us_per_example")])
def test_pareto_rows_equal_brute_force(tmp_path, capsys, objectives, x_axis):
    study = _study(tmp_path / "s", objectives)
    assert main(["pareto", str(tmp_path / "s"), "--format", "json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert sorted(r["trial"] for r in rows) == _brute_front(study, x_axis)
    for r in rows:
        assert {"trial", "budget", "family", "ne", "auc", "train_flops_per_example", "b200_us_per_example",
                "predicted_mfu", "seq_share", "compskip", "windows"} <= set(r)
        assert r["ne"] > 0.5  # the pruned/failed trials' NE of 0.1 never shows
    assert "infeasible" in captured.err and "pruned" in captured.err
    assert (tmp_path / "s" / "pareto.png").stat().st_size > 0
    assert (tmp_path / "s" / "pareto.html").stat().st_size > 0


def test_folder_of_studies_and_table(tmp_path, capsys):
    _study(tmp_path / "all" / "a", ["ne"], seed=1)
    _study(tmp_path / "all" / "b", ["ne"], seed=2)
    assert main(["pareto", str(tmp_path / "all"), "--format", "table", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "feasible" in out and "pruned" in out


def test_knee_is_farthest_from_the_chord():
    class T:
        def __init__(self, n, x, y):
            self.number, self.user_attrs = n, {"x": x, "ne": y}

    front = [("s", T(0, 0.0, 1.0)), ("s", T(1, 0.1, 0.3)), ("s", T(2, 0.5, 0.2)), ("s", T(3, 1.0, 0.0))]
    assert knee(front, "x")[1].number == 1


def test_not_a_study_folder_is_bad_input(tmp_path, capsys):
    assert main(["pareto", str(tmp_path)]) == 2
    assert "study.json" in capsys.readouterr().err


def test_storage_urls(tmp_path):
    from kunlun.model.yamlio import ConfigError
    from kunlun.search.store import open_storage

    assert storage_url(None, tmp_path) == f"sqlite:///{tmp_path.resolve() / 'study.db'}"
    journal = storage_url(f"journal:{tmp_path / 'j.log'}", tmp_path)
    optuna.create_study(study_name="j", storage=open_storage(journal))
    assert optuna.load_study(study_name="j", storage=open_storage(journal)).study_name == "j"
    assert storage_url("postgresql://u@h/db", tmp_path) == "postgresql://u@h/db"
    with pytest.raises(ConfigError, match="--storage"):
        storage_url("redis://x", tmp_path)
