"""`count_flops(config, batch_or_workload) -> FlopReport`: the analytic count, walking the same plan as the model.

For a `Batch` the count is exact for that batch (lengths clipped at each stream's max_len, as the model does);
for a `WorkloadConfig` (default: the config's own) it is the exact expectation over the length histograms at the
workload's batch size. Tests hold it equal to FlopCounterMode within 1%.
"""

from __future__ import annotations

from kunlun.model.batch import Batch
from kunlun.model.config import KunlunConfig, WorkloadConfig
from kunlun.model.context import ContextTokens, GatedSummary
from kunlun.model.flops import FlopReport, OpRecord, StreamStats
from kunlun.model.head import Head
from kunlun.model.hsp import SeedPooling
from kunlun.model.kvgen import KvGen, kvgen_params
from kunlun.model.pffn import PersonalizedFFN
from kunlun.model.plan import Site, plan
from kunlun.model.stream import StreamEmbedding
from kunlun.model.swa import WindowedSelfAttention
from kunlun.model.wukong import WukongExperts
from kunlun.model.yamlio import ConfigError


def stream_stats(config: KunlunConfig, data: Batch | WorkloadConfig | None) -> tuple[float, dict[str, StreamStats]]:
    m = config.model
    if isinstance(data, Batch):
        stats = {n: StreamStats.from_lengths(data.streams[n].lengths, m.stream(n).max_len) for n in config.stream_names}
        return float(data.size), stats
    workload = config.workload if data is None else data
    examples = float(workload.batch_size)
    stats = {}
    for n in config.stream_names:
        if n not in workload.streams:
            raise ConfigError(f"workload.streams.{n}", "missing: every schema stream needs a length histogram")
        stats[n] = StreamStats.from_histogram(workload.streams[n].normalised(), examples, m.stream(n).max_len)
    return examples, stats


def _tagged(ops: list[OpRecord], stream: str | None) -> list[OpRecord]:
    for op in ops:
        op.stream = stream
    return ops


def _site_flops(config: KunlunConfig, site: Site, examples: float, streams: dict[str, StreamStats]) -> list[OpRecord]:
    m, c, key = config.model, site.component, site.key
    n_ctx = config.num_context_tokens
    if c == "summary":
        return GatedSummary.flops(key, examples, n_ctx, m.summary_tokens, m.d_model)
    if c == "interaction":
        return WukongExperts.flops(key, examples, config.num_interaction_tokens, n_ctx, m.d_model, m.interaction)
    s, st = m.stream(site.stream), streams[site.stream]
    if c == "kvgen":
        return KvGen.flops(key, m, s, examples)
    if c == "pffn":
        return PersonalizedFFN.flops(key, s, st)
    if c == "swa":
        return WindowedSelfAttention.flops(key, s, site.window, st)
    return SeedPooling.flops(key, s, m.d_model, st)


def _site_params(config: KunlunConfig, site: Site) -> int:
    m, c = config.model, site.component
    n_ctx = config.num_context_tokens
    if c == "summary":
        return GatedSummary.params(n_ctx, m.summary_tokens, m.d_model)
    if c == "interaction":
        return WukongExperts.params(config.num_interaction_tokens, n_ctx, m.d_model, m.interaction)
    s = m.stream(site.stream)
    if c == "kvgen":
        return kvgen_params(m, s)
    if c == "pffn":
        return PersonalizedFFN.params(s)
    if c == "swa":
        return WindowedSelfAttention.params(s)
    return SeedPooling.params(s, m.d_model)


def flop_ops(config: KunlunConfig, examples: float, streams: dict[str, StreamStats]) -> list[OpRecord]:
    ops = ContextTokens.flops(config, examples)
    for name in config.sequence_streams:
        ops += _tagged(StreamEmbedding.flops(config, name, streams[name]), name)
    for site in plan(config):
        ops += _tagged(_site_flops(config, site, examples, streams), site.stream)
    return ops + Head.flops(config, examples)


def param_counts(config: KunlunConfig) -> dict[str, dict[str, int]]:
    out = {"ctx.tokens": ContextTokens.params(config)}
    for name in config.sequence_streams:
        out[f"{name}.embed"] = StreamEmbedding.params(config, name)
    out.update({site.key: {"dense": _site_params(config, site), "sparse": 0} for site in plan(config)})
    out["head"] = {"dense": Head.params(config), "sparse": 0}
    return out


def count_flops(config: KunlunConfig, batch_or_workload: Batch | WorkloadConfig | None = None) -> FlopReport:
    examples, streams = stream_stats(config, batch_or_workload)
    ops = flop_ops(config, examples, streams)
    return FlopReport.from_ops(ops, examples, param_counts(config), tuple(config.sequence_streams))
