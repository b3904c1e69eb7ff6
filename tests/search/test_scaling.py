"""Scaling fits: recovery of known log-linear and power-law parameters from noisy seed repeats, undetermined on flat
noise, bootstrap coverage, the allocation extrapolation and its holdout; the command on hand-made study folders
(--from, seed repeats with their resume) and, marked slow, end to end on tiny budgets."""

import json
import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import create_trial

from kunlun.search import reeval
from kunlun.search.cli import main
from kunlun.search.scaling.allocation import categorical_params, extrapolate_allocation, holdout
from kunlun.search.scaling.fit import LOG_LINEAR, POWER_LAW, efficiency, fit, fit_log_linear, fit_power_law
from kunlun.search.scaling.report import report, summary
from kunlun.search.store import StudyInfo, budget_tag, storage_url

ETA = {"kunlun": 0.02, "interformer": 0.01}


def test_log_linear_fit_recovers_the_slope():
    pts = [{"budget": c, "ne": 0.9 - 0.02 * math.log(c / 1e6) + e} for c, e in
           [(1e6, 0.001), (4e6, -0.001), (1.6e7, 0.0005), (6.4e7, -0.0003)]]
    f = fit(pts)
    assert abs(f.exponent - 0.02) < 2e-3 and f.determined and f.r2 > 0.95
    assert f.ci[0] < f.exponent < f.ci[1]


def _study_folder(root, budget):
    """An empty single-objective study folder at `budget`, as `kunlun search` lays one out."""
    out = root / f"s-{budget_tag(budget)}"
    out.mkdir(parents=True)
    url = storage_url(None, out)
    StudyInfo(name="s", storage=url, space="demo", budget=budget, budget_kind="flops",
              families=list(ETA), objectives=["ne"], seed=0, trials=4, data="synthetic").write(out)
    return optuna.create_study(study_name="s", storage=url)


def _studies(root):
    for budget in (1e6, 4e6, 1.6e7):
        study = _study_folder(root, budget)
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
def test_scaling_runs_one_study_per_budget_and_family(tiny_space, tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    argv = ["scaling", str(tiny_space), "--num-budgets", "2", "--budget-step", "1.5x", "--trials", "1",
            "--repeats", "2", "--target", "3M", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert set(result["families"]) == {"kunlun", "interformer"}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "tiny-1.33M-interformer", "tiny-1.33M-kunlun", "tiny-2M-interformer", "tiny-2M-kunlun"]
    for fam in result["families"].values():
        for p in fam["points"]:
            assert len(p["ne_seeds"]) == 2 and p["seeds"][1] == p["seeds"][0] + 1
            assert all(math.isfinite(ne) for ne in p["ne_seeds"])
        assert not fam["determined"] and "too few points" in fam["reason"]  # 2 budgets
    assert "UNDETERMINED" in captured.err
    assert result["target"]["allocation"]["kunlun"]["seq_share"]["value"] is not None
    assert result["holdout"]["kunlun"]["budget"] == 2e6
    assert (out / "scaling.png").stat().st_size > 0
    # rerun on the same --out: the studies resume with nothing to do, and no seed is retrained
    monkeypatch.setattr(reeval, "seed_ne", lambda *a: pytest.fail("retrained a seed"))
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == result


# -- fits on synthetic points -----------------------------------------------------------------------------------------

BUDGETS = [1e6 * 4**i for i in range(6)]


def _seeded(curve, budgets, sd, k, rng):
    pts = []
    for c in budgets:
        nes = [float(v) for v in curve(c) + rng.normal(0, sd, k)]
        pts.append({"budget": c, "ne": float(np.mean(nes)), "ne_seeds": nes})
    return pts


def _log_linear(c):
    return 0.9 - 0.01 * math.log(c / 1e6)


def _power(c):
    return 0.8 + 0.1 * (c / 1e6) ** -0.5


def test_log_linear_recovers_known_parameters_from_seed_repeats():
    pts = _seeded(_log_linear, BUDGETS[:4], 0.002, 3, np.random.default_rng(1))
    f = fit(pts)
    assert f.form == LOG_LINEAR and set(f.alternatives) == {LOG_LINEAR}  # 4 budgets: no power law
    assert f.determined and f.reason is None and f.ci_method == "bootstrap-seeds"
    assert abs(f.exponent - 0.01) < 1e-3 and f.ci[0] < 0.01 < f.ci[1]
    assert f.params_ci["ne0"][0] < 0.9 < f.params_ci["ne0"][1]
    assert fit(pts).ci == f.ci  # fixed RNG seed: reproducible
    d = f.to_dict()
    assert {"form", "params", "exponent", "ci", "points", "r2", "determined", "fits"} <= set(d)
    assert d["points"][0]["ne_seeds"] == pts[0]["ne_seeds"]


def test_power_law_recovers_known_parameters_from_six_budgets():
    pts = _seeded(_power, BUDGETS, 0.001, 3, np.random.default_rng(2))
    f = fit(pts)
    assert f.form == POWER_LAW and set(f.alternatives) == {LOG_LINEAR, POWER_LAW}
    assert f.determined, f.reason
    assert abs(f.params["alpha"] - 0.5) < 0.05 and f.ci[0] < 0.5 < f.ci[1]
    assert abs(f.params["a"] - 0.8) < 0.005 and abs(f.params["b"] - 0.1) < 0.01
    assert f.params_ci["a"][0] < 0.8 < f.params_ci["a"][1]
    assert f.alternatives[POWER_LAW].aic < f.alternatives[LOG_LINEAR].aic
    assert abs(f.predict(BUDGETS[-1] * 4) - _power(BUDGETS[-1] * 4)) < 0.003
    # log-linear data: the power law is fitted but does not win (alpha runs to the end of its range)
    g = fit(_seeded(_log_linear, BUDGETS, 0.001, 3, np.random.default_rng(3)))
    assert g.form == LOG_LINEAR and not g.alternatives[POWER_LAW].determined


def test_without_repeats_student_t_and_residual_bootstrap():
    rng = np.random.default_rng(4)
    pts = [{"budget": c, "ne": _power(c) + float(rng.normal(0, 5e-4))} for c in BUDGETS]
    ll, pl = fit_log_linear(pts), fit_power_law(pts)
    assert ll.ci_method == "student-t" and pl.ci_method == "bootstrap-residuals"
    assert pl.ci[0] < 0.5 < pl.ci[1] and pl.determined
    assert fit_power_law(pts[:4]) is None


def test_flat_noise_and_too_few_points_are_undetermined():
    pts = _seeded(lambda c: 0.9, BUDGETS[:5], 0.002, 3, np.random.default_rng(5))
    f = fit(pts)
    assert not f.determined and "spans 0" in f.reason and f.ci[0] < 0 < f.ci[1]
    assert not f.alternatives[POWER_LAW].determined
    result = report({"kunlun": f})
    assert result["determined"] is False
    assert all("UNDETERMINED" in line for line in summary(result) if line.startswith("kunlun: "))
    two = fit(_seeded(_log_linear, BUDGETS[:2], 0.002, 3, np.random.default_rng(6)))
    assert not two.determined and "too few points" in two.reason


def test_bootstrap_ci_covers_the_truth():
    rng = np.random.default_rng(7)
    runs = 40
    cover_ll = cover_pl = cover_eff = 0
    for _ in range(runs):
        baseline = fit(_seeded(_log_linear, BUDGETS[:4], 0.003, 3, rng))
        cover_ll += baseline.ci[0] <= 0.01 <= baseline.ci[1]
        ci = fit_power_law(_seeded(_power, BUDGETS[:5], 0.002, 3, rng)).ci
        cover_pl += ci[0] <= 0.5 <= ci[1]
        model = fit(_seeded(lambda c: 0.9 - 0.02 * math.log(c / 1e6), BUDGETS[:4], 0.003, 3, rng))
        ci = efficiency(model, baseline)["ci"]
        cover_eff += ci[0] <= 2 <= ci[1]
    assert min(cover_ll, cover_pl, cover_eff) >= 0.8 * runs


def test_efficiency_from_paired_bootstrap_draws():
    rng = np.random.default_rng(10)
    fits = {"kunlun": fit(_seeded(lambda c: 0.9 - 0.02 * math.log(c / 1e6), BUDGETS[:4], 0.001, 3, rng)),
            "interformer": fit(_seeded(_log_linear, BUDGETS[:4], 0.001, 3, rng))}
    eff = report(fits, target=BUDGETS[4])["efficiency"]
    assert eff["baseline"] == "interformer" and eff["ci_method"] == "paired-bootstrap" and eff["determined"]
    assert abs(eff["value"] - 2) < 0.2 and eff["ci"][0] < 2 < eff["ci"][1]


# -- allocation ---------------------------------------------------------------------------------------------------

def _alloc_trials(rng, budgets=BUDGETS[:4], share=lambda c: 0.5 + 0.03 * math.log(c / 1e6)):
    trials = []
    for c in budgets:
        big = c >= 6.4e7  # the best schedule changes at the largest budget, 64M
        for i in range(6):
            params = {"seq_share": share(c) + float(rng.normal(0, 0.01)), "schedule": "alternate" if big else "none",
                      "window.click": 8 if i else 4}
            if i >= 3:  # worse trials, off the trend
                params = {"seq_share": 0.9, "schedule": "generated", "schedule.L0": "all", "schedule.L1": "seq"}
            trials.append({"budget": c, "ne": 0.9 - 0.01 * math.log(c / 1e6) + 0.001 * i, "params": params,
                           "study": f"s-{c:g}", "trial": i, "seq_share_range": [0.3, 0.9]})
    return trials


def test_allocation_extrapolation_on_synthetic_trials():
    trials = _alloc_trials(np.random.default_rng(9))
    target = BUDGETS[5]
    a = extrapolate_allocation(trials, target)
    share = a["seq_share"]
    truth = 0.5 + 0.03 * math.log(target / 1e6)
    assert share["determined"] and share["ci"][0] < truth < share["ci"][1] and abs(share["value"] - truth) < 0.02
    assert share["n"] == 12 and abs(share["slope"] - 0.03) < 0.005 and not share["clipped"]
    assert a["nearest_budget"] == BUDGETS[3]
    assert a["categorical"]["schedule"] == {"choice": "alternate", "agreement": 1.0, "trials": 3}
    assert a["categorical"]["window.click"]["choice"] == 8
    assert math.isclose(a["categorical"]["window.click"]["agreement"], 2 / 3)
    far = extrapolate_allocation(trials, 1e12)["seq_share"]  # past the space's range: clipped, and says so
    assert far["clipped"] and far["value"] == 0.9 and far["unclipped"] > 0.9
    h = holdout(trials)
    assert h["budget"] == BUDGETS[3] and h["from_budgets"] == BUDGETS[:3]
    assert abs(h["seq_share"]["error"]) < 0.03 and h["seq_share"]["within_pi"]
    assert h["categorical"]["schedule"] == {"extrapolated": "none", "agreement": 1.0, "found": "alternate",
                                            "match": False}
    assert holdout([t for t in trials if t["budget"] == 1e6]) is None
    one = extrapolate_allocation([t for t in trials if t["budget"] == 1e6], target)["seq_share"]
    assert not one["determined"] and one["ci"] is None and one["slope"] is None
    generated = categorical_params({"schedule": "generated", "schedule.L1": "seq", "schedule.L0": "all"})
    assert generated == {"schedule": "generated:all/seq"}


# -- the command ------------------------------------------------------------------------------------------------------

def _seeded_studies(root, budgets=(1e6, 4e6, 1.6e7, 6.4e7)):
    """One study per budget, both families, trials with a config and a seed (so the command can add seeds)."""
    for budget in budgets:
        study = _study_folder(root, budget)
        dists = {"seq_share": FloatDistribution(0.4, 0.9), "schedule": CategoricalDistribution(["none", "alternate"])}
        for family, eta in ETA.items():
            for i, worse in enumerate((0.0, 0.05)):
                ne = 0.95 - eta * math.log(budget / 1e6) + worse
                study.add_trial(create_trial(
                    value=ne, params={"seq_share": 0.5 + 0.02 * math.log(budget / 1e6), "schedule": "alternate"},
                    distributions=dists, system_attrs={"constraints:budget": 0.0},
                    user_attrs={"ne": ne, "family": family, "train_flops_per_example": budget, "seed": 10 * i,
                                "config_yaml": f"{family}@{budget}"}))


def test_scaling_repeats_seeds_and_reuses_them(tmp_path, capsys, monkeypatch):
    calls = []

    def fake_seed_ne(config_yaml, seed):  # seed noise around the trial's NE, without training
        calls.append((config_yaml, seed))
        return 0.95 - ETA[config_yaml.split("@")[0]] * math.log(float(config_yaml.split("@")[1]) / 1e6) + \
            0.001 * (seed % 3 - 1)

    monkeypatch.setattr(reeval, "seed_ne", fake_seed_ne)
    _seeded_studies(tmp_path / "runs")
    out = tmp_path / "fit"
    argv = ["scaling", "demo", "--from", str(tmp_path / "runs"), "--out", str(out), "--target", "256M"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(calls) == 8 * 2 and {s for _, s in calls} == {1, 2}  # 4 budgets x 2 families, 2 extra seeds
    p = result["points"][0]
    assert p["seeds"] == [0, 1, 2] and len(p["ne_seeds"]) == 3 and math.isclose(p["ne"], np.mean(p["ne_seeds"]))
    assert result["ci_method"] == "bootstrap-seeds" and result["determined"]
    assert result["efficiency"]["ci_method"] == "paired-bootstrap"
    assert abs(result["efficiency"]["value"] - 2) < 0.2
    assert set(result["target"]) >= {"budget", "ne", "ne_ci", "allocation"}
    alloc = result["target"]["allocation"]["kunlun"]
    assert alloc["categorical"]["schedule"]["choice"] == "alternate"
    assert math.isclose(alloc["seq_share"]["value"], 0.5 + 0.02 * math.log(256), rel_tol=1e-6)
    assert result["holdout"]["kunlun"]["categorical"]["schedule"]["match"]
    # rerun on the same --out: nothing retrained; more repeats: only the new seed
    calls.clear()
    assert main(argv) == 0
    assert calls == [] and json.loads(capsys.readouterr().out) == result
    assert main(argv + ["--repeats", "4"]) == 0
    assert {s for _, s in calls} == {3} and len(calls) == 8
    assert json.loads(capsys.readouterr().out)["points"][0]["seeds"] == [0, 1, 2, 3]
    calls.clear()
    assert main(argv + ["--repeats", "1"]) == 0
    assert calls == [] and json.loads(capsys.readouterr().out)["points"][0]["ne_seeds"] == [p["ne_seeds"][0]]
    assert main(argv + ["--repeats", "0"]) == 2
