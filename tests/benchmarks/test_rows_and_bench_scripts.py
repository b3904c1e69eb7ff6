"""benchmarks/rows.py (the result-row helper) and a smoke run of the benchmark scripts' quick CPU path."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import rows
import torch


def _header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f))


def _row(**fields) -> dict[str, str]:
    return rows.make_row({"gpu_name": "test"}, bench="kernels", name="gdpa", **fields)


def test_append_creates_the_header_then_appends(tmp_path):
    path = tmp_path / "sub" / "kernels.csv"
    rows.append_rows(path, [_row(ms=1.0)])
    rows.append_rows(path, [_row(ms=2.0), _row(ms=3.0)])
    assert tuple(_header(path)) == rows.COLUMNS
    assert [r["ms"] for r in rows.read_rows(path)] == ["1", "2", "3"]


def test_unknown_columns_and_foreign_headers_are_refused(tmp_path):
    with pytest.raises(KeyError):
        _row(speed=3)
    path = tmp_path / "other.csv"
    path.write_text("date,ms\n2026,1\n")
    with pytest.raises(ValueError):
        rows.append_rows(path, [_row(ms=1.0)])
    with pytest.raises(ValueError):
        rows.merge(path, tmp_path / "kernels.csv")
    assert path.read_text() == "date,ms\n2026,1\n"


def test_merge_adds_only_new_rows_and_never_rewrites(tmp_path):
    dst_dir = tmp_path / "results"
    dst_dir.mkdir()
    dst = dst_dir / "kernels.csv"
    rows.append_rows(dst, [_row(ms=1.0, provider="triton")])
    before = dst.read_text()
    src = tmp_path / "gpu" / "kernels.csv"
    rows.append_rows(src, [_row(ms=1.0, provider="triton"), _row(ms=5.0, provider="reference")])
    assert rows.main(["merge", str(src), str(dst_dir)]) == 0
    assert rows.merge(src, dst) == 0
    after = dst.read_text()
    assert after.startswith(before)
    assert [r["provider"] for r in rows.read_rows(dst)] == ["triton", "reference"]


def test_files_from_before_the_last_columns_read_and_upgrade_unchanged(tmp_path):
    path = tmp_path / "kernels.csv"
    old = [dict(zip(rows.PREVIOUS_COLUMNS, [f"v{i}" for i in range(len(rows.PREVIOUS_COLUMNS))]))]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=rows.PREVIOUS_COLUMNS)
        writer.writeheader()
        writer.writerows(old)
    assert rows.read_rows(path) == [{**old[0], **dict.fromkeys(rows.COLUMNS[len(rows.PREVIOUS_COLUMNS):], "")}]
    rows.append_rows(path, [_row(ms=2.0, pct_roofline=50.0)])
    assert tuple(_header(path)) == rows.COLUMNS
    got = rows.read_rows(path)
    assert got[0] == {**old[0], **dict.fromkeys(rows.COLUMNS[len(rows.PREVIOUS_COLUMNS):], "")}
    assert (got[1]["ms"], got[1]["pct_roofline"]) == ("2", "50")
    assert rows.merge(path, tmp_path / "copy.csv") == 2 and rows.read_rows(tmp_path / "copy.csv") == got


def test_quick_benchmarks_write_result_rows(tmp_path):
    csv_path = tmp_path / "kernels.csv"
    import bench_gdpa
    import bench_matmul
    # On CPU the Triton provider runs in the interpreter (tests/conftest.py sets it); with a GPU, on the GPU.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert bench_matmul.main(["--quick", "--device", device, "--csv", str(csv_path)]) == 0
    assert bench_gdpa.main(["--quick", "--device", device, "--csv", str(csv_path), "--ops", "pffn,hsp",
                            "--modes", "fwd,fwd+bwd", "--providers", "triton,reference"]) == 0
    assert tuple(_header(csv_path)) == rows.COLUMNS
    got = rows.read_rows(csv_path)
    gdpa_rows = [r for r in got if r["name"] == "gdpa"]
    assert {(r["variant"], r["mode"], r["provider"]) for r in gdpa_rows} == {
        (v, m, p) for v in ("pffn-gelu", "hsp-softmax") for m in ("fwd", "fwd+bwd") for p in ("triton", "reference")}
    assert all(float(r["ms"]) > 0 and float(r["tflops"]) > 0 for r in gdpa_rows)
    assert [r["provider"] for r in got if r["name"] == "matmul"] == ["cublas"]


def test_quick_sweep_writes_checked_rows_and_stops_on_budget(tmp_path):
    import sweep_gdpa
    csv_path = tmp_path / "kernels.csv"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert sweep_gdpa.main(["--quick", "--device", device, "--csv", str(csv_path), "--parts", "hsp"]) == 0
    got = rows.read_rows(csv_path)
    assert [r["name"] for r in got[:2]] == ["copy", "matmul"]
    gdpa_rows = [r for r in got if r["name"] == "gdpa"]
    assert {(r["variant"].split()[0], r["mode"]) for r in gdpa_rows} == {
        (f"hsp-{a}", m) for a in ("softmax", "silu") for m in ("fwd", "fwd+bwd")}
    assert all(float(r["pct_roofline"]) > 0 for r in gdpa_rows)
    # Executed FLOPs: 3.5x (softmax 4.5x) backward against the 2.5x model convention.
    for r in gdpa_rows:
        ratio = {"fwd": 1.0, "fwd+bwd": (5.5 if "softmax" in r["variant"] else 4.5) / 3.5}[r["mode"]]
        assert float(r["executed_tflops"]) == pytest.approx(ratio * float(r["tflops"]), rel=1e-3)
    stopped = tmp_path / "stopped.csv"
    assert sweep_gdpa.main(["--quick", "--device", device, "--csv", str(stopped), "--budget-s", "1e-9"]) == 0
    assert [r["name"] for r in rows.read_rows(stopped)] == ["copy", "matmul"]
