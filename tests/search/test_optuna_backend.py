"""The optuna backend end to end on a tiny space: exact trial counts, results layout, resume, export."""

import csv
import json

import pytest
from optuna.trial import TrialState

from kunlun.model.config import KunlunConfig
from kunlun.model.count import count_flops
from kunlun.search.cli import main
from kunlun.search.store import load_study, trial_status
from kunlun.search.trial import ATTRS


def _search(space, out, *extra):
    return main(["search", str(space), "--out", str(out), "--no-progress", *extra])


def _complete(out):
    return [t for t in load_study(out).get_trials() if t.state == TrialState.COMPLETE]


@pytest.mark.slow
def test_search_resume_and_export_round_trip(tiny_space, tmp_path, capsys):
    out = tmp_path / "study"
    assert _search(tiny_space, out, "--trials", "3") == 0
    assert len(_complete(out)) == 3
    info = json.loads((out / "study.json").read_text())
    assert info["storage"] == f"sqlite:///{out / 'study.db'}" and info["budget"] == 2e6
    trials = load_study(out).get_trials()
    with (out / "trials.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(trials)
    for t in trials:
        assert (out / "trials" / str(t.number) / "log.txt").is_file()
        if trial_status(t) == "complete":
            assert set(ATTRS) <= set(t.user_attrs)
            assert (out / "trials" / str(t.number) / "curve.csv").is_file()

    assert _search(tiny_space, out, "--trials", "4") == 2  # an existing study needs --resume
    assert _search(tiny_space, out, "--trials", "4", "--resume") == 0
    assert len(_complete(out)) == 4
    capsys.readouterr()
    assert _search(tiny_space, out, "--trials", "5", "--resume", "--data", "synthetic:mixed") == 2
    assert "is a study on 'synthetic', not 'synthetic:mixed'" in capsys.readouterr().err
    assert len(load_study(out).get_trials()) == len(trials) + 1 and load_study(out).user_attrs["data"] == "synthetic"

    capsys.readouterr()
    assert main(["export", str(out), "--pick", "best-ne"]) == 0
    path = capsys.readouterr().out.strip()
    config = KunlunConfig.from_yaml(path)
    trial = next(t for t in _complete(out) if t.number == config.provenance["trial"])
    assert count_flops(config).train_flops_per_example == trial.user_attrs["train_flops_per_example"]
    prov = config.provenance
    assert {"data_fingerprint", "seeds", "versions", "git_commit", "metrics"} <= set(prov)
    assert prov["seeds"]["init"] == trial.user_attrs["seed"]
    from kunlun.model.kunlun import KunlunModel

    model = KunlunModel(config)  # `kunlun train FILE` builds this model
    assert sum(p.numel() for p in model.parameters()) == (trial.user_attrs["params_dense"]
                                                         + trial.user_attrs["params_sparse"])

    capsys.readouterr()
    assert main(["pareto", str(out), "--format", "json", "--reeval", "2", "--no-plots"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(len(r["seeds"]) == 2 and r["ne_ci"][0] <= r["ne_mean"] <= r["ne_ci"][1] for r in rows)


@pytest.mark.slow
def test_two_workers_reach_the_trial_count_exactly(tiny_space, tmp_path):
    out = tmp_path / "study"
    assert _search(tiny_space, out, "--trials", "3", "--workers", "2") == 0
    assert len(_complete(out)) == 3


def test_bad_space_exits_2_and_creates_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbudget: {kind: flops, value: 1e6}\nparams: {windw: [4]}\n")
    out = tmp_path / "out"
    assert _search(bad, out) == 2
    err = capsys.readouterr().err
    assert "params.windw" in err and str(bad) in err and "Traceback" not in err
    assert not out.exists()


def test_bad_storage_exits_2_and_creates_nothing(tiny_space, tmp_path, capsys):
    out = tmp_path / "out"
    assert _search(tiny_space, out, "--storage", "redis://x") == 2
    assert "--storage" in capsys.readouterr().err
    assert not out.exists()


def test_dry_run_reports_feasible_fraction(tiny_space, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["search", str(tiny_space), "--dry-run", "--samples", "30"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 30 and 0 < report["feasible_fraction"] <= 1
    lo, hi = report["train_flops_per_example"]
    assert 0.98 * 2e6 <= lo <= hi <= 1.02 * 2e6
    assert not (tmp_path / "results").exists()


def test_infeasible_trials_are_complete_with_placeholders_and_a_positive_constraint(tiny_space, tmp_path, capsys):
    """Finite placeholder values (optuna-dashboard plots them), a positive constraint in the list form the dashboard
    reads, and the objectives named for it."""
    from kunlun.search.trial import INFEASIBLE_VALUES

    out = tmp_path / "study"
    # 9e4 FLOPs/example: only the narrowest of the tiny space's structures reach down to it (a budget none reaches
    # is bad input: test_bad_input), so the trials are (almost all) infeasible
    assert _search(tiny_space, out, "--trials", "2", "--budget", "9e4") == 0
    trials = _complete(out)
    assert len(trials) == 2
    infeasible = [t for t in trials if trial_status(t) == "infeasible"]
    assert infeasible
    for t in infeasible:
        assert t.values == [INFEASIBLE_VALUES["ne"], INFEASIBLE_VALUES["b200_us_per_example"]]
        assert t.system_attrs["constraints"] == [1.0] and min(t.constraints.values()) > 0
        assert "budget too small" in t.user_attrs["infeasible_reason"]
    assert all(t.system_attrs["constraints"] == [0.0] for t in trials if t not in infeasible)
    assert load_study(out).metric_names == ["ne", "b200_us_per_example"]
    capsys.readouterr()
    code = main(["pareto", str(out), "--format", "json", "--no-plots"])
    captured = capsys.readouterr()
    assert f"{len(infeasible)} infeasible" in captured.err
    if len(infeasible) == len(trials):  # no front: bad input for pareto
        assert code == 2 and "no complete feasible trial" in captured.err
    else:
        assert code == 0 and len(json.loads(captured.out)) == len(trials) - len(infeasible)
