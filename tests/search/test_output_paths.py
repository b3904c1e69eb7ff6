"""Issue 20, items 2 and 7: every path a command writes to is checked like any input. A path through a file, a
folder where a file goes, a place nobody may write (a path under a regular file works as root too; /proc refuses
even root): one line on stderr, exit 2, no traceback, nothing created."""

import pytest

from kunlun.search.cli import main


def _bad(capsys, argv, *absent):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for path in absent:
        assert not path.exists()
    return err


def test_search_and_scaling_out(tiny_space, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for argv in (["search", str(tiny_space), "--out", str(afile / "sub")],
                 ["scaling", str(tiny_space), "--num-budgets", "2", "--out", str(afile / "sub")]):
        assert "afile" in _bad(capsys, argv + ["--no-progress"] if argv[0] == "search" else argv)
    err = _bad(capsys, ["search", str(tiny_space), "--out", "/proc/kunlun-x/study", "--no-progress"])
    assert "--out" in err and "/proc/kunlun-x" in err
    assert not (tmp_path / "results").exists()


def test_export_output(tmp_path, capsys, hand_study):
    study = hand_study(tmp_path / "s")
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "-o" in _bad(capsys, ["export", str(study), "--trial", "0", "-o", str(afile / "x.yaml")])
    assert "-o" in _bad(capsys, ["export", str(study), "--trial", "0", "-o", str(tmp_path)])
    assert "-o" in _bad(capsys, ["export", str(study), "--trial", "0", "-o", "/proc/kunlun-x/x.yaml"])
    (study / "configs").write_text("a file where the default output folder goes")
    assert "configs" in _bad(capsys, ["export", str(study), "--trial", "0"])


def test_pareto_without_a_complete_trial_exits_2(tmp_path, capsys, hand_study):
    study = hand_study(tmp_path / "s", feasible=False)
    err = _bad(capsys, ["pareto", str(study)], study / "pareto.png", study / "pareto.html")
    assert "no complete feasible trial" in err and "2 failed" in err


def test_pareto_table_units_windows_base_rate_and_counts_once(tmp_path, capsys, hand_study):
    study = hand_study(tmp_path / "s")
    assert main(["pareto", str(study), "--no-plots"]) == 0
    out, err = capsys.readouterr()
    assert "predicted B200 us/ex" in out and "predicted MFU %" in out and "None" not in out
    assert "click=full,impression=4" in out and "25" in out  # MFU 0.25 -> 25 %
    assert "1.02*" in out and "worse than predicting the base rate" in out
    assert out.count("2 feasible") == 1 and "feasible" not in err


@pytest.mark.parametrize("fmt", ["json"])
def test_pareto_json_windows_and_mfu(tmp_path, capsys, fmt, hand_study):
    import json

    study = hand_study(tmp_path / "s")
    assert main(["pareto", str(study), "--format", fmt, "--no-plots"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["predicted_mfu"] for r in rows} == {25.0}
    assert all(r["windows"] == {"click": "full", "impression": 4} for r in rows)
