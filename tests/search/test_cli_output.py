"""Issue 20, items 7 and 8: what the commands print. `kunlun --version`; `--dry-run` has a bar and says it ignores
--trials; `kunlun train` shows an evaluation bar and states training and evaluation times apart."""

import json
import subprocess
import sys

from kunlun.search.cli import main


def test_version(capsys):
    from importlib.metadata import version

    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert capsys.readouterr().out.strip() == f"kunlun {version('kunlun-search')}"


def test_dry_run_says_it_ignores_trials_and_has_a_bar(tiny_space, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["search", str(tiny_space), "--dry-run", "--samples", "3", "--trials", "7"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["samples"] == 3
    assert "--trials 7 is ignored" in err and "dry run" in err  # the bar's label


def test_train_states_training_and_evaluation_times_apart(tmp_path):
    p = subprocess.run([sys.executable, "-m", "kunlun.search.cli", "train", "kunlun-small", "--examples", "512"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "evaluating" in p.stderr  # the evaluation's own bar
    assert "training " in p.stdout and "evaluation " in p.stdout and " in " not in p.stdout.split(";")[1]
    p = subprocess.run([sys.executable, "-m", "kunlun.search.cli", "train", "kunlun-small", "--examples", "512",
                        "--json"], capture_output=True, text=True, timeout=300)
    report = json.loads(p.stdout)
    assert abs(report["train_seconds"] + report["eval_seconds"] - report["seconds"]) < 1e-6
