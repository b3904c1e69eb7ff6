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
from kunlun.model.plan import plan
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


def flop_ops(config: KunlunConfig, examples: float, streams: dict[str, StreamStats]) -> list[OpRecord]:
    m = config.model
    d, n_ctx = m.d_model, config.num_context_tokens
    ops = ContextTokens.flops(config, examples)
    if m.family != "wukong":
        for name in config.stream_names:
            ops += StreamEmbedding.flops(config, name, streams[name])
    n_seq = sum(m.stream(n).summary_tokens for n in config.stream_names) if m.family != "wukong" else 0
    for lp in plan(config):
        l = lp.layer
        if lp.summary:
            ops += GatedSummary.flops(f"L{l}.ctx.summary", examples, n_ctx, m.summary_tokens, d)
        for name, comps in lp.streams.items():
            s, st = m.stream(name), streams[name]
            if "pffn" in comps:
                ops += KvGen.flops(f"L{l}.{name}.kvgen", m, s, examples)
                ops += PersonalizedFFN.flops(f"L{l}.{name}.pffn", s, st)
            if "swa" in comps:
                ops += WindowedSelfAttention.flops(f"L{l}.{name}.swa", s, s.window_at(l), st)
            if "hsp" in comps:
                ops += SeedPooling.flops(f"L{l}.{name}.hsp", s, d, st)
        if lp.interaction:
            ops += WukongExperts.flops(f"L{l}.interaction", examples, n_ctx + n_seq, n_ctx, d, m.interaction)
    ops += Head.flops(config, examples)
    return ops


def param_counts(config: KunlunConfig) -> dict[str, dict[str, int]]:
    m = config.model
    d, n_ctx = m.d_model, config.num_context_tokens
    out = {"ctx.tokens": ContextTokens.params(config)}
    if m.family != "wukong":
        for name in config.stream_names:
            out[f"{name}.embed"] = StreamEmbedding.params(config, name)
    n_seq = sum(m.stream(n).summary_tokens for n in config.stream_names) if m.family != "wukong" else 0
    for lp in plan(config):
        l = lp.layer
        if lp.summary:
            out[f"L{l}.ctx.summary"] = {"dense": GatedSummary.params(n_ctx, m.summary_tokens, d), "sparse": 0}
        for name, comps in lp.streams.items():
            s = m.stream(name)
            if "pffn" in comps:
                out[f"L{l}.{name}.kvgen"] = {"dense": kvgen_params(m, s), "sparse": 0}
                out[f"L{l}.{name}.pffn"] = {"dense": PersonalizedFFN.params(s), "sparse": 0}
            if "swa" in comps:
                out[f"L{l}.{name}.swa"] = {"dense": WindowedSelfAttention.params(s), "sparse": 0}
            if "hsp" in comps:
                out[f"L{l}.{name}.hsp"] = {"dense": SeedPooling.params(s, d), "sparse": 0}
        if lp.interaction:
            out[f"L{l}.interaction"] = {"dense": WukongExperts.params(n_ctx + n_seq, n_ctx, d, m.interaction),
                                        "sparse": 0}
    out["head"] = {"dense": Head.params(config), "sparse": 0}
    return out


def count_flops(config: KunlunConfig, batch_or_workload: Batch | WorkloadConfig | None = None) -> FlopReport:
    examples, streams = stream_stats(config, batch_or_workload)
    ops = flop_ops(config, examples, streams)
    names = tuple(config.stream_names) if config.model.family != "wukong" else ()
    return FlopReport.from_ops(ops, examples, param_counts(config), names)
