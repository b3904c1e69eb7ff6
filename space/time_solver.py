"""Budgets in predicted B200 time (`--budget 40us`): the FLOP solver inside a one-dimensional search.

At a fixed structure (the allocation without its widths) the predicted time per example grows with the training
FLOPs per example, but not in proportion: launches are a fixed cost and narrow matmuls run at lower efficiency
(space/cost.py). So the solver searches the FLOP budget F, landing each F with `BudgetSolver`, until the cost
model's microseconds per example are within the budget's tolerance. Time need not be monotone in F (a width
crossing an efficiency bucket can make a wider config faster), so a coarse grid over the structure's FLOP range
finds the brackets where the predicted time crosses the budget, and regula falsi on log F (Illinois variant, so
one stuck end cannot stall it) lands in the bracket with the most FLOPs.
"""

from __future__ import annotations

import math

from kunlun.model.config import KunlunConfig
from kunlun.space.allocation import Allocation
from kunlun.space.cost import PRICED_ON, EfficiencyTable, predict
from kunlun.space.flops import FlopFn, count_flop_vector
from kunlun.space.solver import BudgetSolver, Solution
from kunlun.space.space import SearchSpace

_GRID = 9  # probes over the structure's FLOP range: predicted time need not be monotone in FLOPs
_REFINE_STEPS = 20


class TimeBudgetSolver(BudgetSolver):
    """`solve(alloc)` lands predicted `gpu` microseconds per training example on the space's b200_time budget."""

    def __init__(self, space: SearchSpace, budget_us: float | None = None, gpu: str = PRICED_ON,
                 table: EfficiencyTable | None = None, flop_fn: FlopFn = count_flop_vector):
        self.time_budget = float(budget_us if budget_us is not None else space.spec.budget.amount)
        self.gpu, self.table = gpu, table
        super().__init__(space, budget=math.nan, flop_fn=flop_fn)  # no FLOP budget of its own: each probe names one

    def time_us(self, config: KunlunConfig) -> float:
        return predict(config, self.gpu, table=self.table).us_per_example

    def _probe(self, alloc: Allocation, log_flops: float) -> tuple[Solution, float]:
        """The FLOP solver's answer at exp(log_flops), and its predicted time (nan when it does not land)."""
        solution = self.solve_flops(alloc, math.exp(log_flops))
        if not solution.feasible:
            return solution, math.nan
        solution.b200_us_per_example = self.time_us(solution.config)
        return solution, solution.b200_us_per_example

    def solve(self, alloc: Allocation) -> Solution:
        reach = self.reach(alloc)
        if reach is None:
            return self.solve_flops(alloc, math.nan)  # the structure's own reason
        target, tol = self.time_budget, self.tolerance
        lo, hi = math.log(reach[0]), math.log(reach[1])
        grid = [lo + (hi - lo) * k / (_GRID - 1) for k in range(_GRID)]
        probes = [(x, *self._probe(alloc, x)) for x in grid]
        landed = [(x, sol, t) for x, sol, t in probes if sol.feasible]
        if not landed:
            return probes[_GRID // 2][1]  # the FLOP solver's reason, mid-range
        for _, sol, t in reversed(landed):
            if abs(t / target - 1) <= tol:
                return sol
        times = [t for _, _, t in landed]
        if min(times) > target * (1 + tol):
            return Solution(alloc, reason=f"budget too small: every width of this structure is predicted at >= "
                            f"{min(times):.4g} us/example on {self.gpu} > {target:.4g}", kind="too_small")
        if max(times) < target * (1 - tol):
            return Solution(alloc, reason=f"budget too large: every width of this structure is predicted at <= "
                            f"{max(times):.4g} us/example on {self.gpu} < {target:.4g}", kind="too_large")
        # Brackets between neighbouring landed probes whose times straddle the target, the most FLOPs first:
        # of two configs that take the same time, the one doing more work is the better use of it.
        last = landed[-1][1]
        pairs = [(a, b) for a, b in zip(landed, landed[1:]) if (a[2] - target) * (b[2] - target) < 0]
        for (x_a, _, t_a), (x_b, _, t_b) in reversed(pairs):
            solution = self._refine(alloc, x_a, t_a - target, x_b, t_b - target)
            if solution.feasible:
                return solution
            last = solution
        return Solution(alloc, reason=f"no width lands within {tol:.0%} of {target:.4g} us/example on {self.gpu}"
                        + (f" ({last.reason})" if last.reason else ""), kind=last.kind or "rounding")

    def _refine(self, alloc: Allocation, x_a: float, f_a: float, x_b: float, f_b: float) -> Solution:
        """Regula falsi (Illinois) on log FLOPs between two probes with times on both sides of the target."""
        target, tol = self.time_budget, self.tolerance
        solution = Solution(alloc)
        side = 0
        for _ in range(_REFINE_STEPS):
            x = x_b - f_b * (x_b - x_a) / (f_b - f_a)
            solution, t = self._probe(alloc, x)
            if not solution.feasible:
                return solution
            f = t - target
            if abs(t / target - 1) <= tol:
                return solution
            if (f < 0) == (f_a < 0):
                x_a, f_a = x, f
                if side == -1:
                    f_b /= 2  # Illinois: the end that stayed twice is halved, so the secant moves it too
                side = -1
            else:
                x_b, f_b = x, f
                if side == 1:
                    f_a /= 2
                side = 1
        return Solution(alloc, reason="the search over FLOPs did not converge", kind="rounding")


def solver_for(space: SearchSpace, budget: float | None = None, flop_fn: FlopFn = count_flop_vector) -> BudgetSolver:
    """The solver a space's budget kind needs."""
    if space.spec.budget.kind == "b200_time":
        return TimeBudgetSolver(space, budget_us=budget, flop_fn=flop_fn)
    return BudgetSolver(space, budget=budget, flop_fn=flop_fn)
