"""benchmarks/selection.py: its statistics on made-up NEs, and the whole command on tiny synthetic data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import selection

TINY = """\
name: tiny
budget: {kind: flops, value: 2.0e6, tolerance: 0.02}
base: kunlun-small
data: synthetic
seed: 0
examples: 128
fixed:
  train: {batch_size: 128, data_examples: 2000, eval_batch_size: 1024}
params:
  family: [kunlun]
  seq_share: {low: 0.5, high: 0.8}
  num_layers: [2]
  schedule: {named: [alternate]}
  window: {choices: [null, 4], tie: stream}
  kv_len: [8, 16]
  seeds: [8]
  summary_tokens: [2]
  heads: [2]
  experts: [1]
  fm_rank: [4]
  max_len: [4, 32]
solver: {width_multiple: 8, head_dim_multiple: 2, min_width: 8, max_width: 256}
"""


def test_spearman_matches_the_definition_with_ties():
    a = np.array([1.0, 2.0, 2.0, 4.0, 5.0])
    b = np.array([2.0, 1.0, 3.0, 5.0, 4.0])
    ra, rb = np.array([1, 2.5, 2.5, 4, 5]), np.array([2, 1, 3, 5, 4])
    assert selection.ranks(a).tolist() == ra.tolist()
    assert selection.spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert selection.spearman(a, -a) == pytest.approx(-1.0)
    rows = np.stack([a, b])  # along the last axis, row by row
    assert selection.spearman(rows, rows[::-1]).tolist() == pytest.approx([np.corrcoef(ra, rb)[0, 1]] * 2)
    assert np.isnan(selection.spearman(np.ones(4), a[:4]))


def test_picks_single_seed_mean_bound_and_reeval():
    inner = np.array([[0.80, 0.90, 0.90],  # c0: one lucky seed
                      [0.84, 0.84, 0.84],  # c1: best mean, no spread
                      [0.83, 0.86, 0.85],
                      [0.95, 0.95, 0.95]])
    p = selection.picks(inner, top=2)
    assert p["single_seed"] == [0, 1, 1]
    assert p["mean"] == [1] and p["bound"] == [1]
    # seed 0 alone ranks c0, c2 first: re-evaluated on every seed, c2's mean (0.847) beats c0's (0.867)
    assert p["reeval_top"][0] == 2


def test_spread_separates_seed_noise_from_config_differences():
    x = np.array([[1.0, 1.2], [2.0, 2.2], [3.0, 3.2]])
    s = selection.spread(x)
    assert s["seed_sd"] == pytest.approx(np.std([1.0, 1.2], ddof=1))
    assert s["config_sd"] == pytest.approx(1.0)
    assert s["config_over_seed"] == pytest.approx(1.0 / np.std([1.0, 1.2], ddof=1))


def _rows(inner, ev):
    return [{"config": f"c{i}", "seed": j, "split": split, "ne": v}
            for split, x in (("inner", inner), ("eval", ev)) for i, r in enumerate(x) for j, v in enumerate(r)]


def test_summary_regret_is_against_the_eval_oracle():
    inner = np.array([[0.80, 0.81], [0.82, 0.83], [0.90, 0.91], [0.95, 0.96]])
    ev = np.array([[0.86, 0.86], [0.84, 0.84], [0.88, 0.88], [0.97, 0.97]])  # inner's best is eval's second
    s = selection.summarise(_rows(inner, ev), seeds=[0, 1], boot=200)
    assert s["oracle"] == {"config": "c1", "eval_ne": pytest.approx(0.84)}
    assert s["regret"]["mean"]["regret"] == pytest.approx(0.02) and s["regret"]["mean"]["picked"] == ["c0"]
    assert s["regret"]["random"]["regret"] == pytest.approx(np.mean([0.86, 0.84, 0.88, 0.97]) - 0.84)
    assert s["spearman"]["rho"] == pytest.approx(0.8)
    lo, hi = s["spearman"]["ci95"]
    assert -1 <= lo <= hi <= 1
    few = selection.summarise(_rows(inner[:2], ev[:2]), seeds=[0, 1])
    assert "spearman" not in few and few["configs"] == 2


@pytest.mark.slow
def test_command_writes_every_run_and_resumes(tmp_path, monkeypatch, capsys):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    out = tmp_path / "sel"
    argv = [str(space), "--data", "synthetic", "--configs", "3", "--seeds", "2", "--examples", "128",
            "--out", str(out), "--no-progress", "--bootstrap", "100"]
    assert selection.main([*argv, "--workers", "2"]) == 0  # two spawned processes; the rows as in one
    with (out / "runs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["config"], int(r["seed"]), r["split"]) for r in rows) == sorted(
        (f"c0{i}", s, split) for i in range(3) for s in (0, 1) for split in ("inner", "eval"))
    assert {r["max_len"] for r in rows} <= {json.dumps({"click": a, "impression": b}) for a in (4, 32) for b in (4, 32)}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["configs"] == 3 and set(summary["regret"]) >= {"single_seed", "mean", "reeval_top", "random"}
    assert sorted(p.name for p in (out / "configs").iterdir()) == ["c00.yaml", "c01.yaml", "c02.yaml"]

    def no_training(*a, **k):
        raise AssertionError("a run already in runs.csv was trained again")

    monkeypatch.setattr(selection, "run_one", no_training)
    assert selection.main(argv) == 0  # every run is in the CSV: nothing trains
    assert json.loads((out / "summary.json").read_text()) == summary
    fewer = [*argv[:argv.index("--seeds")], "--seeds", "1", *argv[argv.index("--seeds") + 2:]]
    assert selection.main(fewer) == 0  # a subset of the runs: summarised, nothing trained
    assert json.loads((out / "summary.json").read_text())["seeds"] == [0]

    capsys.readouterr()
    assert selection.main([*argv, "--sample-seed", "7"]) == 2  # other configs, same CSV
    err = capsys.readouterr().err
    assert "runs.csv" in err and "another config" in err and "Traceback" not in err
