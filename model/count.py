"""`count_flops(config, batch_or_workload) -> FlopReport`: the analytic count, walking the same plan as the model.

For a `Batch` the count is exact for that batch (lengths clipped at each stream's max_len, as the model does);
for a `WorkloadConfig` (default: the config's own) it is the exact expectation over the length histograms at the
workload's batch size. Tests hold it equal to FlopCounterMode within 1%.
"""

from __future__ import annotations

from dataclasses import replace

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


def _site_flops(config: KunlunConfig, site: Site, examples: float, streams: dict[str, StreamStats]) -> list[OpRecord]:
    m, key, n_ctx, n_in = config.model, site.key, config.num_context_tokens, config.num_interaction_tokens
    s, st = (m.stream(site.stream), streams[site.stream]) if site.stream else (None, None)
    return {"summary": lambda: GatedSummary.flops(key, examples, n_ctx, m.summary_tokens, m.d_model),
            "interaction": lambda: WukongExperts.flops(key, examples, n_in, n_ctx, m.d_model, m.interaction),
            "kvgen": lambda: KvGen.flops(key, m, s, examples), "pffn": lambda: PersonalizedFFN.flops(key, s, st),
            "swa": lambda: WindowedSelfAttention.flops(key, s, site.window, st),
            "hsp": lambda: SeedPooling.flops(key, s, m.d_model, st)}[site.component]()


def _site_params(config: KunlunConfig, site: Site) -> int:
    m, n_ctx = config.model, config.num_context_tokens
    s = m.stream(site.stream) if site.stream else None
    return {"summary": lambda: GatedSummary.params(n_ctx, m.summary_tokens, m.d_model),
            "interaction": lambda: WukongExperts.params(config.num_interaction_tokens, n_ctx, m.d_model, m.interaction),
            "kvgen": lambda: kvgen_params(m, s), "pffn": lambda: PersonalizedFFN.params(s),
            "swa": lambda: WindowedSelfAttention.params(s),
            "hsp": lambda: SeedPooling.params(s, m.d_model)}[site.component]()


def flop_ops(config: KunlunConfig, examples: float, streams: dict[str, StreamStats]) -> list[OpRecord]:
    ops = ContextTokens.flops(config, examples)
    for name in config.sequence_streams:
        ops += [replace(op, stream=name) for op in StreamEmbedding.flops(config, name, streams[name])]
    for site in plan(config):
        ops += [replace(op, stream=site.stream) for op in _site_flops(config, site, examples, streams)]
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
