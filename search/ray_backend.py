"""The `ray` backend: Ray Tune runs the trials, Optuna owns the study (the same storage as the optuna backend).

`KunlunOptunaSearch` (an OptunaSearch) samples on the driver, stops suggesting once COMPLETE + running trials
reach --trials, tells Optuna what happened: COMPLETE (feasible or infeasible, with the constraint), FAIL, or
PRUNED when ASHA stopped the trial before its final report; side metrics become user attrs.

Reliability: the driver keeps its running trials alive with a heartbeat (store.Lease) and fails and retries stale
ones, so after a `kill -9` of the driver (its Tune trials die with the job) `--resume` retries the interrupted trials
once their grace period is over and reaches --trials. A trial whose Ray worker dies (killed, OOM) is re-run by Tune
(FailureConfig, up to MAX_RETRIES times) as the same Optuna trial. KUNLUN_* variables (faults, memory cap, heartbeat)
travel to the workers in the runtime_env.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from kunlun.search.context import SearchContext
from kunlun.search.faults import FAULTS_ENV, MEMORY_ENV, apply_memory_cap
from kunlun.search.local import reseed
from kunlun.search.progress import Progress
from kunlun.search.store import (
    HEARTBEAT_ENV,
    MAX_RETRIES,
    Lease,
    fail_stale,
    failing,
    open_storage,
    seed_number,
    write_trials_csv,
)
from kunlun.search.strategy import make_sampler
from kunlun.search.tell import tell
from kunlun.search.trial import REPORTS, Outcome, fail_reason, run_trial
from kunlun.space.time_solver import solver_for

NUMBER = "optuna_trial"  # config key carrying the Optuna trial number to the trainable
SEED = "seed_trial"  # config key: the trial number that fixes the seed (a retry's original trial)
FOLDERS = ("kernels", "model", "data", "space", "search")


class Replay:
    """Answers a space's suggest_* calls with the values the driver sampled (worker side)."""

    def __init__(self, params: dict[str, Any]):
        self.params = params

    def suggest_categorical(self, name: str, choices: list) -> Any:
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return int(self.params[name])

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return float(self.params[name])


def trainable(config: dict[str, Any], ctx: SearchContext) -> None:
    from ray import tune

    params = dict(config)
    number = params.pop(NUMBER)
    seed = params.pop(SEED, number)
    single = len(ctx.objectives) == 1
    apply_memory_cap()
    try:
        space = ctx.load_space()  # checks the data path first: a worker without the data fails here, with the reason
    except Exception as e:
        outcome = Outcome("fail", attrs={"fail_reason": fail_reason(e)})
    else:
        def report(step: int, ne: float) -> None:
            tune.report({"ne": ne, "rung": step})  # ASHA may stop the trial here

        outcome = run_trial(space, solver_for(space), Replay(params), number, ctx.trial_folder(number),
                            report if single else None, seed_number=seed, measure=ctx.price == "measured")
    values = outcome.values or [float("inf")] * len(ctx.objectives)
    # attrs travel as one JSON string: Tune flattens nested result dicts
    tune.report({**dict(zip(ctx.objectives, values)), "final": True, "state": outcome.state,
                 "attrs_json": json.dumps(outcome.attrs)})


def _searcher_class() -> type:
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    class KunlunOptunaSearch(OptunaSearch):
        def __init__(self, ctx: SearchContext, progress: Progress):
            space = ctx.load_space()
            single = len(ctx.objectives) == 1

            def sample(trial: Any) -> dict[str, int]:
                space.sample(trial)
                return {NUMBER: trial.number, SEED: seed_number(trial.study, trial)}

            super().__init__(
                space=sample,
                metric=ctx.objectives[0] if single else ctx.objectives,
                mode="min" if single else ["min"] * len(ctx.objectives),
                sampler=make_sampler(ctx.sampler, len(ctx.objectives), ctx.seed),
                study_name=ctx.study_name, storage=open_storage(ctx.storage))
            self.ctx, self.progress = ctx, progress
            self.lease = Lease(self._ot_study)
            self.checked = 0.0

        def suggest(self, trial_id: str) -> dict | str | None:
            import warnings

            from optuna.trial import TrialState

            if time.monotonic() - self.checked >= 1.0:  # a dead driver's trials: failed and queued for a retry
                self.checked = time.monotonic()
                fail_stale(self._ot_study)
            complete = len(self._ot_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if complete >= self.ctx.trials or failing(self._ot_study):
                return Searcher.FINISHED
            running = len(self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
            if complete + running >= self.ctx.trials:
                return None  # a running trial (ours, another driver's, a dead one's) may still fail and free a slot
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                reseed(self._ot_study, self.ctx)
                config = super().suggest(trial_id)
            self.lease.add(self._ot_trials[trial_id]._trial_id)
            return config

        def save(self, checkpoint_path: str) -> None:
            pass  # the Optuna storage is the searcher's state; --resume reloads it from there

        def restore(self, checkpoint_path: str) -> None:
            pass

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            trial = self._ot_trials[trial_id]
            if result and result.get("final"):
                outcome = Outcome(result["state"], [result[k] for k in self.ctx.objectives],
                                  json.loads(result["attrs_json"]))
            elif error:
                outcome = Outcome("fail", attrs={"fail_reason": f"the Ray trial failed {MAX_RETRIES + 1} times "
                                                 "(its worker died or it raised; see OUT/ray)"})
            else:
                outcome = Outcome("pruned")  # stopped by ASHA before its final report
            tell(self._ot_study, trial, outcome)
            self.lease.remove(trial._trial_id)
            self._completed_trials.add(trial_id)
            write_trials_csv(self._ot_study, self.ctx.out)
            self.progress.update(self._ot_study)

    return KunlunOptunaSearch


def stage_package(out: Path) -> Path:
    """A copy of the `kunlun` namespace package for runtime_env py_modules (workers need not have it installed)."""
    root = Path(__file__).resolve().parents[1]
    dest = out / "ray" / "package" / "kunlun"
    shutil.rmtree(dest, ignore_errors=True)
    for folder in FOLDERS:
        shutil.copytree(root / folder, dest / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.tmp"))
    return dest


def run_ray(ctx: SearchContext, address: str | None, cpus: float, gpus: float, progress: Progress) -> None:
    if address is None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local cluster; a shared one keeps its own
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    data = ctx.overrides.get("data", "")
    forwarded = {k: os.environ[k] for k in (FAULTS_ENV, MEMORY_ENV, HEARTBEAT_ENV) if os.environ.get(k)}
    runtime_env = {"py_modules": [str(stage_package(ctx.out))],
                   "env_vars": {"KUNLUN_DATA": data, "PYTHONWARNINGS": "ignore", **forwarded}}
    started = not ray.is_initialized()
    if started:
        # a private local instance stays on loopback; a cluster's nodes keep the addresses they registered with
        kwargs = {} if address else {"num_cpus": os.cpu_count(), "_node_ip_address": "127.0.0.1"}
        ray.init(address=address, runtime_env=runtime_env, include_dashboard=False, log_to_driver=False, **kwargs)
    single = len(ctx.objectives) == 1
    scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=REPORTS, grace_period=1, reduction_factor=3)
                 if single else FIFOScheduler())
    searcher = _searcher_class()(ctx, progress)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, ctx=ctx), {"cpu": cpus, "gpu": gpus}),
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=-1, metric=ctx.objectives[0] if single else None,
                                    mode="min" if single else None),
        run_config=tune.RunConfig(storage_path=str(ctx.out / "ray"), name=ctx.study_name, verbose=0,
                                  log_to_file=True, failure_config=tune.FailureConfig(max_failures=MAX_RETRIES)),
    )
    try:
        tuner.fit()
    finally:
        searcher.lease.close()
        if started:
            ray.shutdown()
    print(f"kunlun search: Ray results in {ctx.out / 'ray'}", file=sys.stderr)
