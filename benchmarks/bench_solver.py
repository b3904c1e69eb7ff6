"""Budget-solver throughput on a space (default: demo): prints solves/s, cold (every structure fitted on first
sight, as in a fresh search) and warm (structures cached, as a sampler revisits them).

    .venv/bin/python benchmarks/bench_solver.py [SPACE] [--samples N]
"""

from __future__ import annotations

import argparse
import time

from kunlun.space.solver import BudgetSolver
from kunlun.space.space import RandomTrial, SearchSpace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("space", nargs="?", default="demo")
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    space = SearchSpace.load(args.space)
    allocations = [space.sample(RandomTrial(i)) for i in range(args.samples)]
    solver = BudgetSolver(space)
    t0 = time.perf_counter()
    feasible = sum(solver.solve(a).feasible for a in allocations)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    for a in allocations:
        solver.solve(a)
    warm = time.perf_counter() - t0
    structures = len({a.structure() for a in allocations})
    print(f"{args.space}: {args.samples} allocations, {structures} structures, {feasible / args.samples:.1%} feasible")
    print(f"cold: {args.samples / cold:,.0f} solves/s (includes {structures} polynomial fits)")
    print(f"warm: {args.samples / warm:,.0f} solves/s")


if __name__ == "__main__":
    main()
