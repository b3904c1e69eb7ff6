"""Warm start (issue 6): a study at a larger budget runs the best allocations of a smaller one first."""

from __future__ import annotations

import json

import optuna
import pytest

from kunlun.search.cli import main
from kunlun.search.warmstart import best_allocations
from kunlun.space.space import SearchSpace


def _study(folder):
    info = json.loads((folder / "study.json").read_text())
    return optuna.load_study(study_name=info["name"], storage=info["storage"])


def test_a_larger_budget_starts_from_the_best_smaller_allocations(tiny_space, tmp_path, capsys):
    small, large = tmp_path / "small", tmp_path / "large"
    assert main(["search", str(tiny_space), "--trials", "3", "--out", str(small), "--no-progress"]) == 0
    ranked = sorted((t for t in _study(small).trials if t.user_attrs.get("ne") is not None),
                    key=lambda t: t.user_attrs["ne"])
    assert main(["search", str(tiny_space), "--budget", "4e6", "--trials", "2", "--warm-start", str(small),
                 "--warm-start-top", "2", "--out", str(large), "--no-progress"]) == 0
    assert "warm start: 2 allocation(s)" in capsys.readouterr().err
    first = sorted(_study(large).trials, key=lambda t: t.number)[:2]
    # the same allocations, in the order of their NE at the smaller budget, landed on the larger budget
    assert [t.params for t in first] == [t.params for t in ranked[:2]]
    assert all(t.user_attrs.get("warm_start") for t in first)
    assert all(t.user_attrs["train_flops_per_example"] == pytest.approx(4e6, rel=0.02)
               for t in first if t.user_attrs.get("ne") is not None)


def test_only_allocations_the_new_space_can_sample_are_taken(tiny_space, tmp_path):
    source = tmp_path / "small"
    assert main(["search", str(tiny_space), "--trials", "3", "--out", str(source), "--no-progress"]) == 0
    families = {t.params["family"] for t in _study(source).trials}
    for family in families:
        space = SearchSpace.load(tiny_space, family=family)
        taken = best_allocations([source], space, top=10)
        assert taken and all(p["family"] == family for p in taken)


def test_a_missing_warm_start_folder_exits_2_and_creates_nothing(tiny_space, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["search", str(tiny_space), "--warm-start", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert not out.exists()
    assert "nope" in capsys.readouterr().err
