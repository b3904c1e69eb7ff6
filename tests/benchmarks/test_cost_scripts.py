"""benchmarks/validate_cost.py and benchmarks/calibrate.py on rows written through rows.py."""

from __future__ import annotations

import calibrate
import pytest
import rows
import validate_cost

from kunlun.model.yamlio import load_yaml_file
from kunlun.space.cost import EfficiencyTable

ENV = {"date": "2026-11-22T10:00:00Z", "commit": "abc", "gpu_name": "NVIDIA H100 80GB HBM3", "sm_count": "132",
       "cuda": "13.0", "torch": "2.11.0", "triton": "3.6.0"}


def _step(name, provider, ms, date=ENV["date"]):
    return rows.make_row({**ENV, "date": date}, bench="train_step", name=name, variant="step", mode="fwd+bwd",
                         provider=provider, shape="B=256", dtype="bf16", ms=ms, tflops=1.0)


def test_each_prediction_meets_the_newest_measurement(tmp_path, capsys):
    path = tmp_path / "train_step.csv"
    rows.append_rows(path, [
        _step("kunlun-small", "triton", 10.0), _step("kunlun-small", "cost-model", 1.0),
        _step("kunlun-small", "triton", 2.0, date="2026-11-22T11:00:00Z"),
        _step("wukong-small", "cost-model", 1.0),  # never measured: no pair
        rows.make_row(ENV, bench="train_step", name="kunlun-small", variant="module:seq.click.pffn", mode="fwd",
                      provider="triton", shape="B=256", dtype="bf16", ms=0.5, tflops=1.0),
    ])
    assert validate_cost.pairs(path) == [("NVIDIA H100 80GB HBM3", "kunlun-small", 1.0, 2.0)]
    assert validate_cost.main([str(path)]) == 0
    assert "-50%" in capsys.readouterr().out


def test_without_pairs_or_file_it_exits_2(tmp_path, capsys):
    path = tmp_path / "train_step.csv"
    rows.append_rows(path, [_step("kunlun-small", "triton", 10.0)])
    assert validate_cost.main([str(path)]) == 2
    assert validate_cost.main([str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_calibrate_writes_a_table_the_cost_model_reads(tmp_path):
    path = tmp_path / "kernels.csv"
    rows.append_rows(path, [rows.make_row(ENV, bench="kernels", name="matmul", variant="linear", mode="fwd",
                                          provider="cublas", shape="16384x64x64", dtype="bf16", ms=0.01,
                                          tflops=50.0, pct_peak=5.0)])
    out = tmp_path / "efficiency.yaml"
    assert calibrate.main([str(path), str(out)]) == 0
    table = EfficiencyTable(**load_yaml_file(out))
    assert table.kinds["linear"][1] == pytest.approx(0.05) and table.measured_cells == ["linear[1]"]
    assert "not measured" in out.read_text()
    assert calibrate.main([str(tmp_path / "missing.csv"), str(tmp_path / "x.yaml")]) == 2
    assert not (tmp_path / "x.yaml").exists()
