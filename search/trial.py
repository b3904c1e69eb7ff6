"""One trial, backend-agnostic: sample -> solve -> price -> build -> fit -> evaluate.

The backends (Optuna workers, Ray Tune) wrap `run_trial` and turn its `Outcome` into an Optuna trial state:
COMPLETE (feasible), COMPLETE with the placeholder values INFEASIBLE_VALUES and a positive constraint (infeasible),
FAIL, or PRUNED.

A fault in a trial is data, not the end of the search: an exception, a NaN/inf training loss or evaluation metric,
running out of memory (CUDA, or the host cap) make the trial FAIL with `fail_reason` ("out of memory: ..." for
the memory faults) and the search goes on. A trial whose process dies (kill -9, the kernel's OOM killer) is failed
and retried by the backend (store.fail_stale, local.run_local, Ray's FailureConfig). The host memory cap
(`KUNLUN_TRIAL_MEMORY`) and the test-only fault injection (`KUNLUN_FAULTS`) are search/faults.py's.

A trial trains through search/training.py's `train_and_evaluate` on its space's cached data; with a `report` it
evaluates REPORTS times, the rungs a pruner compares. With `measure` (`kunlun search --price measured`) it also
records what its training steps took where it ran, beside the predicted B200 figures: `measured_us_per_example` (the
second half of training, past the compilations; evaluations excluded), `measured_mfu` (training FLOPs over the
device's dense bf16 peak; None where the peak is unknown, e.g. a CPU) and `measured_device` (the GPU's name, or
"cpu": CPU microseconds are no GPU's).
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kunlun.search.faults import fire, injected_faults, poison_loss
from kunlun.space.solver import BudgetSolver
from kunlun.space.space import SearchSpace, TrialLike

# DESIGN.md "Search semantics": one set of user-attribute names everywhere.
ATTRS = ("train_flops_per_example", "fwd_flops_per_example", "seq_share", "sequence_flops", "context_flops",
         "params_dense", "params_sparse", "b200_us_per_example", "predicted_mfu", "ne", "auc", "logloss",
         "examples_per_second", "seed", "config_yaml", "fail_reason")
MEASURED = ("measured_us_per_example", "measured_mfu", "measured_device")  # with --price measured
PRICES = ("predicted", "measured")
REPORTS = 3  # evaluations per trial (the last is the final one): the rungs pruners compare


class Pruned(Exception):
    """Raised by a backend's report callback when its pruner stops the trial."""


@dataclass
class Outcome:
    state: Literal["complete", "infeasible", "fail", "pruned"]
    values: list[float] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


Report = Callable[[int, float], None]  # (rung 1..REPORTS-1, intermediate NE); may raise Pruned


# An infeasible trial has no model to measure. Its objective values are finite placeholders (optuna-dashboard plots
# them; +inf it cannot): NE 1.0, the base rate's (a model that learned nothing), and 0 us. Every Optuna 5 sampler
# (TPE, NSGA-II, GP) reads the trial's constraint and ranks infeasible trials below all feasible ones whatever their
# values; pareto, export, scaling and warm starts skip them by their `infeasible_reason`.
INFEASIBLE_VALUES = {"ne": 1.0, "b200_us_per_example": 0.0}


def objectives() -> list[str]:
    """NE and predicted B200 microseconds per example (DESIGN.md, "Search semantics")."""
    return ["ne", "b200_us_per_example"]


def run_trial(space: SearchSpace, solver: BudgetSolver, trial: TrialLike, number: int, folder: Path,
              report: Report | None = None, seed_number: int | None = None, measure: bool = False) -> Outcome:
    """`seed_number` (default `number`) fixes the initialisation seed: a retried trial passes its original's.
    `measure`: record the measured time per example (module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    log = _Log(folder / "log.txt")
    attrs: dict[str, Any] = dict.fromkeys(ATTRS)
    attrs["seed"] = space.spec.seed + (number if seed_number is None else seed_number)
    faults = injected_faults(number, folder)
    try:
        alloc = space.sample(trial)
        attrs.update(family=alloc.family, compskip=alloc.schedule_label(), sampled_seq_share=alloc.target_seq_share,
                     windows=json.dumps({n: s.window for n, s in alloc.streams.items()}))
        log(f"trial {number}: allocation {alloc}")
        for kind, arg in faults:
            fire(kind, arg, folder, log)
        solution = solver.solve(alloc)
        if not solution.feasible:
            log(f"infeasible: {solution.reason}")
            attrs["infeasible_reason"] = solution.reason
            return Outcome("infeasible", [INFEASIBLE_VALUES[k] for k in objectives()], attrs)
        config = solution.config
        config.train.seed = attrs["seed"]
        config.provenance = {"study": space.spec.name, "trial": number, "budget": space.spec.budget.amount,
                             "budget_kind": space.spec.budget.kind}
        attrs.update(_price(config))
        budget = space.spec.budget
        landed, unit = ((attrs["b200_us_per_example"], "B200 us/example") if budget.kind == "b200_time"
                        else (attrs["train_flops_per_example"], "FLOPs/example"))
        if abs(landed - budget.amount) > budget.tolerance * budget.amount:
            raise RuntimeError(f"the solver's config has {landed:.4g} {unit}, off the budget {budget.amount:.4g}: "
                               "a solver bug")
        attrs["config_yaml"] = config.to_yaml()
        log(f"widths {solution.widths}; {attrs['train_flops_per_example']:.4g} training FLOPs/example, "
            f"sequence share {attrs['seq_share']:.3f} (sampled {alloc.target_seq_share:.3f})")
        fitted = _train(config, folder, report, log, poison=any(k == "nan" for k, _ in faults))
        timed, device = fitted["timed_us_per_example"], fitted["device"]
        attrs.update({k: fitted[k] for k in ("ne", "auc", "logloss", "examples_per_second")})
        if measure:
            attrs.update(measured(timed, attrs["train_flops_per_example"], device))
            log(f"measured {timed:.4g} us/example on {device} (predicted B200: {attrs['b200_us_per_example']:.4g})")
        log(f"NE {attrs['ne']:.5f} AUC {attrs['auc']:.4f}")
        return Outcome("complete", [attrs[k] for k in objectives()], attrs)
    except Pruned:
        log("pruned")
        return Outcome("pruned", attrs=attrs)
    except Exception as e:  # a failed trial is data for the study, not the end of the search
        attrs["fail_reason"] = fail_reason(e)
        log(traceback.format_exc())
        log(f"failed: {attrs['fail_reason']}")
        _release_memory(e)
        return Outcome("fail", attrs=attrs)


def fail_reason(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    return f"out of memory: {text}" if is_oom(e) else text


def is_oom(e: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or the CPU allocator refusing (e.g. past KUNLUN_TRIAL_MEMORY)."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    text = str(e).lower()
    return "can't allocate memory" in text or "out of memory" in text or "cannot allocate memory" in text


def _release_memory(e: BaseException) -> None:
    if is_oom(e):
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the next trial in this process gets the memory back


def _price(config: Any) -> dict[str, Any]:
    from kunlun.model.count import count_flops
    from kunlun.space.cost import PRICED_ON, predict

    r = count_flops(config, config.workload)
    out = {"train_flops_per_example": r.train_flops_per_example, "fwd_flops_per_example": r.fwd_flops_per_example,
           "seq_share": r.seq_share, "sequence_flops": r.sequence / r.examples,
           "context_flops": r.context / r.examples, "params_dense": r.params_dense,
           "params_sparse": r.params_sparse}
    cost = predict(config, PRICED_ON, report=r)
    out.update(b200_us_per_example=cost.us_per_example, predicted_mfu=cost.mfu, launch_share=cost.launch_share)
    return out


def measured(us_per_example: float | None, train_flops_per_example: float, device: str) -> dict[str, Any]:
    """The MEASURED attributes of a trial timed at `us_per_example` on `device` (a CUDA device name or "cpu")."""
    import torch

    from kunlun.kernels.hardware import UNKNOWN, detect

    if us_per_example is None:
        return dict.fromkeys(MEASURED)
    spec = detect(device) if device != "cpu" else UNKNOWN
    mfu = (train_flops_per_example / (us_per_example * 1e-6) / spec.peak_flops(torch.bfloat16)
           if spec != UNKNOWN else None)
    return {"measured_us_per_example": us_per_example, "measured_mfu": mfu, "measured_device": device}


def _train(config: Any, folder: Path, report: Report | None, log: _Log, poison: bool) -> dict[str, Any]:
    """Train the trial's config on its cached data: curve.csv and log lines into folder, the rungs to `report`.
    `poison`: the injected NaN-loss fault."""
    from kunlun.search.training import check_finite, train_and_evaluate, training_data

    data = training_data(config)
    examples = config.train.examples_for(len(data.train_index))
    every = max(examples // REPORTS, 1) if report is not None else 0
    curve = folder / "curve.csv"
    curve.write_text("examples,ne,auc\n")

    def on_eval(point: Any) -> None:
        with curve.open("a") as f:
            f.write(f"{point.examples},{point.metrics['ne']},{point.metrics['auc']}\n")
        log(f"{point.examples} examples: NE {point.metrics['ne']:.5f}")
        rung = point.examples // every if every else 0
        if report is not None and point.examples < examples and rung >= 1:
            report(rung, point.metrics["ne"])

    start = time.perf_counter()
    fitted = train_and_evaluate(config, data, on_eval, every=every,
                                prepare=poison_loss if poison else None)
    check_finite(fitted)
    log(f"fit: {fitted['examples']} examples in {time.perf_counter() - start:.1f} s")
    return fitted


class _Log:
    def __init__(self, path: Path):
        self.path = path

    def __call__(self, line: str) -> None:
        with self.path.open("a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
