"""`kunlun export --pick best-ne --reeval K --top T --by mean|bound`: the top trials retrained with more seeds, the pick
by their mean (or pessimistic bound), the NEs cached and written into the provenance."""

import json
import math
import statistics

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from kunlun.model.config import KunlunConfig
from kunlun.search import reeval
from kunlun.search.cli import main
from kunlun.search.store import StudyInfo, storage_url
from kunlun.space.solver import BudgetSolver
from kunlun.space.space import RandomTrial, SearchSpace

# trial -> (its own single-seed NE, the NEs of seeds own+1, own+2): A is the lucky single seed; B has the best mean
# but a wide spread; C is a little worse on average and steady; D is never in the top 3
NES = {"A": (0.80, 0.90, 0.92), "B": (0.82, 0.78, 0.86), "C": (0.85, 0.85, 0.86), "D": (0.95, 0.95, 0.95)}


def _study(out, tiny_space):
    """A finished study of four real tiny configs (distinct head widths name them) with made-up NEs."""
    space = SearchSpace.load(tiny_space)
    solver = BudgetSolver(space)
    out.mkdir(parents=True)
    url = storage_url(None, out)
    StudyInfo(name="s", storage=url, space=str(tiny_space), budget=2e6, budget_kind="flops", families=["kunlun"],
              objectives=["ne", "b200_us_per_example"], seed=0, trials=4, data="synthetic").write(out)
    study = optuna.create_study(study_name="s", storage=url, directions=["minimize", "minimize"])
    configs = {}
    draw = 0
    for i, name in enumerate(NES):
        solution = None
        while solution is None or not solution.feasible:
            solution = solver.solve(space.sample(RandomTrial(draw)))
            draw += 1
        config = solution.config
        config.train.seed = i
        configs[name] = config.to_yaml()
        attrs = {"ne": NES[name][0], "auc": 0.7, "train_flops_per_example": 2e6, "b200_us_per_example": 1.0 + i,
                 "family": "kunlun", "seed": i, "config_yaml": configs[name], "compskip": "alternate",
                 "windows": "{}"}
        study.add_trial(create_trial(values=[NES[name][0], 1.0 + i], params={"x": 0.5},
                                     distributions={"x": FloatDistribution(0, 1)}, user_attrs=attrs,
                                     system_attrs={"constraints:budget": 0.0}))
    return {yaml: name for name, yaml in configs.items()}


@pytest.fixture
def fake_training(monkeypatch):
    """seed_ne from the table above; records every (trial, seed) trained."""
    trained = []

    def install(names):
        def seed_ne(config_yaml, seed):
            name = names[config_yaml]
            own = list(NES).index(name)
            trained.append((name, seed))
            return NES[name][seed - own]

        monkeypatch.setattr(reeval, "seed_ne", seed_ne)
        return trained

    return install


def _export(out, capsys, *extra):
    capsys.readouterr()
    code = main(["export", str(out), "--pick", "best-ne", "--no-progress", "-o", str(out / "pick.yaml"), *extra])
    return code, KunlunConfig.from_yaml(out / "pick.yaml").provenance if code == 0 else None


def test_reeval_picks_by_mean_and_caches(tmp_path, tiny_space, fake_training, capsys):
    out = tmp_path / "s"
    trained = fake_training(_study(out, tiny_space))
    assert _export(out, capsys)[1]["trial"] == 0  # one seed: the lucky A
    code, prov = _export(out, capsys, "--reeval", "2", "--top", "3")
    assert code == 0 and prov["trial"] == 1  # B: mean 0.82 against A's 0.873 and C's 0.853
    assert sorted(trained) == sorted((n, list(NES).index(n) + k) for n in "ABC" for k in (1, 2))  # D never
    r = prov["reeval"]
    assert r["by"] == "mean" and r["k"] == 2 and r["top"] == 3 and sorted(r["trials"]) == [0, 1, 2]
    assert r["trials"][1]["ne"] == list(NES["B"]) and r["trials"][1]["ne_mean"] == pytest.approx(0.82)
    assert sorted(p.name for p in (out / "reeval").iterdir()) == ["trial-0.json", "trial-1.json", "trial-2.json"]

    trained.clear()
    assert _export(out, capsys, "--reeval", "2", "--top", "3")[1]["trial"] == 1
    assert trained == []  # every NE came from DIR/reeval
    assert _export(out, capsys, "--reeval", "2", "--top", "3", "--by", "bound")[1]["trial"] == 2  # C: steady
    assert trained == []


def test_reeval_top_1_keeps_the_single_seed_pick(tmp_path, tiny_space, fake_training, capsys):
    out = tmp_path / "s"
    fake_training(_study(out, tiny_space))
    code, prov = _export(out, capsys, "--reeval", "1", "--top", "1")
    assert code == 0 and prov["trial"] == 0 and prov["reeval"]["trials"][0]["ne"] == [0.80, 0.90]


@pytest.mark.parametrize("extra, message", [(["--reeval", "2", "--pick", "knee"], "--pick best-ne"),
                                            (["--reeval", "-1"], "--reeval must be >= 0"),
                                            (["--reeval", "2", "--top", "0"], "--top must be >= 1")])
def test_bad_reeval_flags_exit_2(tmp_path, tiny_space, capsys, extra, message):
    out = tmp_path / "s"
    _study(out, tiny_space)
    capsys.readouterr()
    argv = ["export", str(out), *(["--pick", "best-ne"] if "--pick" not in extra else []), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (out / "reeval").exists() and not (out / "configs").exists()


@pytest.mark.slow
def test_reeval_trains_real_seeds_on_the_trials_split(tmp_path, tiny_space, capsys):
    out = tmp_path / "s"
    _study(out, tiny_space)
    code, prov = _export(out, capsys, "--reeval", "1", "--top", "1")
    assert code == 0
    trials = prov["reeval"]["trials"]
    assert list(trials) == [0] and trials[0]["seeds"] == [0, 1]  # the trial's own seed, then one more
    assert math.isfinite(trials[0]["ne"][1]) and 0.5 < trials[0]["ne"][1] < 1.5
    cached = json.loads((out / "reeval" / "trial-0.json").read_text())
    assert float(cached["nes"]["1"]) == trials[0]["ne"][1]


def test_pooled_sd_removes_each_configs_mean():
    assert reeval.pooled_sd([[1.0, 3.0], [10.0, 10.0, 10.0]]) == pytest.approx(math.sqrt(2.0 / 3.0))
    assert math.isnan(reeval.pooled_sd([[1.0], [2.0]]))  # no repeat, no spread


def test_pareto_reeval_states_the_front_against_the_seed_spread(tmp_path, tiny_space, fake_training, capsys):
    out = tmp_path / "s"
    fake_training(_study(out, tiny_space))
    capsys.readouterr()
    assert main(["pareto", str(out), "--reeval", "2", "--no-plots"]) == 0
    # A is fastest and best: the front is A alone, so it spans nothing, against A's own three seeds
    sd = statistics.stdev(NES["A"])
    assert f"# signal: the front spans 0.0000 in NE, 0.0x the seed sd ({sd:.4f}, pooled over 1 configs x 3 seeds)" \
        in capsys.readouterr().out
