"""A search under a B200-time budget (`--budget 3us`): trials land on the predicted time, not on FLOPs."""

from __future__ import annotations

import json
import statistics

import optuna

from kunlun.search.cli import main
from kunlun.space.cost import predict
from kunlun.space.solver import BudgetSolver
from kunlun.space.space import RandomTrial, SearchSpace


def test_search_lands_trials_on_a_time_budget(tiny_space, tmp_path, capsys):
    space = SearchSpace.load(tiny_space)
    solver = BudgetSolver(space)
    solutions = [solver.solve(space.sample(RandomTrial(seed))) for seed in range(8)]
    us = statistics.median(predict(s.config, "b200").us_per_example for s in solutions if s.feasible)
    out = tmp_path / "study"
    assert main(["search", str(tiny_space), "--budget", f"{us:.4f}us", "--trials", "2", "--out", str(out)]) == 0
    info = json.loads((out / "study.json").read_text())
    assert info["budget_kind"] == "b200_time"
    study = optuna.load_study(study_name=info["name"], storage=info["storage"])
    complete = [t for t in study.trials if t.user_attrs.get("ne") is not None]
    assert complete
    for t in complete:
        assert abs(t.user_attrs["b200_us_per_example"] / us - 1) <= space.spec.budget.tolerance + 1e-3
