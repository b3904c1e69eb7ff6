"""The one training path (search/training.py): evaluations and their hook leave the run alone, `kunlun train --json`
is its report, and the NaN fault's hook reaches the loss."""

import json

import pytest

from kunlun.model.config import KunlunConfig
from kunlun.model.train import NonFiniteLossError
from kunlun.search.cli import main
from kunlun.search.faults import poison_loss
from kunlun.search.training import train_and_evaluate, training_data


def _tiny(examples: int = 512) -> tuple[KunlunConfig, object]:
    config = KunlunConfig.preset("kunlun-small")
    config.train.data_examples, config.train.examples, config.train.batch_size = 1500, examples, 128
    config.train.eval_batch_size = 512
    data = training_data(config)
    return config.with_schema(data.schema, data.workload), data


def test_evaluations_do_not_change_the_run_and_train_reports_it(tmp_path, capsys):
    config, data = _tiny()
    seen = []
    evaluated = train_and_evaluate(config, data, seen.append, every=256)
    final_only = train_and_evaluate(config, data, every=0)
    assert [p.examples for p in seen] == [256, 512] and evaluated["device"] == "cpu"
    assert evaluated["ne"] == final_only["ne"] and len(final_only["curve"]) == 1
    config.to_yaml(tmp_path / "tiny.yaml")
    assert main(["train", str(tmp_path / "tiny.yaml"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ne"] == pytest.approx(final_only["ne"])
    assert list(report) == [k for k in final_only if k not in ("timed_us_per_example", "device")]


def test_the_nan_fault_hook_poisons_the_loss():
    config, data = _tiny(256)  # two steps: the loss turns NaN in the second
    with pytest.raises(NonFiniteLossError):
        train_and_evaluate(config, data, prepare=poison_loss)


def test_epochs_decide_the_examples_on_each_split_and_an_explicit_count_wins(tmp_path, capsys):
    config, data = _tiny()
    config.train.epochs = 0.5
    n_train = len(data.train_index)
    report = train_and_evaluate(config, data, every=0)
    assert report["examples"] == round(0.5 * n_train) != config.train.examples
    assert report["epochs"] == pytest.approx(0.5, abs=1 / n_train)
    config.to_yaml(tmp_path / "tiny.yaml")
    assert main(["train", str(tmp_path / "tiny.yaml"), "--split", "inner", "--json"]) == 0
    inner = json.loads(capsys.readouterr().out)
    assert inner["epochs"] == pytest.approx(0.5, abs=1e-3) and inner["examples"] < report["examples"]
    assert main(["train", str(tmp_path / "tiny.yaml"), "--examples", "300", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 300


@pytest.mark.parametrize("epochs", [0.0, -1.0])
def test_epochs_must_be_positive(epochs):
    from kunlun.model.config import TrainConfig
    from kunlun.model.yamlio import ConfigError

    with pytest.raises(ConfigError, match=r"train\.epochs"):
        TrainConfig(epochs=epochs).check("train")
