"""Cost model: units, monotonicity, windows, extrapolation labels, calibration and the CLI."""

from __future__ import annotations

import csv
import json

import pytest

from kunlun.kernels.hardware import lookup
from kunlun.model import KunlunConfig, count_flops
from kunlun.model.flops import matmul
from kunlun.model.yamlio import load_yaml_file
from kunlun.search.cli import main
from kunlun.space.cost import EfficiencyTable, calibrate, default_table, op_seconds, predict, write_table


def test_units_of_one_large_matmul():
    """A 8192^3 GEMM at 70% of the H100 bf16 peak: 2 * 8192^3 / (0.7 * 989.4e12) s, plus one launch."""
    table = EfficiencyTable([16, 64, 256], {"linear": [0.1, 0.2, 0.5, 0.7]}, 4.0, "test", False)
    op = matmul("x", 8192, 8192, 8192)
    fwd, _ = op_seconds(op, lookup("h100"), table)
    assert table.efficiency(op) == pytest.approx(0.70)
    assert fwd == pytest.approx(2 * 8192**3 / (0.7 * 989.4e12) + table.launch_us * 1e-6, rel=1e-9)


def test_memory_bound_op_is_priced_by_bandwidth():
    op = matmul("x", 1e7, 4, 4)  # 2 * 1.6e8 FLOPs but 1.6e8 bytes: far below the ridge
    fwd, _ = op_seconds(op, lookup("h200"), default_table())
    assert fwd == pytest.approx(op.bytes / 4.8e12 + 4e-6, rel=1e-9)


@pytest.mark.parametrize("gpu", ["b200", "h100", "h200"])
def test_more_flops_never_cheaper_at_equal_efficiency(gpu):
    table = EfficiencyTable([16], {"linear": [0.5, 0.5], "bmm": [0.5, 0.5], "gdpa": [0.5, 0.5]}, 4.0, "test", False)
    small, large = matmul("x", 1024, 256, 256), matmul("x", 4096, 256, 256)
    assert sum(op_seconds(large, lookup(gpu), table)) >= sum(op_seconds(small, lookup(gpu), table))
    config = KunlunConfig.preset("kunlun-small")
    wider = config.copy()
    wider.model.streams["click"].kv_len *= 2
    assert predict(wider, gpu, table=table).step_seconds > predict(config, gpu, table=table).step_seconds


def test_windows_cut_time():
    config = KunlunConfig.preset("kunlun-base")
    full = config.copy()
    for s in full.model.streams.values():
        s.window = None
    assert predict(config).step_seconds < predict(full).step_seconds


def test_report_fields_and_labels():
    config = KunlunConfig.preset("kunlun-small")
    b200, h100 = predict(config, "b200"), predict(config, "h100")
    assert b200.extrapolated  # Hopper efficiencies against B200 peaks
    assert h100.extrapolated == (not default_table().measured)  # defaults are not measurements
    assert b200.us_per_example < h100.us_per_example  # same efficiencies, higher peaks and bandwidth
    report = count_flops(config)
    assert b200.train_flops_per_example == report.train_flops_per_example
    assert 0 < b200.mfu < 1
    assert b200.examples_per_second == pytest.approx(1e6 / b200.us_per_example)
    assert sum(m["seconds"] for m in b200.modules.values()) == pytest.approx(b200.step_seconds)
    assert b200.fits_memory


def _kernel_rows(path, rows):
    columns = ["date", "bench", "name", "variant", "mode", "provider", "shape", "dtype", "pct_peak", "gpu_name",
               "torch"]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        for row in rows:
            w.writerow({"bench": "kernels", "mode": "fwd", "dtype": "bf16", "gpu_name": "NVIDIA H100 80GB HBM3",
                        "torch": "2.11.0", "date": "2026-11-22T10:00:00Z", **row})


def test_calibrate_folds_in_measured_rows(tmp_path):
    path = tmp_path / "kernels.csv"
    _kernel_rows(path, [
        {"name": "matmul", "variant": "square", "provider": "cublas", "shape": "M=N=K=8192", "pct_peak": "80"},
        {"name": "matmul", "variant": "linear", "provider": "cublas", "shape": "16384x32x128", "pct_peak": "4"},
        # the same kernel measured twice: only the newer row counts
        {"name": "gdpa", "variant": "pffn-silu", "provider": "triton", "shape": "B=1024 H=4 Dh=64",
         "pct_peak": "15"},
        {"name": "gdpa", "variant": "pffn-silu", "provider": "triton", "shape": "B=1024 H=4 Dh=64",
         "pct_peak": "22", "date": "2026-11-22T11:00:00Z"},
        # not calibrated from: a reference provider, a backward row, an fp32 row
        {"name": "gdpa", "variant": "pffn-gelu", "provider": "reference", "shape": "Dh=64", "pct_peak": "1"},
        {"name": "gdpa", "variant": "pffn-relu", "provider": "triton", "shape": "Dh=64", "pct_peak": "1",
         "mode": "bwd"},
        {"name": "gdpa", "variant": "pffn-relu", "provider": "triton", "shape": "Dh=64", "pct_peak": "1",
         "dtype": "fp32"},
    ])
    table = calibrate(path)
    default = default_table()
    assert table.measured and table.kinds["linear"][-1] == pytest.approx(0.8)
    assert table.kinds["linear"][1] == pytest.approx(0.04)  # smallest dim 32 -> the (16, 64] bucket
    assert table.kinds["gdpa"][1] == pytest.approx(0.22)  # bucketed by head dim, newest row
    assert table.kinds["gdpa"][2:] == default.kinds["gdpa"][2:]
    assert sorted(table.measured_cells) == ["gdpa[1]", "linear[1]", "linear[3]"]
    assert table.gpu == "NVIDIA H100 80GB HBM3" and table.versions["torch"] == "2.11.0"


def test_a_written_table_reads_back(tmp_path):
    path = tmp_path / "kernels.csv"
    _kernel_rows(path, [{"name": "matmul", "variant": "linear", "provider": "cublas", "shape": "16384x8x8",
                         "pct_peak": "1.5"}])
    table = calibrate(path)
    write_table(table, tmp_path / "efficiency.yaml", "a note")
    assert EfficiencyTable(**load_yaml_file(tmp_path / "efficiency.yaml")) == table


def test_cli(capsys):
    assert main(["cost", "kunlun-small", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["extrapolated"] and out["gpu"].startswith("B200")
    assert {"us_per_example", "predicted_mfu", "examples_per_second", "modules", "memory_gb"} <= set(out)
    assert main(["cost", "kunlun-small", "--gpu", "a100"]) == 2
    assert "allowed" in capsys.readouterr().err
