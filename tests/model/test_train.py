from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from kunlun.data.loader import EvalLoader, TrainLoader
from kunlun.data.synthetic import SyntheticDataset, SyntheticSpec
from kunlun.model.batch import Batch
from kunlun.model.config import KunlunConfig, TrainConfig
from kunlun.model.train import NonFiniteLossError, fit
from kunlun.search.cli import main

SPEC = SyntheticSpec(users=40, items=200, categories=6)


class TinyModel(nn.Module):
    """Candidate category x mean-pooled click-history categories (a dot product), plus a linear context part:
    enough to learn the synthetic data a little."""

    def __init__(self, n_items: int, n_cats: int, scale: float = 1.0):
        super().__init__()
        self.cat = nn.Embedding(n_cats, 8)
        self.hist = nn.Embedding(n_cats, 8)
        self.out = nn.Linear(9, 1)
        self.scale = scale

    def sparse_parameters(self) -> list[nn.Parameter]:
        return [self.cat.weight, self.hist.weight]

    def dense_parameters(self) -> list[nn.Parameter]:
        return list(self.out.parameters())

    def forward(self, batch: Batch) -> torch.Tensor:
        s = batch.streams["click"]
        seg = torch.repeat_interleave(torch.arange(batch.size), s.lengths)
        pooled = torch.zeros(batch.size, 8).index_add_(0, seg, self.hist(s.side["category"]))
        pooled = pooled / s.lengths.clamp(min=1)[:, None]
        cand = self.cat(batch.sparse[:, 2])
        match = (cand * pooled).sum(dim=1, keepdim=True)
        return (match + self.out(torch.cat([cand, batch.dense[:, :1]], dim=1))) * self.scale

    def loss(self, batch: Batch) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(self(batch), batch.labels)


def _run(seed: int, examples: int = 3000, scale: float = 1.0):
    data = SyntheticDataset(SPEC, seed=0, n=4000).dataset()
    torch.manual_seed(seed)
    model = TinyModel(data.schema.streams["click"].vocab, data.schema.sparse["category"], scale)
    train = TrainConfig(lr=1e-2, sparse_lr=5e-2, seed=seed)
    lens = {"click": 16}
    return fit(model, TrainLoader(data, lens, 128, examples, seed), EvalLoader(data, lens, 512),
               eval_every=1000, train=train, tasks=["click"], progress=False)


def test_fit_learns_is_deterministic_and_records_a_curve() -> None:
    a, b = _run(seed=1), _run(seed=1)
    assert a.metrics == b.metrics and a.curve == b.curve
    assert a.metrics["ne"] < 0.99 and a.metrics["auc"] > 0.6
    assert [e for e, _, _ in a.curve] == [1024, 2048, 3000]  # every 1000 examples (batch 128), then the end
    assert a.examples == 3000 and a.examples_per_second > 0


def test_adagrad_option_and_non_finite_loss() -> None:
    data = SyntheticDataset(SPEC, seed=0, n=2000).dataset()
    model = TinyModel(data.schema.streams["click"].vocab, data.schema.sparse["category"], scale=math.inf)
    lens = {"click": 4}
    with pytest.raises(NonFiniteLossError, match="non-finite"):
        fit(model, TrainLoader(data, lens, 64, 256), EvalLoader(data, lens, 256),
            train=TrainConfig(sparse_optimizer="adagrad"), tasks=["click"], progress=False)


def _tiny_config(tmp_path, family: str = "kunlun") -> str:
    config = KunlunConfig.preset(f"{family}-small")
    config.train.data_examples = 1500
    config.train.examples = 256
    config.train.eval_batch_size = 512
    path = tmp_path / "tiny.yaml"
    config.to_yaml(path)
    return str(path)


def test_cli_train_end_to_end(tmp_path, capsys) -> None:
    assert main(["train", _tiny_config(tmp_path), "--examples", "300", "--seed", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)  # exactly one JSON document on stdout
    for key in ("ne", "auc", "logloss", "calibration", "examples", "epochs", "seconds", "examples_per_second",
                "per_task"):
        assert key in out
    assert out["examples"] == 300 and set(out["per_task"]) == {"click"}
    assert np.isfinite(out["ne"]) and 0.0 <= out["auc"] <= 1.0


def test_cli_train_evaluates_on_the_configs_split_unless_told(tmp_path, capsys) -> None:
    path = tmp_path / "inner.yaml"
    config = KunlunConfig.from_yaml(_tiny_config(tmp_path))
    config.train.split = "inner"  # what a search on the inner split exports
    config.to_yaml(path)
    sizes = {}
    for flags in ([], ["--split", "eval"]):
        assert main(["train", str(path), "--examples", "64", "--json", *flags]) == 0
        err = capsys.readouterr().err
        sizes[tuple(flags)] = re.search(r"([\d,]+) train / ([\d,]+) eval examples", err).groups()
    full = SyntheticDataset(None, seed=0, n=1500).dataset()
    assert sizes[("--split", "eval")] == (f"{len(full.train_index):,}", f"{len(full.eval_index):,}")
    assert int(sizes[()][0].replace(",", "")) < len(full.train_index)  # inner: the training split's first 90%


def test_cli_bad_input_exits_2_without_traceback(tmp_path, capsys) -> None:
    assert main(["train", _tiny_config(tmp_path), "--data", "csv:nowhere", "--json"]) == 2
    err = capsys.readouterr()
    assert "unknown data spec" in err.err and "Traceback" not in err.err and err.out == ""
    assert main(["train", "kunlun-small", "--data", f"movielens:{tmp_path}"]) == 2
    assert "no MovieLens ratings" in capsys.readouterr().err


def test_cosine_schedule_decays_to_the_floor_and_constant_stays():
    import torch

    from kunlun.model.config import TrainConfig
    from kunlun.model.train import LearningRate

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    schedule = LearningRate([opt], TrainConfig(lr_schedule="cosine", min_lr_ratio=0.1), total=100)
    seen = []
    for examples in (0, 50, 100, 150):
        schedule.set(examples)
        seen.append(opt.param_groups[0]["lr"])
    assert seen == [1.0, pytest.approx(0.55), pytest.approx(0.1), pytest.approx(0.1)]
    constant = LearningRate([opt], TrainConfig(lr_schedule="constant"), total=100)
    opt.param_groups[0]["lr"] = 0.3
    constant.set(90)
    assert opt.param_groups[0]["lr"] == 0.3


def test_wsd_schedule_holds_then_decays_over_its_last_fraction():
    import torch

    from kunlun.model.config import TrainConfig
    from kunlun.model.train import LearningRate

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    schedule = LearningRate([opt], TrainConfig(lr_schedule="wsd", min_lr_ratio=0.1, decay_fraction=0.4), total=100)
    seen = []
    for examples in (0, 59, 60, 80, 100, 120):
        schedule.set(examples)
        seen.append(opt.param_groups[0]["lr"])
    assert seen == [1.0, 1.0, 1.0, pytest.approx(0.55), pytest.approx(0.1), pytest.approx(0.1)]
    whole = LearningRate([opt], TrainConfig(lr_schedule="wsd", min_lr_ratio=0.1, decay_fraction=1.0), total=100)
    cosine = LearningRate([opt], TrainConfig(lr_schedule="cosine", min_lr_ratio=0.1), total=100)
    for examples in (0, 30, 70, 100):  # decaying over the whole run is the cosine schedule
        whole.set(examples)
        rate = opt.param_groups[0]["lr"]
        cosine.set(examples)
        assert rate == pytest.approx(opt.param_groups[0]["lr"])


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_decay_fraction_outside_its_range_is_a_config_error(fraction):
    from kunlun.model.config import TrainConfig
    from kunlun.model.yamlio import ConfigError

    with pytest.raises(ConfigError, match="decay_fraction"):
        TrainConfig(lr_schedule="wsd", decay_fraction=fraction).check("train")
