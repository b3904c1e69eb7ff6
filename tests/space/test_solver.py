import math

from hypothesis import given
from hypothesis import strategies as st

from kunlun.model.config import KunlunConfig
from kunlun.model.count import count_flops
from kunlun.space.solver import BudgetSolver
from kunlun.space.space import RandomTrial, SearchSpace

SPACE = SearchSpace.load("demo")
SOLVER = BudgetSolver(SPACE)
KINDS = {"too_small", "too_large", "rounding", "share", "invalid"}


def _check(solution, budget, tolerance):
    if not solution.feasible:
        assert solution.reason and solution.kind in KINDS
        return
    config = solution.config
    report = count_flops(config, config.workload)
    assert abs(report.train_flops_per_example - budget) <= tolerance * budget
    # the solver's polynomial is exact: its prediction is the analytic count
    assert math.isclose(report.train_flops_per_example, solution.train_flops_per_example, rel_tol=1e-9)
    assert abs(report.seq_share - solution.allocation.target_seq_share) <= SPACE.spec.solver.share_tolerance
    # it is a valid config: the YAML round trip runs every check loading runs
    assert KunlunConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()
    for s in config.model.streams.values():
        assert s.d % s.heads == 0
        assert s.d % SPACE.spec.solver.width_multiple == 0
    assert config.model.d_model % SPACE.spec.solver.width_multiple == 0


@given(st.integers(0, 10**6), st.sampled_from([1e6, 4e6, 3e7, 1e12]))
def test_solver_lands_on_budget_or_says_why(seed, budget):
    solver = SOLVER if budget == SPACE.spec.budget.amount else BudgetSolver(SPACE, budget=budget)
    _check(solver.solve(SPACE.sample(RandomTrial(seed))), budget, SPACE.spec.budget.tolerance)


def test_demo_space_is_at_least_90_percent_feasible():
    feasible = sum(SOLVER.solve(SPACE.sample(RandomTrial(i))).feasible for i in range(200))
    assert feasible >= 180


def test_an_impossible_budget_is_infeasible_with_a_reason():
    solution = BudgetSolver(SPACE, budget=10.0).solve(SPACE.sample(RandomTrial(0)))
    assert not solution.feasible and solution.kind == "too_small" and "budget" in solution.reason
