"""Analytic FLOPs equal FlopCounterMode (forward and training) on every preset and on random valid configs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from torch.utils.flop_counter import FlopCounterMode

from kunlun.data import synthetic_batch
from kunlun.model import KunlunConfig, KunlunModel, count_flops, preset_names
from kunlun.model.config import LengthHistogram, WorkloadConfig
from kunlun.model.flops import StreamStats
from kunlun.model.hsp import SeedPooling

from .strategies import configs

TOLERANCE = 0.01  # the contract: analytic within 1% of FlopCounterMode


def measured(model: KunlunModel, batch) -> tuple[int, int, int]:
    """Forward, forward under no_grad (inference counting), and training FLOPs as torch counts them."""
    with FlopCounterMode(display=False) as fwd:
        model(batch)
    with torch.no_grad(), FlopCounterMode(display=False) as inference:
        model(batch)
    with FlopCounterMode(display=False) as train:
        model.loss(batch).backward()
    return fwd.get_total_flops(), inference.get_total_flops(), train.get_total_flops()


def assert_matches(config: KunlunConfig, batch_size: int = 8, seed: int = 0) -> None:
    torch.manual_seed(seed)
    model = KunlunModel(config)
    batch = synthetic_batch(config, batch_size, seed)
    fwd, inference, train = measured(model, batch)
    report = count_flops(config, batch)
    assert report.forward == pytest.approx(fwd, rel=TOLERANCE)
    assert report.forward == pytest.approx(inference, rel=TOLERANCE)
    assert report.training == pytest.approx(train, rel=TOLERANCE)
    assert report.params_dense + report.params_sparse == sum(p.numel() for p in model.parameters())
    assert report.params_sparse == sum(p.numel() for p in model.sparse_parameters())


@pytest.mark.parametrize("name", preset_names())
def test_presets_match_flop_counter(name):
    assert_matches(KunlunConfig.preset(name), batch_size=6)


@given(configs())
def test_random_configs_match_flop_counter(config):
    assert_matches(config)


def test_branches_sum_and_keys():
    config = KunlunConfig.preset("kunlun-small")
    report = count_flops(config)
    assert report.sequence + report.context == pytest.approx(report.training)
    assert 0 < report.seq_share < 1
    keys = report.by_module()
    assert {"ctx.tokens", "click.embed", "L0.ctx.summary", "L0.click.kvgen", "L0.click.pffn", "L0.click.hsp",
            "L1.click.swa", "L0.interaction", "head"} <= set(keys)
    wukong = count_flops(KunlunConfig.preset("wukong-small"))
    assert wukong.sequence == 0 and wukong.seq_share == 0


def test_workload_report_is_the_expectation_over_histograms():
    """A batch whose lengths follow the histogram exactly prices like the workload, per example."""
    config = KunlunConfig.preset("kunlun-small")
    hist = {"click": LengthHistogram([0, 3, 70], [1, 2, 1]), "impression": LengthHistogram([5, 12], [1, 1])}
    workload = WorkloadConfig(batch_size=4, streams=hist)
    batch = synthetic_batch(config, 4, 0)
    for name, lengths in {"click": [0, 3, 3, 70], "impression": [5, 12, 5, 12]}.items():
        s = batch.streams[name]
        offsets = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
        n = int(offsets[-1])
        s.values, s.offsets = torch.zeros(n, dtype=torch.int64), offsets
        s.timestamps = torch.zeros(n, dtype=torch.int64)
        s.side = {k: torch.zeros(n, dtype=torch.int64) for k in s.side}
    expected = count_flops(config, workload)
    exact = count_flops(config, batch)
    assert expected.train_flops_per_example == pytest.approx(exact.train_flops_per_example, rel=1e-12)
    assert expected.forward == pytest.approx(exact.forward, rel=1e-12)


def test_histogram_lengths_are_clipped_at_max_len():
    stats = StreamStats.from_histogram([(10, 0.5), (1000, 0.5)], examples=2, max_len=64)
    assert stats.tokens == pytest.approx(2 * (0.5 * 10 + 0.5 * 64))


def _with_stream(config: KunlunConfig, **changes) -> KunlunConfig:
    out = config.copy()
    for s in out.model.streams.values():
        for k, v in changes.items():
            setattr(s, k, v)
    return out


def test_window_cuts_swa_flops_by_the_pair_formula():
    config = _with_stream(KunlunConfig.preset("kunlun-small"), window=None)
    full = count_flops(config).by_module()["L1.click.swa"]
    windowed_config = _with_stream(config, window=2)
    windowed = count_flops(windowed_config).by_module()["L1.click.swa"]
    s = windowed_config.model.stream("click")
    hist = config.workload.streams["click"].normalised()
    b = config.workload.batch_size
    tokens = b * sum(min(n, s.max_len) * p for n, p in hist)

    def pairs(w):
        return b * sum(p * (min(n, s.max_len) ** 2 if w is None or w >= min(n, s.max_len) - 1
                            else min(n, s.max_len) * (2 * w + 1) - w * (w + 1)) for n, p in hist)

    # only the attention term changes: 4 * d * pairs forward, 3.5x for training
    saved = 3.5 * 4 * s.d * (pairs(None) - pairs(2))
    assert full["training"] - windowed["training"] == pytest.approx(saved, rel=1e-9)
    assert windowed["training"] < full["training"]
    del tokens


def test_compskip_alternate_cuts_flops_as_the_schedule_predicts():
    base = KunlunConfig.preset("kunlun-small")
    none = base.copy()
    none.model.schedule = "none"
    alt, full = count_flops(base), count_flops(none)
    by_alt, by_full = alt.by_module(), full.by_module()
    # alternate drops pffn/kvgen/ctx.summary on odd layers and swa/hsp on even ones (and the dead work after
    # the last hsp): the saving is exactly the sum of the dropped modules.
    dropped = sum(v["training"] for k, v in by_full.items() if k not in by_alt)
    assert full.training - alt.training == pytest.approx(dropped, rel=1e-9)
    assert {"L1.click.pffn", "L0.click.swa", "L1.click.hsp", "L1.ctx.summary"} <= set(by_full) - set(by_alt)


class _CountingPooling(SeedPooling):
    calls = 0

    def forward(self, *args, **kwargs):
        type(self).calls += 1
        return super().forward(*args, **kwargs)


def test_layer_without_hsp_reuses_the_summary(monkeypatch):
    """CompSkip contract: odd layers of `alternate` consume the previous summary and never recompute it."""
    import kunlun.model.kunlun as kunlun_module

    monkeypatch.setattr(kunlun_module, "SeedPooling", _CountingPooling)
    config = KunlunConfig.preset("kunlun-small")  # 3 layers alternate: hsp at layers 0 and 2, per stream
    model = KunlunModel(config)
    _CountingPooling.calls = 0
    model(synthetic_batch(config, 6, 0))
    assert _CountingPooling.calls == 2 * len(config.stream_names)
    assert set(model.hsp) == {f"{layer}_{s}" for layer in (0, 2) for s in config.stream_names}


@pytest.mark.parametrize("name", ["kunlun-small", "interformer-small", "wukong-small"])
def test_shared_embeddings_match_flop_counter_and_are_one_table(name):
    config = KunlunConfig.preset(name)
    config.model.share_embeddings = True
    assert config.shared_tables("click") == {"item": "item", "category": "category"}
    assert_matches(config, batch_size=6)
    plain = KunlunConfig.preset(name)
    plain.model.share_embeddings = False
    shared_rows = sum(plain.schema.streams[s].vocab + plain.schema.streams[s].side["category"]
                      for s in plain.stream_names)
    saved = count_flops(plain).params_sparse - count_flops(config).params_sparse
    assert saved == shared_rows * plain.model.embedding_dim  # every stream table is gone, none added
    model = KunlunModel(config)
    click = model.ctx_tokens.stream_tables["click"] if name == "wukong-small" else model.embed["click"].tables
    item = list(config.schema.sparse).index("item")
    assert click._table("item") is model.ctx_tokens.tables[item]
    batch = synthetic_batch(config, 4, 0)
    model.loss(batch).backward()
    assert model.ctx_tokens.tables[item].weight.grad is not None


def test_tables_with_different_vocabularies_are_not_shared():
    config = KunlunConfig.preset("kunlun-small")
    config.model.share_embeddings = True
    config.schema.streams["click"].side["category"] += 1
    assert config.shared_tables("click") == {"item": "item"}
