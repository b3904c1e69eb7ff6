"""The GPU trial path on the CPU, with tiny shapes: batches gathered on the device from a dataset copied there once
(data/device_data.py), the timed window of `fit`, and `--price measured` from the trial to the front."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kunlun.data.device_data import on_device
from kunlun.data.loader import EvalLoader, TrainLoader
from kunlun.data.vocab import OOV
from kunlun.model.config import KunlunConfig
from kunlun.model.kunlun import KunlunModel
from kunlun.model.train import fit
from kunlun.search.cli import main
from kunlun.search.front import groups
from kunlun.space.data import open_cached


@pytest.fixture(scope="module")
def setup():
    config = KunlunConfig.preset("kunlun-small")
    t = config.train
    data = open_cached(t.data, t.data_seed, 3000, t.split)
    max_lens = {n: config.model.stream(n).max_len for n in config.stream_names}
    return config, data, max_lens


def _same(a, b) -> None:
    for name in ("sparse", "dense", "request_time", "labels"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.streams.keys() == b.streams.keys()
    for name, s in a.streams.items():
        o = b.streams[name]
        for field in ("values", "offsets", "timestamps"):
            assert torch.equal(getattr(s, field), getattr(o, field)), (name, field)
        assert s.side.keys() == o.side.keys() and all(torch.equal(v, o.side[k]) for k, v in s.side.items())


def test_device_batches_are_the_host_loaders(setup) -> None:
    """Same examples, order, truncation and jagged layout as the host loaders (OOV replacement off)."""
    _, data, max_lens = setup
    bounds = {n: 5 for n in max_lens}  # shorter than most histories: the truncation to the latest events is exercised
    host = TrainLoader(data, bounds, 96, 500, seed=3, oov_rate=0.0)
    evaluation = EvalLoader(data, bounds, 700)
    train, ev = on_device(host, evaluation, "cpu")
    assert train.examples == 500 and len(train) == 6  # five full batches and one cut to land on 500
    pairs = list(zip(host, train, strict=True))
    assert any(int(b.streams[n].lengths.max()) == 5 for _, b in pairs for n in b.streams)
    for a, b in pairs:
        _same(a, b)
    for _ in range(2):  # re-iterable, the same batches each pass
        for a, b in zip(evaluation, ev, strict=True):
            _same(a, b)


def test_device_oov_replacement_draws_at_the_rate_and_leaves_the_data(setup) -> None:
    _, data, max_lens = setup
    train, _ = on_device(TrainLoader(data, max_lens, 256, 2048, seed=0, oov_rate=0.3),
                         EvalLoader(data, max_lens, 1024), "cpu")
    before = {n: v.clone() for n, (v, _, _) in train.data.streams.items()}
    sparse_before = train.data.sparse.clone()
    first = list(train)
    values = torch.cat([s.values for b in first for s in b.streams.values()])
    sparse = torch.cat([b.sparse.flatten() for b in first])
    # 0.3 of the ids become OOV, plus the ids that were OOV already (rare in the synthetic data)
    assert 0.27 < float((values == OOV).double().mean()) < 0.36
    assert 0.27 < float((sparse == OOV).double().mean()) < 0.36
    assert all(torch.equal(v, train.data.streams[n][0]) for n, v in before.items())
    assert torch.equal(sparse_before, train.data.sparse)
    again = list(train)  # the same seed: the same draw each pass
    assert all(torch.equal(a.sparse, b.sparse) for a, b in zip(first, again))


def test_fit_times_the_second_half_of_training(setup) -> None:
    config, data, _ = setup
    bounds = {n: 8 for n in config.stream_names}
    evaluation = EvalLoader(data, bounds, 256, index=data.eval_index[:256])
    train, ev = on_device(TrainLoader(data, bounds, 64, 256, seed=1), evaluation, "cpu")
    torch.manual_seed(0)
    result = fit(KunlunModel(config), train, ev, eval_every=128, device="cpu", progress=False)
    assert result.examples == 256 and result.timed_examples == 128
    assert 0 < result.timed_seconds < result.train_seconds
    assert result.timed_us_per_example == pytest.approx(1e6 * result.timed_seconds / 128)
    assert len(result.curve) == 2 and np.isfinite(result.metrics["ne"])


def _rows(out: Path, capsys: pytest.CaptureFixture) -> list[dict]:
    capsys.readouterr()
    assert main(["pareto", str(out), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_price_measured_from_trial_to_front(tiny_space: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole GPU trial path on the CPU (device loaders forced on): every trial records its measured time, labelled
    with the device; a resumed study keeps measuring without the flag; the front's x axis is the measured time."""
    monkeypatch.setenv("KUNLUN_DEVICE_DATA", "on")
    out = tmp_path / "study"
    assert main(["search", str(tiny_space), "--trials", "1", "--out", str(out), "--price", "measured",
                 "--no-progress"]) == 0
    assert main(["search", str(tiny_space), "--trials", "2", "--out", str(out), "--resume", "--no-progress"]) == 0
    rows = _rows(out, capsys)
    assert rows and all(row["measured_device"] == "cpu" and row["measured_us_per_example"] > 0 for row in rows)
    assert all(row["measured_mfu"] is None for row in rows)  # no peak is known for a CPU
    assert [g.x_axis for g in groups(out)] == ["measured_us_per_example"] * len(groups(out))
    trials = list(csv.DictReader((out / "trials.csv").open()))
    assert len(trials) == 2 and all(float(t["measured_us_per_example"]) > 0 for t in trials)
    assert "us/example on cpu" in (out / "trials" / "1" / "log.txt").read_text()  # the resumed trial measured too


def test_predicted_price_records_no_measurement(tiny_space: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "study"
    assert main(["search", str(tiny_space), "--trials", "1", "--out", str(out), "--no-progress"]) == 0
    row = _rows(out, capsys)[0]
    assert row["measured_us_per_example"] is None and row["b200_us_per_example"] > 0
    assert [g.x_axis for g in groups(out)] == ["b200_us_per_example"]


def test_bad_device_data_choice_is_bad_input(tiny_space: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUNLUN_DEVICE_DATA", "yes")
    assert main(["search", str(tiny_space), "--trials", "1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "KUNLUN_DEVICE_DATA" in err and "auto, on, off" in err
    assert not (tmp_path / "s").exists()
