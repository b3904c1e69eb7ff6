"""benchmarks/train_settings.py: paired differences on made-up NEs, bad variants, and the command on tiny data."""

from __future__ import annotations

import csv
import json

import pytest
import train_settings
from test_selection import TINY

from kunlun.model.config import KunlunConfig


def _rows(ne: dict[tuple[str, str, int], float]) -> list[dict]:
    return [{"variant": v, "config": c, "seed": s, "ne": x} for (v, c, s), x in ne.items()]


def test_differences_are_paired_by_config_and_seed():
    ne = {("base", "c00", 0): 0.80, ("base", "c00", 1): 0.90, ("base", "c01", 0): 0.70, ("base", "c01", 1): 0.60,
          ("lr=1", "c00", 0): 0.78, ("lr=1", "c00", 1): 0.88, ("lr=1", "c01", 0): 0.71, ("lr=1", "c01", 1): 0.63}
    out = train_settings.summarise(_rows(ne), ["base", "lr=1", "absent"])
    assert out["base"]["diff_vs_base"] == 0 and "absent" not in out
    lr = out["lr=1"]
    assert lr["diff_vs_base"] == pytest.approx((-0.02 - 0.02 + 0.01 + 0.03) / 4)
    assert lr["per_config_diff"] == {"c00": pytest.approx(-0.02), "c01": pytest.approx(0.02)}
    assert lr["configs_improved"] == "1/2" and lr["diff_ci95"][0] < lr["diff_vs_base"] < lr["diff_ci95"][1]
    missing = {k: v for k, v in ne.items() if k != ("lr=1", "c01", 1)}  # only pairs both variants ran count
    assert train_settings.summarise(_rows(missing), ["lr=1"])["lr=1"]["runs"] == 3


@pytest.mark.parametrize("text, where", [("lr", "KEY=VALUE"), ("nope=1", "KEY=VALUE"), ("lr=-1", "lr"),
                                         ("model.d_model=0", "d_model")])
def test_a_bad_variant_names_what_is_allowed(text, where):
    with pytest.raises(train_settings.ConfigError, match=where):
        train_settings.parse_variant(text, KunlunConfig.load("kunlun-small"))


def test_variant_values_are_read_as_yaml():
    small = KunlunConfig.load("kunlun-small")
    assert train_settings.parse_variant("lr=1e-3,lr_schedule=wsd,epochs=null,model.recency_embedding=false",
                                        small) == {"lr": 1e-3, "lr_schedule": "wsd", "epochs": None,
                                                   "model.recency_embedding": False}
    both = train_settings.with_settings(small, {"lr": 1e-3, "model.recency_embedding": False})
    assert both.train.lr == 1e-3 and not both.model.recency_embedding and small.model.recency_embedding


def test_command_runs_each_variant_on_the_inner_split_and_resumes(tmp_path, monkeypatch):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    out = tmp_path / "ts"
    argv = [str(space), "--configs", "1", "--seeds", "1", "--variant", "lr=1e-2", "--out", str(out), "--no-progress"]
    splits = []
    real = train_settings.selection.run_one

    def spy(config, seed, split):
        splits.append(split)
        return real(config, seed, split)

    monkeypatch.setattr(train_settings.selection, "run_one", spy)
    assert train_settings.main(argv) == 0
    assert splits == ["inner", "inner"]
    with (out / "runs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["variant"], r["config"]) for r in rows] == [("base", "c00"), ("lr=1e-2", "c00")]
    assert rows[0]["config_hash"] != rows[1]["config_hash"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variants"] == {"base": {}, "lr=1e-2": {"lr": 0.01}}
    assert summary["results"]["lr=1e-2"]["runs"] == 1
    assert train_settings.main(argv) == 0 and len(splits) == 2  # both runs are in the CSV: nothing trains again
