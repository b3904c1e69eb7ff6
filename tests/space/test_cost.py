"""Cost model: units, monotonicity, windows, extrapolation labels, launch modes, calibration, the launch fit and
the CLI."""

from __future__ import annotations

import csv
import json

import pytest

from kunlun.kernels.hardware import lookup
from kunlun.model import KunlunConfig, count_flops
from kunlun.model.flops import matmul
from kunlun.model.yamlio import load_yaml_file
from kunlun.search.cli import main
from kunlun.space.cost import (
    LAUNCH_MODES,
    EfficiencyTable,
    LaunchTerms,
    StepSample,
    calibrate,
    default_table,
    fit_launch,
    op_seconds,
    predict,
    write_table,
)


def _launch(host_step_us=0.0, host_launch_us=0.0, device_launch_us=4.0, roofline_scale=1.0):
    return {m: LaunchTerms(host_step_us, host_launch_us, device_launch_us, roofline_scale) for m in LAUNCH_MODES}


def test_units_of_one_large_matmul():
    """A 8192^3 GEMM at 70% of the H100 bf16 peak: 2 * 8192^3 / (0.7 * 989.4e12) s, plus one launch."""
    table = EfficiencyTable([16, 64, 256], {"linear": [0.1, 0.2, 0.5, 0.7]}, _launch(), "test", False)
    op = matmul("x", 8192, 8192, 8192)
    fwd, _ = op_seconds(op, lookup("h100"), table)
    assert table.efficiency(op) == pytest.approx(0.70)
    assert fwd == pytest.approx(2 * 8192**3 / (0.7 * 989.4e12) + 4e-6, rel=1e-9)


def test_memory_bound_op_is_priced_by_bandwidth():
    op = matmul("x", 1e7, 4, 4)  # 2 * 1.6e8 FLOPs but 1.6e8 bytes: far below the ridge
    table = default_table()
    for mode in LAUNCH_MODES:
        fwd, _ = op_seconds(op, lookup("h200"), table, mode)
        terms = table.launch[mode]
        assert fwd == pytest.approx(terms.roofline_scale * op.bytes / 4.8e12 + terms.device_launch_us * 1e-6,
                                    rel=1e-9)


@pytest.mark.parametrize("gpu", ["b200", "h100", "h200"])
def test_more_flops_never_cheaper_at_equal_efficiency(gpu):
    table = EfficiencyTable([16], {"linear": [0.5, 0.5], "bmm": [0.5, 0.5], "gdpa": [0.5, 0.5]}, _launch(), "test",
                            False)
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
    assert sum(m["seconds"] for m in b200.modules.values()) == pytest.approx(b200.device_seconds)
    assert b200.step_seconds == max(b200.device_seconds, b200.host_seconds)
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


def test_presets_price_the_production_deployment():
    """Issue 20: a B200 budget means the deployed model, so the workload is a production batch and CUDA graphs."""
    for name in ("kunlun-small", "kunlun-base", "interformer-small", "wukong-small"):
        workload = KunlunConfig.preset(name).workload
        assert workload.batch_size >= 1024 and workload.launch == "graphs"
    config = KunlunConfig.preset("kunlun-base")
    graphs, eager = predict(config, "b200"), predict(config, "b200", launch="eager")
    assert graphs.launch == "graphs" and eager.launch == "eager"
    assert graphs.work_seconds == pytest.approx(eager.work_seconds)  # the same ops, launched differently
    assert graphs.launch_share < eager.launch_share
    assert graphs.launches == eager.launches == 3 * len(count_flops(config).ops)


def test_a_host_bound_step_is_its_host_time():
    table = default_table()
    table.launch["eager"] = LaunchTerms(host_step_us=500.0, host_launch_us=100.0, device_launch_us=4.0)
    c = predict(KunlunConfig.preset("kunlun-small"), "h100", table=table, launch="eager")
    assert c.host_bound and c.step_seconds == pytest.approx(1e-6 * (500.0 + 100.0 * c.launches))
    assert c.launch_share == pytest.approx(1 - c.work_seconds / c.step_seconds) and c.launch_share > 0.9


def test_launch_mode_is_explicit_config(tmp_path, capsys):
    text = KunlunConfig.preset("kunlun-small").to_yaml().replace("launch: graphs", "launch: eager")
    (tmp_path / "eager.yaml").write_text(text)
    assert main(["cost", str(tmp_path / "eager.yaml"), "--gpu", "h100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["launch"] == "eager" and out["host_bound"] and out["launch_share"] > 0.9
    (tmp_path / "bad.yaml").write_text(text.replace("launch: eager", "launch: cudagraph"))
    assert main(["cost", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "workload.launch" in err and "graphs" in err and "Traceback" not in err


def test_the_data_keeps_the_configs_batch_and_launch():
    from kunlun.data.synthetic import synthetic_schema

    config = KunlunConfig.preset("kunlun-small")
    config.workload.batch_size, config.workload.launch = 4096, "compile"
    schema, workload = synthetic_schema()
    adopted = config.with_schema(schema, workload)
    assert (adopted.workload.batch_size, adopted.workload.launch) == (4096, "compile")
    assert adopted.workload.streams.keys() == workload.streams.keys()


def test_cli_shows_the_launch_bound_share_and_the_carry_rule(capsys):
    assert main(["cost", "kunlun-base", "--gpu", "b200"]) == 0
    out = capsys.readouterr().out
    assert "launch graphs" in out and "launch-bound share" in out and "carried unchanged" in out
    assert main(["cost", "kunlun-base", "--gpu", "h200", "--launch", "eager"]) == 0
    out = capsys.readouterr().out
    assert "launch eager" in out and "host-bound" in out and "carried unchanged" not in out


# Recorded-style rows: the small presets are host-bound in eager mode (interformer-small took 58.6 ms per step on
# an H100, benchmarks/README.md), their host time close to proportional to the kernels they launch.
HOST_BOUND = [StepSample(141, 0.05e-3, 37.9e-3, 37.1e-3), StepSample(225, 0.09e-3, 58.6e-3, 57.8e-3),
              StepSample(279, 0.08e-3, 73.0e-3, 72.2e-3), StepSample(876, 0.30e-3, 224.0e-3, 223.1e-3)]


def test_the_fit_of_host_bound_rows_prices_host_time_and_keeps_device_defaults():
    base = LaunchTerms(0.0, 0.0, 4.0, 1.0)
    terms = fit_launch(HOST_BOUND, base, "rows")
    assert terms.measured and "every step host-bound" in terms.source
    assert (terms.device_launch_us, terms.roofline_scale) == (base.device_launch_us, base.roofline_scale)
    assert 250 < terms.host_launch_us < 260 and terms.host_step_us < 2000
    for s in HOST_BOUND:
        host = 1e-6 * (terms.host_step_us + terms.host_launch_us * s.launches)
        assert abs(host / s.step_seconds - 1) < 0.05


def test_the_fit_recovers_device_terms_from_device_bound_rows():
    true = LaunchTerms(30.0, 0.0, 2.5, 1.6)
    samples = [StepSample(n, r, 1e-6 * (true.roofline_scale * 1e6 * r + true.device_launch_us * n),
                          1e-6 * true.host_step_us) for n, r in ((405, 40e-3), (1047, 55e-3), (876, 0.3e-3))]
    terms = fit_launch(samples, LaunchTerms(0.0, 0.0, 4.0, 1.0), "rows")
    assert terms.roofline_scale == pytest.approx(1.6, rel=1e-3)
    assert terms.device_launch_us == pytest.approx(2.5, rel=1e-3)
    assert terms.host_step_us == pytest.approx(30.0, rel=1e-3) and terms.host_launch_us == 0.0
    # one device-bound row: the scale stays the base's, the per-kernel time takes the rest
    one = fit_launch(samples[:1], LaunchTerms(0.0, 0.0, 4.0, 1.0), "rows")
    assert one.roofline_scale == 1.0
    assert one.device_launch_us == pytest.approx((samples[0].step_seconds - 40e-3) * 1e6 / 405, rel=1e-3)
    assert fit_launch([], LaunchTerms(1.0, 2.0, 3.0), "none") == LaunchTerms(1.0, 2.0, 3.0)


def test_a_fitted_table_reads_back(tmp_path):
    table = default_table()
    table.launch["eager"] = fit_launch(HOST_BOUND, table.launch["eager"], "rows")
    write_table(table, tmp_path / "efficiency.yaml")
    assert EfficiencyTable(**load_yaml_file(tmp_path / "efficiency.yaml")) == table


def test_trials_and_fronts_carry_the_launch_bound_share():
    from kunlun.search.front import ROW_KEYS
    from kunlun.search.trial import _price

    config = KunlunConfig.preset("kunlun-small")
    assert _price(config)["launch_share"] == pytest.approx(predict(config, "b200").launch_share)
    assert "launch_share" in ROW_KEYS
