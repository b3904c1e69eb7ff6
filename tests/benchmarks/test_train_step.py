"""Smoke run of benchmarks/train_step.py on CPU with the tiny shape: it runs and writes valid result rows."""

from __future__ import annotations

import pytest
import rows
import train_step


@pytest.mark.slow
def test_tiny_train_step_writes_rows(tmp_path):
    csv_path = tmp_path / "train_step.csv"
    assert train_step.main(["--tiny", "--device", "cpu", "--batch", "4", "--csv", str(csv_path)]) == 0
    got = rows.read_rows(csv_path)
    steps = [r for r in got if r["variant"] == "step"]
    assert [r["name"] for r in steps] == ["kunlun-production", "interformer-production"]
    assert all(r["bench"] == "train_step" and float(r["ms"]) > 0 and float(r["examples_per_second"]) > 0
               for r in steps)
    modules = {r["variant"] for r in got if r["name"] == "kunlun-production" and r["mode"] == "fwd"}
    assert {"module:L0.click.pffn", "module:L1.click.swa", "module:L0.click.hsp", "module:head"} <= modules


def test_baseline_is_matched_in_training_flops():
    from kunlun.model import count_flops

    configs = train_step.production_configs(64, tiny=False)
    kunlun, inter = (count_flops(c).train_flops_per_example for c in configs.values())
    assert configs["kunlun-production"].model.d_model == 256
    assert configs["interformer-production"].model.family == "interformer"
    assert abs(inter / kunlun - 1) < 0.5  # the closest depth; the note reports the exact ratio


@pytest.mark.slow
def test_presets_mode_measures_every_preset(tmp_path):
    from kunlun.model.config import preset_names

    csv_path = tmp_path / "train_step.csv"
    assert train_step.main(["--presets", "--tiny", "--device", "cpu", "--csv", str(csv_path)]) == 0
    steps = [r for r in rows.read_rows(csv_path) if r["variant"] == "step"]
    # measured rows only: the cost model predicts for known GPUs, and a CPU is none
    assert sorted(r["name"] for r in steps) == sorted(preset_names())
    assert {r["provider"] for r in steps} == {"triton"}


def test_histogram_lengths_follow_the_weights():
    from kunlun.model.config import LengthHistogram

    lengths = train_step.histogram_lengths(LengthHistogram([4, 16, 64], [1, 2, 1]), 10)
    # exact shares 2.5 / 5 / 2.5: the tie for the remaining example goes to the first length; longest first
    assert lengths.tolist() == [64, 64, 16, 16, 16, 16, 16, 4, 4, 4]
