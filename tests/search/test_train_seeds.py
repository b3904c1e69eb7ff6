"""`kunlun train CONFIG --seeds S ...`: one run per seed, then the mean (the pipeline's last step)."""

import json

import pytest

from kunlun.model.config import KunlunConfig
from kunlun.search.cli import main


def _tiny(tmp_path):
    config = KunlunConfig.preset("kunlun-small")
    config.train.data_examples, config.train.examples, config.train.eval_batch_size = 1500, 64, 512
    path = tmp_path / "tiny.yaml"
    config.to_yaml(path)
    return str(path)


def test_seeds_run_once_each_and_average(tmp_path, capsys):
    path = _tiny(tmp_path)
    assert main(["train", path, "--seeds", "0", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)  # one JSON document
    assert out["seeds"] == [0, 1] and [r["seed"] for r in out["runs"]] == [0, 1]
    nes = [r["ne"] for r in out["runs"]]
    assert nes[0] != nes[1]  # the seed reached the run
    assert out["ne_mean"] == pytest.approx(sum(nes) / 2)
    assert out["ne_ci"][0] < out["ne_mean"] < out["ne_ci"][1]
    assert main(["train", path, "--seed", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ne"] == pytest.approx(nes[1])  # as a run of its own


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own usage errors
        return e.code


@pytest.mark.parametrize("flags, message", [(["--seed", "0", "--seeds", "1"], "not allowed with argument"),
                                            (["--seeds", "0", "-1"], "--seeds: must be >= 0")])
def test_bad_seed_flags_exit_2(tmp_path, capsys, flags, message):
    assert _exit_code(["train", _tiny(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
