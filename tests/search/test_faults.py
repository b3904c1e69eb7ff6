"""Trial faults (an exception, a NaN loss, out of memory on the GPU or past the host cap) fail the trial with the
reason in its user attrs; the study goes on to --trials COMPLETE trials, and `kunlun pareto` counts the failures."""

import json
import re
import resource

import pytest
from optuna.trial import TrialState

from kunlun.search.cli import main
from kunlun.search.faults import injected_faults
from kunlun.search.store import load_study, trial_status


def _search(space, out, *extra):
    return main(["search", str(space), "--out", str(out), "--no-progress", *extra])


def test_faults_fail_their_trial_with_the_reason_and_the_study_goes_on(tiny_space, tmp_path, faults, capsys):
    faults("raise@0", "nan@1", "oom@2")
    out = tmp_path / "study"
    assert _search(tiny_space, out, "--trials", "2") == 0
    trials = load_study(out).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 3 + [TrialState.COMPLETE] * 2
    reasons = [t.user_attrs["fail_reason"] for t in trials[:3]]
    assert reasons[0] == "RuntimeError: injected fault"
    assert reasons[1].startswith("NonFiniteLossError: non-finite training loss nan")
    assert reasons[2].startswith("out of memory: OutOfMemoryError")
    for t in trials[:3]:  # the fault went off in the trial (its log says so), not around it
        assert "injected fault" in (out / "trials" / str(t.number) / "log.txt").read_text()
    with (out / "trials.csv").open() as f:
        assert "NonFiniteLossError" in f.read()

    capsys.readouterr()
    assert main(["pareto", str(out), "--format", "json", "--no-plots"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert rows and {r["trial"] for r in rows} <= {3, 4}
    assert _failed_and_infeasible(captured.err) == (3, 0)
    assert main(["pareto", str(out), "--no-plots"]) == 0
    assert _failed_and_infeasible(capsys.readouterr().out) == (3, 0)


def _failed_and_infeasible(text: str) -> tuple[int, int]:
    """`pareto` counts per family group; they add up to the study's."""
    counts = re.findall(r"(\d+) infeasible, \d+ pruned, (\d+) failed", text)
    assert counts, text
    return sum(int(f) for _, f in counts), sum(int(i) for i, _ in counts)


def test_host_memory_cap_fails_the_trial_not_the_search(tiny_space, tmp_path, faults, monkeypatch):
    """KUNLUN_TRIAL_MEMORY caps the worker process (RLIMIT_DATA): an allocation past it fails inside the trial. The
    search process itself is never capped (its trials move to a worker process)."""
    faults("hog@0")
    monkeypatch.setenv("KUNLUN_TRIAL_MEMORY", "2G")
    limit = resource.getrlimit(resource.RLIMIT_DATA)
    out = tmp_path / "study"
    assert _search(tiny_space, out, "--trials", "1") == 0
    assert resource.getrlimit(resource.RLIMIT_DATA) == limit
    trials = load_study(out).get_trials()
    assert [trial_status(t) for t in trials] == ["fail", "complete"]
    assert trials[0].user_attrs["fail_reason"].startswith("out of memory: ")
    assert "can't allocate memory" in trials[0].user_attrs["fail_reason"]


def test_fault_injection_is_inert_unless_set(tmp_path, monkeypatch):
    monkeypatch.delenv("KUNLUN_FAULTS", raising=False)
    assert injected_faults(0, tmp_path) == []
    monkeypatch.setenv("KUNLUN_FAULTS", "nan@3,raise@1:x")
    assert injected_faults(0, tmp_path) == []
    assert injected_faults(3, tmp_path) == [("nan", "")]
    assert injected_faults(1, tmp_path) == [("raise", "x")]
    (tmp_path / "fault-nan").write_text("123\n")  # written when the fault fires: once per trial folder
    assert injected_faults(3, tmp_path) == []
    monkeypatch.setenv("KUNLUN_FAULTS", "explode@1")
    with pytest.raises(ValueError, match="KIND@TRIAL"):
        injected_faults(1, tmp_path)
