"""Scaling fits: exact recovery on log-linear points; the command on hand-made study folders (--from)."""

import json
import math

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from kunlun.search.cli import main
from kunlun.search.scaling import fit
from kunlun.search.store import StudyInfo, budget_tag, storage_url

ETA = {"kunlun": 0.02, "interformer": 0.01}


def test_log_linear_fit_recovers_the_slope():
    pts = [{"budget": c, "ne": 0.9 - 0.02 * math.log(c / 1e6) + e} for c, e in
           [(1e6, 0.001), (4e6, -0.001), (1.6e7, 0.0005), (6.4e7, -0.0003)]]
    f = fit(pts)
    assert abs(f.exponent - 0.02) < 2e-3 and f.determined and f.r2 > 0.95
    assert f.ci[0] < f.exponent < f.ci[1]


def _studies(root):
    for budget in (1e6, 4e6, 1.6e7):
        out = root / f"s-{budget_tag(budget)}"
        out.mkdir(parents=True)
        url = storage_url(None, out)
        StudyInfo(name="s", storage=url, space="demo", budget=budget, budget_kind="flops",
                  families=list(ETA), objectives=["ne"], seed=0, trials=4, data="synthetic").write(out)
        study = optuna.create_study(study_name="s", storage=url)
        for family, eta in ETA.items():
            for worse in (0.0, 0.05):
                ne = 0.95 - eta * math.log(budget / 1e6) + worse
                study.add_trial(create_trial(value=ne, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                                             user_attrs={"ne": ne, "family": family, "train_flops_per_example": budget},
                                             system_attrs={"constraints:budget": 0.0}))


def test_scaling_from_existing_studies(tmp_path, capsys):
    _studies(tmp_path / "runs")
    out = tmp_path / "fit"
    assert main(["scaling", "demo", "--from", str(tmp_path / "runs"), "--out", str(out), "--target", "64M"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((out / "scaling.json").read_text())
    assert {"form", "params", "exponent", "ci", "points", "r2", "determined", "families", "efficiency"} <= set(result)
    assert math.isclose(result["exponent"], ETA["kunlun"], rel_tol=1e-6)
    assert math.isclose(result["families"]["interformer"]["exponent"], ETA["interformer"], rel_tol=1e-6)
    assert math.isclose(result["efficiency"]["value"], 2.0, rel_tol=1e-6)
    assert len(result["points"]) == 3 and result["determined"]
    assert (out / "scaling.png").stat().st_size > 0


def test_scaling_needs_budgets_or_studies(tmp_path, capsys):
    assert main(["scaling", "demo", "--out", str(tmp_path / "x")]) == 2
    assert "nothing to fit" in capsys.readouterr().err


@pytest.mark.slow
def test_scaling_runs_one_study_per_budget_and_family(tiny_space, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["scaling", str(tiny_space), "--num-budgets", "2", "--budget-step", "1.5x", "--trials", "1",
                 "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["families"]) == {"kunlun", "interformer"}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "tiny-1.33M-interformer", "tiny-1.33M-kunlun", "tiny-2M-interformer", "tiny-2M-kunlun"]
