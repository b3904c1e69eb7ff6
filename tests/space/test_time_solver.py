"""Budgets in predicted B200 time: the FLOP solver inside a search over FLOPs (space/time_solver.py)."""

import statistics

import pytest

from kunlun.space.cost import predict
from kunlun.space.solver import BudgetSolver
from kunlun.space.space import RandomTrial, SearchSpace
from kunlun.space.time_solver import TimeBudgetSolver, solver_for

FLOP_SPACE = SearchSpace.load("demo")


@pytest.fixture(scope="module")
def typical_us() -> float:
    """The median predicted B200 time of demo configs landed on the demo's FLOP budget."""
    solver = BudgetSolver(FLOP_SPACE)
    solutions = [solver.solve(FLOP_SPACE.sample(RandomTrial(seed))) for seed in range(12)]
    return statistics.median(predict(s.config, "b200").us_per_example for s in solutions if s.feasible)


def test_a_time_budget_loads_and_picks_the_time_solver(typical_us):
    space = SearchSpace.load("demo", budget=f"{typical_us:.4f}us")
    assert space.spec.budget.kind == "b200_time"
    assert space.spec.budget.amount == pytest.approx(typical_us, rel=1e-3)
    assert isinstance(solver_for(space), TimeBudgetSolver)
    assert type(solver_for(FLOP_SPACE)) is BudgetSolver


def test_landed_configs_are_predicted_within_the_tolerance(typical_us):
    space = SearchSpace.load("demo", budget=f"{typical_us:.4f}us")
    solver = TimeBudgetSolver(space)
    landed = 0
    for seed in range(16):
        solution = solver.solve(space.sample(RandomTrial(100 + seed)))
        if not solution.feasible:
            assert solution.reason and solution.kind
            continue
        landed += 1
        # the time recorded is the cost model's for the config returned, not a stale probe's
        assert solution.b200_us_per_example == pytest.approx(predict(solution.config, "b200").us_per_example)
        assert abs(solution.b200_us_per_example / space.spec.budget.amount - 1) <= space.spec.budget.tolerance
    assert landed >= 2


@pytest.mark.parametrize("budget,kind", [("0.001us", "too_small"), ("10s", "too_large")])
def test_unreachable_time_budgets_say_which_way(budget, kind):
    space = SearchSpace.load("demo", budget=budget)
    solution = TimeBudgetSolver(space).solve(space.sample(RandomTrial(0)))
    assert not solution.feasible and solution.kind == kind
    assert "us/example on b200" in solution.reason
