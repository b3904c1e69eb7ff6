"""benchmarks/train_step.py on CPU with tiny shapes: it runs, writes valid result rows with the host time, skips
the CUDA-only launch modes, and matches the InterFormer baseline to Kunlun in training FLOPs."""

from __future__ import annotations

import pytest
import rows
import train_step

from kunlun.model import count_flops


@pytest.mark.slow
def test_tiny_train_step_writes_rows(tmp_path):
    csv_path = tmp_path / "train_step.csv"
    assert train_step.main(["--tiny", "--device", "cpu", "--batch", "4", "--csv", str(csv_path)]) == 0
    got = rows.read_rows(csv_path)
    steps = [r for r in got if r["variant"] == "step"]
    assert [r["name"] for r in steps] == ["kunlun-production", "interformer-production"]
    assert all(r["bench"] == "train_step" and r["provider"] == "eager" and float(r["ms"]) > 0
               and float(r["host_ms"]) > 0 and float(r["examples_per_second"]) > 0 for r in steps)
    assert all(r["predicted_ms"] == "" for r in steps)  # a CPU is no GPU the cost model prices
    modules = {r["variant"] for r in got if r["name"] == "kunlun-production" and r["mode"] == "fwd"}
    assert {"module:L0.click.pffn", "module:L1.click.swa", "module:L0.click.hsp", "module:head"} <= modules


@pytest.mark.slow
def test_presets_run_eager_and_skip_cuda_modes_on_cpu(tmp_path, capsys):
    csv_path = tmp_path / "train_step.csv"
    assert train_step.main(["--models", "wukong-small,interformer-small", "--modes", "eager,graphs,compile",
                            "--tiny", "--device", "cpu", "--no-breakdown", "--csv", str(csv_path)]) == 0
    got = rows.read_rows(csv_path)
    assert [(r["name"], r["provider"], r["variant"]) for r in got] == [
        ("wukong-small", "eager", "step"), ("interformer-small", "eager", "step")]
    assert train_step.batch_of(got[0]["shape"]) == 4 * 4  # --tiny caps the presets' production batch at 16
    err = capsys.readouterr().err
    assert "graphs: skipped (needs CUDA)" in err and "compile: skipped (needs CUDA)" in err


def test_unknown_modes_or_models_exit_2(tmp_path, capsys):
    assert train_step.main(["--modes", "eager,cudagraph", "--csv", str(tmp_path / "x.csv")]) == 2
    assert train_step.main(["--models", "kunlun-huge", "--csv", str(tmp_path / "x.csv")]) == 2
    assert "cudagraph" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()


def test_baseline_is_matched_in_training_flops():
    configs = train_step.production_configs(1024, tiny=False)
    kunlun, inter = (count_flops(c).train_flops_per_example for c in configs.values())
    k = configs["kunlun-production"]
    assert (k.model.d_model, k.model.num_layers, k.workload.batch_size) == (256, 6, 1024)
    assert max(s.max_len for s in k.model.streams.values()) == 1000
    assert configs["interformer-production"].model.family == "interformer"
    assert abs(inter / kunlun - 1) <= train_step.MATCH_TOLERANCE


def test_rows_rebuild_the_config_they_measured():
    config = train_step.config_for("kunlun-base", 512)
    assert config.workload.batch_size == 512 and config.model.num_layers == 5
    prod = train_step.config_for("interformer-production", 2048)
    assert prod == train_step.production_configs(2048, tiny=False)["interformer-production"]
    assert train_step.batch_of("B=2048 d=256 L=6 GF/ex=10.1") == 2048
    with pytest.raises(ValueError):
        train_step.batch_of("d=256")


def test_histogram_lengths_follow_the_weights():
    from kunlun.model.config import LengthHistogram

    lengths = train_step.histogram_lengths(LengthHistogram([4, 16, 64], [1, 2, 1]), 10)
    # exact shares 2.5 / 5 / 2.5: the tie for the remaining example goes to the first length; longest first
    assert lengths.tolist() == [64, 64, 16, 16, 16, 16, 16, 4, 4, 4]


@pytest.mark.slow
def test_the_issue15_plan_runs_its_stages_and_appends_rows(tmp_path):
    """benchmarks/gpu_session.sh's training-step stages, on CPU with a tiny preset: each stage logs its exit status
    and the rows land in $OUT/train_step.csv (graphs skip without CUDA)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(train_step.__file__).resolve().parents[1]
    env = {**os.environ, "OUT": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "KUNLUN_STEPS_ARGS": "--tiny --device cpu --models wukong-small --no-breakdown"}
    done = subprocess.run(["bash", "benchmarks/gpu_session.sh", "steps-presets-eager", "steps-presets-graphs"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "log.txt").read_text()
    assert "=== steps-presets-eager rc=0" in log and "=== steps-presets-graphs rc=0" in log
    assert "graphs: skipped (needs CUDA)" in log
    got = rows.read_rows(tmp_path / "train_step.csv")
    assert [(r["name"], r["provider"]) for r in got] == [("wukong-small", "eager")]
