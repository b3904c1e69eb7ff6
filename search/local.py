"""The `optuna` backend: worker processes on this machine sharing one Optuna storage.

A worker claims a trial under the folder lock only while COMPLETE + RUNNING trials are fewer than `--trials`, so the
study reaches exactly N COMPLETE trials and never overshoots; a PRUNED or FAILED trial frees its slot. A worker
keeps its trial alive with a heartbeat (store.Lease). While every slot is taken it waits rather than leaving: a
RUNNING trial of a search that died (kill -9) is failed at once when its process is provably gone (same host), else
once its heartbeat is older than the grace period, and its retry (same params, same seed) is claimed before anything
new is sampled (store.fail_stale), so `--resume` after a crash reaches N.

Worker processes die with the search (PR_SET_PDEATHSIG, and a check of the parent right after it is set); a worker
that dies by a signal (the kernel's OOM killer, kill -9) has its trial failed and retried at once, and is replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from kunlun.model.train import use_cpu_threads
from kunlun.search.context import SearchContext
from kunlun.search.faults import apply_memory_cap, memory_cap
from kunlun.search.progress import Progress
from kunlun.search.store import (
    Lease,
    ask,
    draws,
    fail_and_retry,
    fail_stale,
    failing,
    folder_lock,
    open_storage,
    seed_number,
    write_trials_csv,
)
from kunlun.search.strategy import make_pruner, make_sampler
from kunlun.search.tell import tell
from kunlun.search.trial import REPORTS, Pruned, run_trial
from kunlun.space.time_solver import solver_for

POLL = 0.5  # seconds between checks while every slot is taken, and of the worker processes


def claimed(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)))


def complete(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def reseed(study: Any, ctx: SearchContext) -> None:
    """A sampler seeded by the study seed and the index of the next draw, set before each ask: the sampler's
    randomness depends on the draw, not on which process asks or how often it restarted, so a resumed 1-worker
    study samples what the uninterrupted one did (and never replays a first run's samples)."""
    study.sampler = make_sampler(ctx.sampler, len(ctx.objectives), ctx.seed * 1_000_003 + draws(study))


def worker(ctx: SearchContext, after_trial: Callable[[Any], None] | None = None,
           parent: int | None = None, current: Any = None) -> None:
    """Claim and run trials until the study holds --trials COMPLETE ones. `parent`: leave when the search process is
    gone; `current` (a shared integer): the storage id of the trial in flight, -1 between trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = ctx.load_space()
    solver = solver_for(space)
    study = optuna.load_study(study_name=ctx.study_name, storage=open_storage(ctx.storage),
                              pruner=make_pruner(len(ctx.objectives), REPORTS - 1))
    lease = Lease(study)
    try:
        while parent is None or os.getppid() == parent:
            with folder_lock(ctx.out):
                fail_stale(study)
                if complete(study) >= ctx.trials or failing(study):
                    return
                trial = None
                if claimed(study) < ctx.trials:
                    reseed(study, ctx)
                    trial = ask(study)
                    lease.add(trial._trial_id)
                    if current is not None:
                        current.value = trial._trial_id
            if trial is None:  # every slot is taken by a running trial: it may still fail, or be a dead one's
                if after_trial is not None:
                    after_trial(study)
                time.sleep(POLL)
                continue
            outcome = run_trial(space, solver, trial, trial.number, ctx.trial_folder(trial.number), _reporter(trial),
                                seed_number=seed_number(study, trial), measure=ctx.price == "measured")
            tell(study, trial, outcome)
            lease.remove(trial._trial_id)
            if current is not None:
                current.value = -1
            with folder_lock(ctx.out):
                write_trials_csv(study, ctx.out)
            if after_trial is not None:
                after_trial(study)
    finally:
        lease.close()


def _reporter(trial: Any) -> Callable[[int, float], None] | None:
    if len(trial.study.directions) > 1:
        return None

    def report(step: int, ne: float) -> None:
        trial.report(ne, step)
        if trial.should_prune():
            raise Pruned

    return report


def _die_with_parent(parent: int) -> None:
    """A `kill -9` of the search takes its workers with it (Linux: PR_SET_PDEATHSIG). A parent that died before the
    signal was armed is caught by the check of getppid()."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)


def _death(exitcode: int) -> str:
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def _spawned_worker(ctx: SearchContext, parent: int, current: Any, workers: int) -> None:
    use_cpu_threads(workers)
    _die_with_parent(parent)
    apply_memory_cap()
    worker(ctx, parent=parent, current=current)


def run_local(ctx: SearchContext, study: Any, workers: int, progress: Progress) -> None:
    if workers == 1 and memory_cap() is None:
        use_cpu_threads()
        worker(ctx, after_trial=progress.update)
        return
    mp = multiprocessing.get_context("spawn")
    current = [mp.Value("q", -1, lock=False) for _ in range(workers)]

    def start(i: int) -> Any:
        p = mp.Process(target=_spawned_worker, args=(ctx, os.getpid(), current[i], workers), daemon=True)
        p.start()
        return p

    procs = {i: start(i) for i in range(workers)}
    replaced, errors = 0, []
    try:
        while procs:
            progress.update(study)
            time.sleep(POLL)
            for i, p in list(procs.items()):
                if p.is_alive():
                    continue
                del procs[i]
                if not p.exitcode:
                    continue
                trial_id, current[i].value = current[i].value, -1
                reason = (f"the worker process died ({_death(p.exitcode)}; out of memory?)" if p.exitcode < 0
                          else f"the worker process failed ({_death(p.exitcode)})")
                if trial_id >= 0:
                    with folder_lock(ctx.out):
                        number = fail_and_retry(study, trial_id, reason)
                        write_trials_csv(study, ctx.out)
                    if number is not None:
                        print(f"kunlun search: trial {number} failed: {reason}; retrying it", file=sys.stderr)
                if p.exitcode > 0:  # an error it printed: replacing the worker would repeat it
                    errors.append(f"worker {i} exited with code {p.exitcode} (its traceback is above)")
                elif replaced < ctx.trials and complete(study) < ctx.trials:
                    replaced += 1
                    procs[i] = start(i)
    finally:
        for p in procs.values():
            if p.is_alive():
                p.terminate()
            p.join()
    progress.update(study)
    if errors and complete(study) < ctx.trials and not failing(study):
        raise RuntimeError("; ".join(errors))
