"""The `optuna` backend: worker processes on this machine sharing one Optuna storage.

A worker claims a trial under the folder lock only while COMPLETE + RUNNING trials are fewer than `--trials`, so the
study reaches exactly N COMPLETE trials and never overshoots; a PRUNED or FAILED trial frees its slot.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import signal
import time
from collections.abc import Callable
from typing import Any

from kunlun.search.context import SearchContext
from kunlun.search.progress import Progress
from kunlun.search.store import failing, folder_lock, open_storage, write_trials_csv
from kunlun.search.strategy import make_pruner, make_sampler
from kunlun.search.tell import tell
from kunlun.search.trial import REPORTS, Pruned, run_trial
from kunlun.space.solver import BudgetSolver


def claimed(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)))


def worker(ctx: SearchContext, index: int, after_trial: Callable[[Any], None] | None = None) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = ctx.load_space()
    solver = BudgetSolver(space)
    study = optuna.load_study(
        study_name=ctx.study_name, storage=open_storage(ctx.storage),
        sampler=make_sampler(ctx.sampler, len(ctx.objectives), ctx.seed * 1000 + index),
        pruner=make_pruner(len(ctx.objectives), REPORTS - 1))
    while True:
        with folder_lock(ctx.out):
            if claimed(study) >= ctx.trials or failing(study):
                return
            trial = study.ask()
        outcome = run_trial(space, solver, trial, trial.number, ctx.trial_folder(trial.number), _reporter(trial))
        tell(study, trial, outcome)
        with folder_lock(ctx.out):
            write_trials_csv(study, ctx.out)
        if after_trial is not None:
            after_trial(study)


def _reporter(trial: Any) -> Callable[[int, float], None] | None:
    if len(trial.study.directions) > 1:
        return None

    def report(step: int, ne: float) -> None:
        trial.report(ne, step)
        if trial.should_prune():
            raise Pruned

    return report


def _die_with_parent() -> None:
    """A `kill -9` of the search takes its workers with it (Linux: PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)


def _spawned_worker(ctx: SearchContext, index: int) -> None:
    _die_with_parent()
    worker(ctx, index)


def run_local(ctx: SearchContext, study: Any, workers: int, progress: Progress) -> None:
    if workers == 1:
        worker(ctx, 0, after_trial=progress.update)
        return
    mp = multiprocessing.get_context("spawn")
    procs = [mp.Process(target=_spawned_worker, args=(ctx, i), daemon=True) for i in range(workers)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            progress.update(study)
            time.sleep(1.0)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
    progress.update(study)
