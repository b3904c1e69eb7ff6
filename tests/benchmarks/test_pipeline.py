"""benchmarks/pipeline.sh, the README's search -> export --reeval -> train --split eval --seeds, on tiny synthetic
data: every step's output is there and sound, and a rerun resumes instead of searching again."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_selection import TINY

from kunlun.model.config import KunlunConfig
from kunlun.search.store import load_study

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pipeline.sh"


def _run(space: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUNLUN": str(Path(sys.executable).parent / "kunlun"), "TRIALS": "2", "WORKERS": "1",
           "REEVAL": "1", "TOP": "1", "SEEDS": "0 1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(["bash", str(SCRIPT), str(space), "synthetic", str(out)], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_pipeline_exports_the_reevaluated_best_and_evaluates_it_per_seed(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY + "split: inner\n")  # chosen on the inner split, as the real-data spaces
    out = tmp_path / "run"
    done = _run(space, out)
    assert done.returncode == 0, done.stderr[-2000:]

    study = load_study(out / "study")
    complete = [t for t in study.trials if t.user_attrs.get("ne") is not None]
    assert len(complete) == 2
    chosen = KunlunConfig.load(out / "chosen.yaml")
    assert chosen.train.split == "inner"  # as searched: the eval step overrides it with --split eval
    result = json.loads((out / "eval.json").read_text())
    assert [r["seed"] for r in result["runs"]] == [0, 1]
    assert all(math.isfinite(r["ne"]) for r in result["runs"])
    assert result["ne_mean"] == pytest.approx(sum(r["ne"] for r in result["runs"]) / 2)
    assert [line.split()[0] for line in (out / "times.txt").read_text().splitlines()] == ["search", "export", "eval"]

    again = _run(space, out)  # resumes: the study already holds its trials, the re-evaluations are cached
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(load_study(out / "study").trials) == len(study.trials)
    assert KunlunConfig.load(out / "chosen.yaml") == chosen


def test_pipeline_usage_error_exits_2(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), "only-one-arg"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage" in done.stderr
