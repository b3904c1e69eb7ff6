"""Shapes, gradients and parameter formulas of every module; the whole model's keys in the profiler."""

from __future__ import annotations

import copy

import pytest
import torch

from kunlun.data import synthetic_batch
from kunlun.model import KunlunConfig, KunlunModel, count_flops
from kunlun.model.batch import JaggedStream
from kunlun.model.config import ModelConfig, StreamConfig
from kunlun.model.context import ContextTokens, GatedSummary
from kunlun.model.head import Head
from kunlun.model.hsp import SeedPooling, SumKronLinear
from kunlun.model.kvgen import KvGen, kvgen_params
from kunlun.model.pffn import PersonalizedFFN
from kunlun.model.stream import (
    EXACT_RANKS,
    RECENCY_BUCKETS,
    TIME_BUCKETS,
    StreamEmbedding,
    recency_bucket,
    time_bucket,
    truncate,
)
from kunlun.model.swa import WindowedSelfAttention
from kunlun.model.wukong import WukongExperts, WukongLayer

B = 5


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def jagged(lengths: list[int], d: int, requires_grad: bool = True):
    offsets = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int64)
    s = torch.randn(int(offsets[-1]), d, requires_grad=requires_grad)
    return s, offsets


def assert_all_grads(module: torch.nn.Module) -> None:
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.fixture(scope="module")
def small() -> KunlunConfig:
    return KunlunConfig.preset("kunlun-small")


def test_context_tokens(small):
    batch = synthetic_batch(small, B, 0)
    module = ContextTokens(small)
    x = module(batch)
    assert x.shape == (B, small.num_context_tokens, small.model.d_model)
    x.sum().backward()
    assert n_params(module) == sum(ContextTokens.params(small).values())


def test_wukong_context_tokens_pool_streams():
    config = KunlunConfig.preset("wukong-small")
    module = ContextTokens(config)
    x = module(synthetic_batch(config, B, 0))
    assert x.shape == (B, len(config.schema.sparse) + 1 + len(config.schema.streams), config.model.d_model)
    x.sum().backward()
    assert_all_grads(module.pooled)


def test_gated_summary():
    module = GatedSummary(7, 3, 16)
    x = torch.randn(B, 7, 16, requires_grad=True)
    y = module(x)
    assert y.shape == (B, 3, 16)
    y.sum().backward()
    assert_all_grads(module)
    assert n_params(module) == GatedSummary.params(7, 3, 16)


def test_truncate_keeps_most_recent():
    stream = JaggedStream(torch.arange(9), torch.tensor([0, 2, 2, 9]), torch.arange(9) * 10,
                          {"cat": torch.arange(9) + 100})
    out = truncate(stream, 3)
    assert out.offsets.tolist() == [0, 2, 2, 5]
    assert out.values.tolist() == [0, 1, 6, 7, 8]
    assert out.timestamps.tolist() == [0, 10, 60, 70, 80]
    assert out.side["cat"].tolist() == [100, 101, 106, 107, 108]


def _embed_args(stream: JaggedStream, request_time: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per token: gap to the request, position in its example, its example's length (the model's arguments)."""
    lengths = stream.lengths
    batch = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
    return (request_time[batch] - stream.timestamps, torch.arange(batch.numel()) - stream.offsets[batch],
            lengths[batch])


def test_stream_embedding(small):
    batch = synthetic_batch(small, B, 0)
    shared = ContextTokens(small).shared_for(small, "click")
    assert shared  # the presets share item and category with the context
    assert small.model.time_embedding and small.model.recency_embedding  # and add the gap and rank embeddings
    module = StreamEmbedding(small, "click", shared)
    stream = batch.streams["click"]
    s = module(stream, *_embed_args(stream, batch.request_time))
    assert s.shape == (stream.values.numel(), small.model.stream("click").d)
    assert n_params(module) == sum(StreamEmbedding.params(small, "click").values())  # shared: not its own
    with pytest.raises(ValueError, match="share_embeddings"):
        StreamEmbedding(small, "click")


def test_model_passes_each_stream_its_gaps_and_positions(small):
    """The model hands every stream embedding the gap to the request, the position within the example and the
    example's length, of the events it keeps: a history longer than `max_len` keeps its most recent events,
    counted from 0."""
    config = copy.deepcopy(small)
    config.model.streams["click"].max_len = 2  # shorter than the synthetic histories: truncation happens
    model = KunlunModel(config)
    batch = synthetic_batch(config, B, 0)
    seen = {}
    hooks = [embed.register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(name, args))
             for name, embed in model.embed.items()]
    model(batch)
    for h in hooks:
        h.remove()
    assert set(seen) == set(config.stream_names)
    for name, (stream, request_gap, position, length) in seen.items():
        raw = batch.streams[name]
        bound = config.model.stream(name).max_len
        kept, gaps, positions, lengths = [], [], [], []
        for b in range(B):
            ts = raw.timestamps[raw.offsets[b]:raw.offsets[b + 1]][-bound:]
            kept += ts.tolist()
            gaps += (batch.request_time[b] - ts).tolist()
            positions += list(range(len(ts)))
            lengths += [len(ts)] * len(ts)
        assert stream.timestamps.tolist() == kept, name
        assert request_gap.tolist() == gaps and position.tolist() == positions, name
        assert length.tolist() == lengths, name
    assert int(batch.streams["click"].lengths.max()) > 2


def test_time_bucket_half_octaves():
    gaps = torch.tensor([-5, 0, 1, 2, 3, 59, 60, 3600, 86400, 2**31, 2**40])
    buckets = time_bucket(gaps)
    assert buckets[:4].tolist() == [0, 0, 2, 3]  # log2(1 + gap) * 2, floored; negative gaps clamp to 0
    assert (buckets.diff() >= 0).all()
    assert buckets[-1] == TIME_BUCKETS - 1 and buckets[-2] == TIME_BUCKETS - 2  # 2^31 s: 62; beyond: the last row
    assert len({int(b) for b in time_bucket(torch.tensor([60, 3600, 86400]))}) == 3  # minute, hour, day apart


def test_time_embedding_reads_gaps_only(small):
    """Tokens change with the gaps to the request and to the previous event and with nothing else of time; the
    first event of each example reads the first-event row, whatever the previous example's last event was."""
    torch.manual_seed(0)
    config = copy.deepcopy(small)
    config.model.recency_embedding = False  # the gap rows alone
    module = StreamEmbedding(config, "click", ContextTokens(config).shared_for(config, "click"))
    values = torch.tensor([1, 2, 3, 4])
    offsets = torch.tensor([0, 2, 4])
    side = {k: torch.zeros(4, dtype=torch.int64) for k in config.schema.streams["click"].side}
    ts = torch.tensor([100, 160, 100, 3700])
    request = torch.tensor([200, 7300])
    stream = JaggedStream(values, offsets, ts, side)
    out = module(stream, *_embed_args(stream, request))
    shifted = JaggedStream(values, offsets, ts + 1000, side)
    assert torch.equal(module(shifted, *_embed_args(shifted, request + 1000)), out)  # same gaps, same tokens
    base = module.proj(module.tables(stream))
    request_rows = module.request_gap(time_bucket(request[[0, 0, 1, 1]] - ts))
    first = torch.tensor(TIME_BUCKETS)
    previous_rows = module.previous_gap(torch.stack([first, time_bucket(torch.tensor(60)),
                                                     first, time_bucket(torch.tensor(3600))]))
    torch.testing.assert_close(out, base + request_rows + previous_rows)
    later = module(stream, *_embed_args(stream, request + 86400))
    assert not torch.allclose(later, out)  # a day later the events are older: other rows


def test_recency_bucket_exact_then_half_octaves():
    ranks = torch.arange(-1, 10_000)
    buckets = recency_bucket(ranks)
    assert buckets[1:EXACT_RANKS + 1].tolist() == list(range(EXACT_RANKS))  # the last 16 events: one row each
    assert buckets[0] == 0 and (buckets.diff() >= 0).all()
    assert recency_bucket(torch.tensor([16, 22, 23, 31, 32])).tolist() == [16, 16, 17, 17, 18]  # 16 * 2^(k/2)
    assert buckets[-1] == RECENCY_BUCKETS - 1 and int(buckets.max()) == RECENCY_BUCKETS - 1


def test_recency_embedding_reads_ranks_from_the_latest_event(small):
    """Each token adds the row of its rank counted back from its example's latest kept event, so the latest event
    of a long and of a short history read the same row; without the flag no rank row is added."""
    torch.manual_seed(0)
    config = copy.deepcopy(small)
    config.model.time_embedding = False  # the rank rows alone
    module = StreamEmbedding(config, "click", ContextTokens(config).shared_for(config, "click"))
    values = torch.arange(1, 6)
    offsets = torch.tensor([0, 3, 3, 5])  # lengths 3, 0, 2
    side = {k: torch.zeros(5, dtype=torch.int64) for k in config.schema.streams["click"].side}
    stream = JaggedStream(values, offsets, torch.arange(5) * 10, side)
    out = module(stream, *_embed_args(stream, torch.tensor([100, 100, 100])))
    base = module.proj(module.tables(stream))
    torch.testing.assert_close(out, base + module.recency(torch.tensor([2, 1, 0, 1, 0])))
    config.model.recency_embedding = False
    plain = StreamEmbedding(config, "click", ContextTokens(config).shared_for(config, "click"))
    assert plain.recency is None
    torch.testing.assert_close(plain(stream, *_embed_args(stream, torch.tensor([100, 100, 100]))),
                               plain.proj(plain.tables(stream)))
    assert n_params(module) - n_params(plain) == RECENCY_BUCKETS * config.model.stream("click").d


@pytest.mark.parametrize("kind", ["tokens", "lowrank", "interformer"])
@pytest.mark.parametrize("kv_len", [4, 6])
def test_kvgen(kind, kv_len):
    model = ModelConfig(d_model=16, summary_tokens=4)
    model.kvgen.kind = kind
    stream = StreamConfig(d=8, heads=2, kv_len=kv_len)
    module = KvGen(model, stream)
    x_sum = torch.randn(B, 4, 16, requires_grad=True)
    k, v = module(x_sum)
    assert k.shape == v.shape == (B, kv_len, 2, 4)
    (k.sum() + v.sum()).backward()
    assert_all_grads(module)
    assert n_params(module) == kvgen_params(model, stream)


def test_personalized_ffn_gradients_reach_generated_weights():
    stream = StreamConfig(d=8, heads=2, kv_len=3)
    module = PersonalizedFFN(stream)
    s, offsets = jagged([0, 1, 4, 2, 7], 8)
    k = torch.randn(B, 3, 2, 4, requires_grad=True)
    v = torch.randn(B, 3, 2, 4, requires_grad=True)
    out = module(s, offsets, 7, k, v)
    assert out.shape == s.shape
    out.square().sum().backward()
    assert k.grad.abs().sum() > 0 and v.grad.abs().sum() > 0 and s.grad.abs().sum() > 0
    assert_all_grads(module)
    assert n_params(module) == PersonalizedFFN.params(stream)


@pytest.mark.parametrize("activation", ["silu", "softmax"])
def test_windowed_self_attention_is_local(activation):
    torch.manual_seed(0)
    stream = StreamConfig(d=8, heads=2, swa_activation=activation)
    module = WindowedSelfAttention(stream, window=1, rote=ModelConfig().rote)
    s, offsets = jagged([6], 8, requires_grad=False)
    position = torch.arange(6)
    args = (offsets, 6, torch.arange(6) * 100.0, position, torch.full((6,), 6))
    out = module(s, *args)
    s2 = s.clone()
    s2[5] += torch.randn(8) * 3  # outside the windows (|i - j| <= 1) of queries 0-3
    out2 = module(s2, *args)
    assert torch.allclose(out[:4], out2[:4], atol=1e-6)
    assert not torch.allclose(out[4], out2[4])
    assert n_params(module) == WindowedSelfAttention.params(stream)


def test_sum_kron_linear_is_the_sum_of_kronecker_terms():
    module = SumKronLinear(n_seed=5, n_tok=2, d=3, rank=4)
    h = torch.randn(B, 5, 3)
    z = module.z.view(5, 4, 2)
    expected = sum(z[:, i, :].T @ h @ module.w[i] for i in range(4))
    assert torch.allclose(module(h), expected, atol=1e-5)
    assert n_params(module) == SumKronLinear.params(5, 2, 3, 4)


@pytest.mark.parametrize("pooling", ["hsp", "pma"])
def test_seed_pooling(pooling):
    stream = StreamConfig(d=8, heads=2, seeds=6, summary_tokens=3, kron_rank=2, pooling=pooling)
    module = SeedPooling(stream, d_model=12)
    s, offsets = jagged([0, 1, 4, 2, 9], 8)
    h = module(s, offsets, 9)
    assert h.shape == (B, 3, 12)
    assert torch.isfinite(h).all()  # an empty stream still summarises to finite values
    h.sum().backward()
    assert_all_grads(module)
    assert n_params(module) == SeedPooling.params(stream, 12)


@pytest.mark.parametrize("activation", ["softmax", "silu", "relu"])
def test_seed_pooling_normalises_once(activation):
    """A stream of one event repeated n times summarises like the single event: softmax normalises over the keys,
    other activations are divided by the length; never both (which would shrink long histories by 1/n)."""
    torch.manual_seed(0)
    module = SeedPooling(StreamConfig(d=8, heads=2, seeds=4, summary_tokens=2, hsp_activation=activation), 12)
    event = torch.randn(1, 8)
    one = module(event, torch.tensor([0, 1]), 1)
    many = module(event.repeat(7, 1), torch.tensor([0, 7]), 7)
    torch.testing.assert_close(many, one)


@pytest.mark.parametrize(("n_in", "n_out", "experts", "layers"), [(9, 5, 2, 1), (5, 5, 1, 2), (3, 1, 1, 1)])
def test_wukong_experts(n_in, n_out, experts, layers):
    cfg = ModelConfig().interaction
    cfg.experts, cfg.layers = experts, layers
    module = WukongExperts(n_in, n_out, 8, cfg)
    x = torch.randn(B, n_in, 8, requires_grad=True)
    y = module(x)
    assert y.shape == (B, n_out, 8)
    y.sum().backward()
    assert_all_grads(module)
    assert n_params(module) == WukongExperts.params(n_in, n_out, 8, cfg)
    assert n_params(WukongLayer(4, 3, 8, 2, 16)) == WukongLayer.params(4, 3, 8, 2, 16)


def test_head(small):
    module = Head(small)
    x = torch.randn(B, small.num_context_tokens, small.model.d_model)
    summaries = [torch.randn(B, small.model.stream(n).summary_tokens, small.model.d_model) for n in small.stream_names]
    assert module(x, summaries).shape == (B, small.num_tasks)
    assert n_params(module) == Head.params(small)


@pytest.mark.parametrize("name", ["kunlun-small", "interformer-small", "wukong-small"])
def test_model_trains_every_parameter(name):
    config = KunlunConfig.preset(name)
    torch.manual_seed(0)
    model = KunlunModel(config)
    batch = synthetic_batch(config, 16, 1)
    logits = model(batch)
    assert logits.shape == (16, config.num_tasks)
    loss = model.loss(batch)
    assert torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname


def test_every_flop_key_is_a_profiler_range(small):
    model = KunlunModel(small)
    batch = synthetic_batch(small, 8, 0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model(batch)
    names = {e.name for e in prof.events()}
    assert set(count_flops(small, batch).by_module()) <= names
