"""FLOPs per training example, split by stream, on a config's workload (the solver's view of count_flops)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kunlun.model.config import KunlunConfig

# config -> [total, stream_1, ..., stream_E] training FLOPs per example (streams in schema order)
FlopFn = Callable[[KunlunConfig], list[float]]


def split_report(report: Any, streams: list[str]) -> list[float]:
    """[total, per stream] training FLOPs per example from a FlopReport."""
    per_stream = dict.fromkeys(streams, 0.0)
    for op in report.ops:
        if op.stream is not None:
            per_stream[op.stream] += op.training
    n = report.examples
    return [report.train_flops_per_example] + [per_stream[s] / n for s in streams]


def count_flop_vector(config: KunlunConfig) -> list[float]:
    from kunlun.model import count_flops

    return split_report(count_flops(config, config.workload), config.stream_names)
