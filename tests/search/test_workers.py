"""Many workers on one study (README "Reliability: many workers"): four processes share one Optuna storage, an SQLite
file or a journal file here (PostgreSQL: test_postgres.py), and the study ends with exactly --trials COMPLETE trials,
none run twice and none lost.

Two ways to get four processes: one `kunlun search --workers 4` (four worker processes of one search), and four
`kunlun search` processes on one study folder (the first creates the study, three join it with --resume while it
runs), each a real `kunlun` process started from the command line."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKERS = 4
TRIALS = 8
EXAMPLES = 64  # training examples per trial: a trial is about a second, the test is about the claims
TIMEOUT = 300


def kunlun(*argv: str) -> list[str]:
    return [sys.executable, "-m", "kunlun.search.cli", *argv]


def _env() -> dict[str, str]:
    # one torch thread per process: four processes share the CI machine's two cores
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _search_argv(space: Path, out: Path, trials: int, *extra: str) -> list[str]:
    return kunlun("search", str(space), "--trials", str(trials), "--examples", str(EXAMPLES), "--out", str(out),
                  "--no-progress", *extra)


def _finish(procs: list[subprocess.Popen]) -> list[tuple[int, str]]:
    results = []
    deadline = time.monotonic() + TIMEOUT
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        results.append((p.returncode, err))
    return results


def run_one_search_with_workers(space: Path, out: Path, storage: str | None, trials: int = TRIALS) -> None:
    """`kunlun search --workers 4`: one search, four worker processes."""
    extra = ["--workers", str(WORKERS)] + (["--storage", storage] if storage else [])
    [(code, err)] = _finish([subprocess.Popen(_search_argv(space, out, trials, *extra), env=_env(), text=True,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)])
    assert code == 0, err


def run_separate_searches(space: Path, out: Path, storage: str | None, trials: int = TRIALS) -> None:
    """Four `kunlun search` processes on one study: the first creates it, three join it with --resume as soon as its
    study.json exists (while the first is running trials)."""
    first = subprocess.Popen(_search_argv(space, out, trials, *(["--storage", storage] if storage else [])),
                             env=_env(), text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "study.json").is_file():
        if first.poll() is not None or time.monotonic() > deadline:
            _, err = first.communicate()
            pytest.fail(f"the first search never created its study: {err}")
        time.sleep(0.1)
    joiners = [subprocess.Popen(_search_argv(space, out, trials, "--resume"), env=_env(), text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(WORKERS - 1)]
    for code, err in _finish([first, *joiners]):
        assert code == 0, err


def check_study(out: Path, trials: int = TRIALS, concurrent: bool = True) -> None:
    """Exactly `trials` COMPLETE trials (no overshoot, none missing); every trial finished (nothing RUNNING or
    WAITING left behind, nothing FAILED as interrupted: no lost trial); trial numbers unique and each trial run once
    (one allocation line in its log); trials.csv lists each once; and, with `concurrent`, trials did overlap in time
    (several processes really worked at once)."""
    from optuna.trial import TrialState

    from kunlun.search.store import load_study

    all_trials = load_study(out).get_trials(deepcopy=False)
    states = [t.state for t in all_trials]
    reasons = [t.user_attrs.get("fail_reason") for t in all_trials if t.state == TrialState.FAIL]
    assert states.count(TrialState.COMPLETE) == trials, (states, reasons)
    assert not reasons, reasons
    assert all(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states), states
    numbers = [t.number for t in all_trials]
    assert sorted(numbers) == list(range(len(numbers)))
    for n in numbers:
        log = (out / "trials" / str(n) / "log.txt").read_text()
        assert len(re.findall(rf"trial {n}: allocation", log)) == 1, f"trial {n} ran {log.count('allocation')} times"
    with (out / "trials.csv").open() as f:
        assert sorted(int(r["number"]) for r in csv.DictReader(f)) == numbers
    if concurrent:
        spans = sorted((t.datetime_start, t.datetime_complete) for t in all_trials)
        assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "no two trials ran at the same time"


@pytest.mark.slow
def test_sqlite_one_search_four_worker_processes(tiny_space: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    run_one_search_with_workers(tiny_space, out, None)
    check_study(out)


@pytest.mark.slow
def test_sqlite_four_searches_on_one_study(tiny_space: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    run_separate_searches(tiny_space, out, None)
    check_study(out)


@pytest.mark.slow
def test_journal_four_searches_on_one_study(tiny_space: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    run_separate_searches(tiny_space, out, f"journal:{tmp_path / 'study.journal'}")
    check_study(out)
