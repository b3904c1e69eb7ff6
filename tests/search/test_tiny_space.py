from kunlun.space.solver import BudgetSolver
from kunlun.space.space import RandomTrial, SearchSpace


def test_tiny_space_mostly_feasible(tiny_space):
    space = SearchSpace.load(tiny_space)
    solver = BudgetSolver(space)
    feasible = sum(solver.solve(space.sample(RandomTrial(i))).feasible for i in range(60))
    assert feasible >= 50
