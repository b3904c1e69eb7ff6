"""One trial, backend-agnostic: sample -> solve -> price -> build -> fit -> evaluate.

The backends (Optuna workers, Ray Tune) wrap `run_trial` and turn its `Outcome` into an Optuna trial state:
COMPLETE (feasible), COMPLETE with +inf and a positive constraint (infeasible), FAIL, or PRUNED.
"""

from __future__ import annotations

import json
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kunlun.space.solver import BudgetSolver
from kunlun.space.space import SearchSpace, TrialLike

# DESIGN.md "Search semantics": one set of user-attribute names everywhere.
ATTRS = ("train_flops_per_example", "fwd_flops_per_example", "seq_share", "sequence_flops", "context_flops",
         "params_dense", "params_sparse", "b200_us_per_example", "predicted_mfu", "ne", "auc", "logloss",
         "examples_per_second", "seed", "config_yaml", "fail_reason")
REPORTS = 3  # evaluations per trial (the last is the final one): the rungs pruners compare


class Pruned(Exception):
    """Raised by a backend's report callback when its pruner stops the trial."""


@dataclass
class Outcome:
    state: Literal["complete", "infeasible", "fail", "pruned"]
    values: list[float] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


Report = Callable[[int, float], None]  # (rung 1..REPORTS-1, intermediate NE); may raise Pruned


def objectives() -> list[str]:
    """NE and predicted B200 microseconds per example (DESIGN.md, "Search semantics")."""
    return ["ne", "b200_us_per_example"]


def run_trial(space: SearchSpace, solver: BudgetSolver, trial: TrialLike, number: int, folder: Path,
              report: Report | None = None) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    log = _Log(folder / "log.txt")
    attrs: dict[str, Any] = dict.fromkeys(ATTRS)
    attrs["seed"] = space.spec.seed + number
    try:
        alloc = space.sample(trial)
        attrs.update(family=alloc.family, compskip=alloc.schedule_label(), sampled_seq_share=alloc.seq_share,
                     windows=json.dumps({n: s.window for n, s in alloc.streams.items()}))
        log(f"trial {number}: allocation {alloc}")
        solution = solver.solve(alloc)
        if not solution.feasible:
            log(f"infeasible: {solution.reason}")
            attrs["infeasible_reason"] = solution.reason
            return Outcome("infeasible", [math.inf] * len(objectives()), attrs)
        config = solution.config
        config.train.seed = attrs["seed"]
        config.provenance = {"study": space.spec.name, "trial": number, "budget": space.spec.budget.amount,
                             "budget_kind": space.spec.budget.kind}
        attrs.update(_price(config))
        budget = space.spec.budget
        if abs(attrs["train_flops_per_example"] - budget.amount) > budget.tolerance * budget.amount:
            raise RuntimeError(f"the solver's config has {attrs['train_flops_per_example']:.4g} FLOPs/example, "
                               f"off the budget {budget.amount:.4g}: a solver bug")
        attrs["config_yaml"] = config.to_yaml()
        log(f"widths {solution.widths}; {attrs['train_flops_per_example']:.4g} training FLOPs/example, "
            f"sequence share {attrs['seq_share']:.3f} (sampled {alloc.seq_share:.3f})")
        attrs.update(train_config(config, folder, report, log))
        log(f"NE {attrs['ne']:.5f} AUC {attrs['auc']:.4f}")
        return Outcome("complete", [attrs[k] for k in objectives()], attrs)
    except Pruned:
        log("pruned")
        return Outcome("pruned", attrs=attrs)
    except Exception as e:  # a failed trial is data for the study, not the end of the search
        attrs["fail_reason"] = f"{type(e).__name__}: {e}"
        log(traceback.format_exc())
        return Outcome("fail", attrs=attrs)


def _price(config: Any) -> dict[str, Any]:
    from kunlun.model.count import count_flops
    from kunlun.space.cost import predict

    r = count_flops(config, config.workload)
    out = {"train_flops_per_example": r.train_flops_per_example, "fwd_flops_per_example": r.fwd_flops_per_example,
           "seq_share": r.seq_share, "sequence_flops": r.sequence / r.examples,
           "context_flops": r.context / r.examples, "params_dense": r.params_dense,
           "params_sparse": r.params_sparse}
    cost = predict(config, "b200", report=r)
    out.update(b200_us_per_example=cost.us_per_example, predicted_mfu=cost.mfu)
    return out


def train_config(config: Any, folder: Path, report: Report | None = None, log: _Log | None = None) -> dict[str, Any]:
    """Build and fit one config; curve.csv (and log lines) go into folder."""
    import torch

    from kunlun.data.loader import EvalLoader, TrainLoader
    from kunlun.model.kunlun import KunlunModel
    from kunlun.model.train import fit
    from kunlun.space.data import check_data_path, open_cached

    t = config.train
    check_data_path(t.data)
    data = open_cached(t.data, t.data_seed, t.data_examples)
    torch.manual_seed(t.seed)
    model = KunlunModel(config)
    max_lens = {name: config.model.stream(name).max_len for name in config.stream_names}
    loader = TrainLoader(data, max_lens, t.batch_size, t.examples, seed=t.seed)
    evaluation = EvalLoader(data, max_lens, t.eval_batch_size)
    log = log or _Log(folder / "log.txt")
    every = max(t.examples // REPORTS, 1) if report is not None else 0
    curve = folder / "curve.csv"
    curve.write_text("examples,ne,auc\n")

    def on_eval(point: Any) -> None:
        with curve.open("a") as f:
            f.write(f"{point.examples},{point.metrics['ne']},{point.metrics['auc']}\n")
        log(f"{point.examples} examples: NE {point.metrics['ne']:.5f}")
        rung = point.examples // every if every else 0
        if report is not None and point.examples < t.examples and rung >= 1:
            report(rung, point.metrics["ne"])

    start = time.perf_counter()
    result = fit(model, loader, evaluation, every, on_eval, train=t,
                 train_flops_per_example=None, progress=False)
    m = result.metrics
    if not all(math.isfinite(m[k]) for k in ("ne", "auc", "logloss")):
        raise FloatingPointError(f"non-finite evaluation metrics: NE {m['ne']}, AUC {m['auc']}")
    log(f"fit: {result.examples} examples in {time.perf_counter() - start:.1f} s")
    return {"ne": m["ne"], "auc": m["auc"], "logloss": m["logloss"],
            "examples_per_second": result.examples_per_second}


class _Log:
    def __init__(self, path: Path):
        self.path = path

    def __call__(self, line: str) -> None:
        with self.path.open("a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
