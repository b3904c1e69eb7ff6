"""Crash and resume: a `kill -9` of the search (optuna backend, Ray driver) takes its workers with it; `--resume`
keeps every finished trial, fails the interrupted ones (heartbeat: 1 s, stale after 3 s) and retries them with the
same params and seed, and reaches --trials. A killed worker process has its trial retried and is replaced."""

import os
import signal
import time

import pytest
from optuna.trial import TrialState

from kunlun.search.cli import main
from kunlun.search.store import LEASE, load_study


def _search(space, out, *extra):
    return main(["search", str(space), "--out", str(out), "--no-progress", *extra])


def _by_state(out):
    trials = load_study(out).get_trials()
    return {s: [t for t in trials if t.state == s] for s in TrialState}


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _dead(pid):
    """Gone, or a zombie nobody reaped yet: either way it runs no more code."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.split()[1] in ("Z", "X") for line in f if line.startswith("State:"))
    except FileNotFoundError:
        return True


def _assert_retried(out, interrupted, trials):
    """--trials COMPLETE, none RUNNING; every interrupted trial is FAIL with the reason, and its retries (same params,
    the original trial's seed) end in a COMPLETE one."""
    states = _by_state(out)
    assert len(states[TrialState.COMPLETE]) == trials and not states[TrialState.RUNNING]
    by_number = {t.number: t for t in load_study(out).trials}
    retry_of = {t.system_attrs["retry_history"][-1]: t for t in by_number.values() if "retry_history" in t.system_attrs}
    for t in interrupted:
        t = by_number[t.number]
        assert t.state == TrialState.FAIL
        assert t.user_attrs["fail_reason"].startswith(("interrupted: ", "the worker process died"))
        original = t.system_attrs.get("failed_trial", t.number)
        while t.state != TrialState.COMPLETE:
            retry = retry_of[t.number]
            assert retry.params == t.params and retry.number > t.number
            assert retry.system_attrs["failed_trial"] == original
            t = retry
        # the tiny space's seed is 0: seed = 0 + the original's draw (its number less the retries before it)
        retries_before = sum("failed_trial" in u.system_attrs for u in by_number.values() if u.number < original)
        assert t.user_attrs["seed"] == original - retries_before


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_kill_9_mid_trial_then_resume_is_the_uninterrupted_study(tiny_space, tmp_path, faults, search_process,
                                                                 monkeypatch, storage):
    """1 worker killed (kill -9) in trial 1, then `--resume` at once: its process is provably gone, so trial 1 is
    failed and retried first, without waiting for the heartbeat's grace period (60 s here), and the study's COMPLETE
    trials are exactly the uninterrupted study's: same params, seeds and metrics, in the same order."""
    out = tmp_path / "study"
    extra = ["--storage", f"journal:{tmp_path / 'journal.log'}"] if storage == "journal" else []
    faults("crash@1")  # the search process kills itself (SIGKILL) in the middle of trial 1
    monkeypatch.setenv("KUNLUN_HEARTBEAT", "1,60")
    p = search_process(tiny_space, "--out", out, "--trials", "3", *extra)
    assert p.wait(timeout=120) == -signal.SIGKILL, p.output()[-3000:]
    states = _by_state(out)
    assert len(states[TrialState.COMPLETE]) == 1 and [t.number for t in states[TrialState.RUNNING]] == [1]
    interrupted = states[TrialState.RUNNING]
    if storage == "journal":  # Optuna's journal storage has no heartbeat: the lease is ours
        assert LEASE in interrupted[0].system_attrs

    faults()
    assert _search(tiny_space, out, "--trials", "3", "--resume") == 0
    _assert_retried(out, interrupted, 3)
    trials = load_study(out).trials
    assert [t.number for t in trials if t.state == TrialState.COMPLETE] == [0, 2, 3]  # the retry came first
    assert trials[1].user_attrs["fail_reason"].startswith("interrupted: the process that ran it is gone")
    if storage == "journal":
        return
    assert _search(tiny_space, tmp_path / "reference", "--trials", "3") == 0
    keys = ("ne", "auc", "logloss", "seed", "train_flops_per_example")

    def complete(folder):
        return [(t.params, [t.user_attrs[k] for k in keys]) for t in load_study(folder).trials
                if t.state == TrialState.COMPLETE]

    assert complete(out) == complete(tmp_path / "reference")


def test_killed_worker_is_replaced_then_kill_9_of_the_search_takes_its_workers(tiny_space, tmp_path, faults,
                                                                               search_process):
    """Worker A dies in trial 0 (as by the kernel's OOM killer): trial 0 fails at once and is retried (as trial 1 or
    2) while a new worker replaces A. With both workers in flight (trials 1 and 2) the search is killed: they die
    with it. `--resume` retries trials 1 and 2 and reaches --trials."""
    out = tmp_path / "study"
    faults("crash@0", "slow@1:600", "slow@2:600")
    p = search_process(tiny_space, "--out", out, "--trials", "2", "--workers", "2")
    markers = [out / "trials" / str(n) / "fault-slow" for n in (1, 2)]
    _wait_for(lambda: all(m.is_file() and m.read_text().strip() for m in markers), 120, "two trials in flight")
    workers = [int(m.read_text()) for m in markers]  # the pid of the process running each trial
    crashed = int((out / "trials" / "0" / "fault-crash").read_text())
    assert len({p.pid, crashed, *workers}) == 4
    trial0 = load_study(out).trials[0]
    assert trial0.state == TrialState.FAIL
    assert trial0.user_attrs["fail_reason"].startswith("the worker process died (killed by SIGKILL")

    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert "trial 0 failed: the worker process died" in p.output()
    _wait_for(lambda: all(_dead(w) for w in workers), 5, "the workers to die with the search")
    files = sorted(str(f) for f in out.rglob("*"))
    time.sleep(1.5)
    assert sorted(str(f) for f in out.rglob("*")) == files  # nobody keeps writing trials
    interrupted = _by_state(out)[TrialState.RUNNING]
    assert sorted(t.number for t in interrupted) == [1, 2]
    # trial 0's retry is whichever of trials 1 and 2 was asked after the retry was queued (workers start in any order)
    assert 0 in [t.system_attrs.get("failed_trial") for t in load_study(out).trials[1:3]]

    faults()
    assert _search(tiny_space, out, "--trials", "2", "--resume") == 0
    _assert_retried(out, [trial0, *interrupted], 2)


@pytest.mark.ray
def test_ray_worker_death_and_driver_kill_9_then_resume(ray_session, tiny_space, tmp_path, faults, search_process):
    """A driver on the shared local cluster (as on a real one). Trial 0's Ray worker dies: Tune re-runs it (the same
    Optuna trial). Then the driver is killed mid-trial 1: the trial's Ray worker dies with the job, and `--resume`
    (backend ray) retries trial 1 and reaches --trials."""
    out = tmp_path / "study"
    faults("crash@0", "slow@1:600")
    address = ray_session.get_runtime_context().gcs_address
    p = search_process(tiny_space, "--backend", "ray", "--address", address, "--out", out, "--trials", "3")
    slow = out / "trials" / "1" / "fault-slow"

    def ready():
        assert p.poll() is None, p.output()[-3000:]
        return slow.is_file() and slow.read_text().strip() and (out / "trials.csv").is_file() and any(
            t.number == 0 and t.state == TrialState.COMPLETE for t in load_study(out).get_trials())

    # Ray notices a dead worker and reschedules in tens of seconds, minutes on a loaded machine
    _wait_for(ready, 400, "trial 0 re-run after its worker died, trial 1 in flight")
    assert (out / "trials" / "0" / "fault-crash").is_file()
    worker = int(slow.read_text())
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    _wait_for(lambda: _dead(worker), 10, "trial 1's Ray worker to die with the driver")
    interrupted = _by_state(out)[TrialState.RUNNING]
    assert 1 in [t.number for t in interrupted]

    faults()
    assert _search(tiny_space, out, "--backend", "ray", "--trials", "3", "--resume") == 0
    _assert_retried(out, interrupted, 3)
    assert load_study(out).trials[0].state == TrialState.COMPLETE


def test_a_late_result_of_a_trial_failed_as_stale_is_dropped(tmp_path, faults):
    """A stalled process whose trial was failed as interrupted meanwhile: its tell drops the result (the retry is
    queued) instead of killing the worker."""
    import optuna

    from kunlun.search.store import ask, fail_and_retry, open_storage
    from kunlun.search.tell import tell
    from kunlun.search.trial import Outcome

    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    trial = ask(study)
    trial.suggest_float("x", 0, 1)
    assert fail_and_retry(study, trial._trial_id, "interrupted: no heartbeat for 3 s") == 0
    assert fail_and_retry(study, trial._trial_id, "interrupted: again") is None  # once only
    assert not tell(study, trial, Outcome("complete", [0.5], {"ne": 0.5}))
    first, retry = study.trials
    assert first.state == TrialState.FAIL and first.user_attrs == {"fail_reason": "interrupted: no heartbeat for 3 s"}
    assert retry.state == TrialState.WAITING and retry.params == first.params
    assert retry.system_attrs == {"failed_trial": 0, "retry_history": [0]}
