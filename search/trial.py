"""One trial, backend-agnostic: sample -> solve -> price -> build -> fit -> evaluate.

The backends (Optuna workers, Ray Tune) wrap `run_trial` and turn its `Outcome` into an Optuna trial state:
COMPLETE (feasible), COMPLETE with the placeholder values INFEASIBLE_VALUES and a positive constraint (infeasible),
FAIL, or PRUNED.

A fault in a trial is data, not the end of the search: an exception, a NaN/inf training loss or evaluation metric,
running out of memory (CUDA, or the host cap below) make the trial FAIL with `fail_reason` ("out of memory: ..." for
the memory faults) and the search goes on. A trial whose process dies (kill -9, the kernel's OOM killer) is failed
and retried by the backend (store.fail_stale, local.run_local, Ray's FailureConfig).

`KUNLUN_TRIAL_MEMORY=SIZE` (e.g. 4G, 512M, bytes) caps the host memory of each process that runs trials (worker
processes, Ray workers; with it the optuna backend always runs its trials in worker processes): RLIMIT_DATA, so an
allocation past the cap fails inside the trial instead of the kernel killing the process.

On a GPU a trial trains in bf16 with the Triton kernels (`fit`), from batches gathered on the device
(search/device_data.py; `KUNLUN_DEVICE_DATA=auto|on|off`, auto: on CUDA). With `measure` (`kunlun search --price
measured`) it also records what its training steps took where it ran, beside the predicted B200 figures:
`measured_us_per_example` (the second half of training, past the compilations; evaluations excluded),
`measured_mfu` (training FLOPs over the device's dense bf16 peak; None where the peak is unknown, e.g. a CPU) and
`measured_device` (the GPU's name, or "cpu": CPU microseconds are no GPU's).

`KUNLUN_FAULTS` is test-only fault injection, inert unless set: a comma-separated list of KIND@N, each firing once
in trial number N (then a marker file `fault-KIND` in the trial folder holds the pid of the process running the
trial; a trial that Ray re-runs after a crash runs clean):
  crash@N   the process running trial N kills itself (SIGKILL) after sampling: the search with --workers 1, a worker
            process, a Ray worker
  slow@N:S  trial N sleeps S seconds (default 30) after sampling (its heartbeats go on): time to kill the search
  raise@N   trial N raises RuntimeError("injected fault")
  nan@N     trial N's training loss is NaN from its second step
  oom@N     trial N runs out of GPU memory (on CUDA: allocates twice the GPU; on CPU: raises
            torch.OutOfMemoryError, as a full GPU does)
  hog@N     trial N allocates twice KUNLUN_TRIAL_MEMORY of host memory at once (needs the cap)
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
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
MEASURED = ("measured_us_per_example", "measured_mfu", "measured_device")  # with --price measured
PRICES = ("predicted", "measured")
DEVICE_DATA_ENV = "KUNLUN_DEVICE_DATA"
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
            _fire(kind, arg, folder, log)
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
        fitted = train_config(config, folder, report, log, poison=any(k == "nan" for k, _ in faults))
        timed, device = fitted.pop("timed_us_per_example"), fitted.pop("device")
        attrs.update(fitted)
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


# --- host memory cap (KUNLUN_TRIAL_MEMORY) ---

MEMORY_ENV = "KUNLUN_TRIAL_MEMORY"


def memory_cap() -> int | None:
    """Bytes from KUNLUN_TRIAL_MEMORY (4G, 512M, 100K or bytes), None when unset."""
    raw = os.environ.get(MEMORY_ENV, "").strip()
    if not raw:
        return None
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(raw[-1].upper(), 1)
    try:
        value = float(raw[:-1] if scale > 1 else raw) * scale
    except ValueError:
        value = 0
    if value <= 0:
        from kunlun.model.yamlio import ConfigError

        raise ConfigError(MEMORY_ENV, f"{raw!r} is not a memory size (e.g. 4G, 512M)")
    return int(value)


def apply_memory_cap() -> int | None:
    """Cap this process's data segment (RLIMIT_DATA: heap and anonymous mappings) at KUNLUN_TRIAL_MEMORY; call it
    in a process that only runs trials. Returns the cap."""
    cap = memory_cap()
    if cap is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        resource.setrlimit(resource.RLIMIT_DATA, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    return cap


# --- fault injection (KUNLUN_FAULTS, tests only) ---

FAULTS_ENV = "KUNLUN_FAULTS"
FAULT_KINDS = ("crash", "slow", "raise", "nan", "oom", "hog")


def injected_faults(number: int, folder: Path) -> list[tuple[str, str]]:
    """The faults KUNLUN_FAULTS injects into trial `number` (each once per trial folder); [] when unset."""
    raw = os.environ.get(FAULTS_ENV, "").strip()
    if not raw:
        return []
    out = []
    for item in raw.split(","):
        kind, _, rest = item.strip().partition("@")
        target, _, arg = rest.partition(":")
        if kind not in FAULT_KINDS or not target.isdigit():
            raise ValueError(f"{FAULTS_ENV}: {item!r} is not KIND@TRIAL (kinds: {', '.join(FAULT_KINDS)})")
        if int(target) == number and not (folder / f"fault-{kind}").exists():
            out.append((kind, arg))
    return out


def _fire(kind: str, arg: str, folder: Path, log: _Log) -> None:
    (folder / f"fault-{kind}").write_text(f"{os.getpid()}\n")  # the pid of the process running the trial
    log(f"injected fault: {kind}")
    if kind == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "slow":
        time.sleep(float(arg or 30))
    elif kind == "raise":
        raise RuntimeError("injected fault")
    elif kind == "oom":
        import torch

        if torch.cuda.is_available():  # a real one: more than the GPU holds
            torch.empty(2 * torch.cuda.mem_get_info()[1], dtype=torch.uint8, device="cuda")
        raise torch.OutOfMemoryError("CUDA out of memory (injected fault)")
    elif kind == "hog":
        import torch

        cap = memory_cap()
        if cap is None:
            raise ValueError(f"hog needs {MEMORY_ENV}")
        hog = torch.empty(2 * cap, dtype=torch.uint8)  # past the cap: the allocator refuses
        hog.fill_(1)


def _price(config: Any) -> dict[str, Any]:
    from kunlun.model.count import count_flops
    from kunlun.space.cost import predict

    r = count_flops(config, config.workload)
    out = {"train_flops_per_example": r.train_flops_per_example, "fwd_flops_per_example": r.fwd_flops_per_example,
           "seq_share": r.seq_share, "sequence_flops": r.sequence / r.examples,
           "context_flops": r.context / r.examples, "params_dense": r.params_dense,
           "params_sparse": r.params_sparse}
    cost = predict(config, "b200", report=r)
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


def device_data_choice() -> str:
    """KUNLUN_DEVICE_DATA: auto (the default), on or off."""
    choice = os.environ.get(DEVICE_DATA_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "on", "off"):
        from kunlun.model.yamlio import ConfigError

        raise ConfigError(DEVICE_DATA_ENV, f"{choice!r} is not one of auto, on, off")
    return choice


def device_data(device: Any) -> bool:
    """Whether trials on `device` gather their batches there (auto: on CUDA)."""
    choice = device_data_choice()
    return choice == "on" or (choice == "auto" and device.type == "cuda")


def train_config(config: Any, folder: Path, report: Report | None = None, log: _Log | None = None,
                 poison: bool = False) -> dict[str, Any]:
    """Build and fit one config; curve.csv (and log lines) go into folder. `poison`: the injected NaN-loss fault.
    Besides the metrics: `timed_us_per_example` (FitResult's) and `device` (where it trained: a CUDA name or "cpu")."""
    import torch

    from kunlun.data.loader import EvalLoader, TrainLoader
    from kunlun.model.kunlun import KunlunModel
    from kunlun.model.train import fit
    from kunlun.space.data import check_data_path, open_cached

    t = config.train
    check_data_path(t.data)
    data = open_cached(t.data, t.data_seed, t.data_examples, t.split)
    torch.manual_seed(t.seed)
    model = KunlunModel(config)
    if poison:
        _poison_loss(model)
    max_lens = {name: config.model.stream(name).max_len for name in config.stream_names}
    loader = TrainLoader(data, max_lens, t.batch_size, t.examples, seed=t.seed)
    evaluation = EvalLoader(data, max_lens, t.eval_batch_size)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device_data(device):
        from kunlun.search.device_data import on_device

        loader, evaluation = on_device(loader, evaluation, device)
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
                 train_flops_per_example=None, device=device, progress=False)
    m = result.metrics
    if not all(math.isfinite(m[k]) for k in ("ne", "auc", "logloss")):
        raise FloatingPointError(f"non-finite evaluation metrics: NE {m['ne']}, AUC {m['auc']}")
    log(f"fit: {result.examples} examples in {time.perf_counter() - start:.1f} s")
    return {"ne": m["ne"], "auc": m["auc"], "logloss": m["logloss"],
            "examples_per_second": result.examples_per_second, "timed_us_per_example": result.timed_us_per_example,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}


def _poison_loss(model: Any) -> None:
    loss, steps = model.loss, [0]

    def poisoned(batch: Any) -> Any:
        steps[0] += 1
        value = loss(batch)
        return value * float("nan") if steps[0] >= 2 else value

    model.loss = poisoned


class _Log:
    def __init__(self, path: Path):
        self.path = path

    def __call__(self, line: str) -> None:
        with self.path.open("a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
