"""`kunlun search --dry-run`: sample the space, solve every sample, report what lands and its ranges."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kunlun.space.space import RandomTrial, SearchSpace
from kunlun.space.time_solver import solver_for


def dry_run(space: SearchSpace, samples: int, progress: bool = True) -> dict[str, Any]:
    import sys

    from tqdm import tqdm

    from kunlun.model.count import count_flops

    solver = solver_for(space)
    flops, shares, dense, sparse = [], [], [], []
    reasons: Counter[str] = Counter()
    for i in tqdm(range(samples), desc="dry run", unit="sample", file=sys.stderr, disable=not progress,
                  dynamic_ncols=True, leave=False):
        solution = solver.solve(space.sample(RandomTrial(space.spec.seed * 100003 + i)))
        if not solution.feasible:
            reasons[solution.kind] += 1
            continue
        r = count_flops(solution.config, solution.config.workload)
        flops.append(r.train_flops_per_example)
        shares.append(r.seq_share)
        dense.append(r.params_dense)
        sparse.append(r.params_sparse)
    feasible = len(flops)

    def span(xs: list[float]) -> list[float] | None:
        return [min(xs), max(xs)] if xs else None

    return {"space": space.spec.name, "budget": space.spec.budget.amount, "budget_kind": space.spec.budget.kind,
            "samples": samples, "feasible": feasible, "feasible_fraction": feasible / samples,
            "train_flops_per_example": span(flops), "seq_share": span(shares), "params_dense": span(dense),
            "params_sparse": span(sparse), "infeasible_reasons": dict(reasons.most_common())}
