"""Data spec strings, parsed in one place: `synthetic`, `synthetic:MODE`, `movielens:PATH`, `taobao:PATH`."""

from __future__ import annotations

import warnings
from pathlib import Path

from kunlun.data.dataset import EventDataset, build_dataset
from kunlun.data.movielens import read_movielens
from kunlun.data.split import Split
from kunlun.data.synthetic import DEFAULT_EXAMPLES, MODES, SyntheticDataset, synthetic_spec
from kunlun.data.taobao import read_taobao
from kunlun.model.yamlio import ConfigError

READERS = {"movielens": read_movielens, "taobao": read_taobao}
KINDS = ("synthetic", *(f"{k}:PATH" for k in READERS), f"synthetic:{{{','.join(MODES)}}}")


def open_data(spec: str, seed: int = 0, examples: int = DEFAULT_EXAMPLES,
              split: Split = "eval") -> EventDataset:
    """`seed` and `examples` (train + eval events) apply to synthetic data;
    `split="inner"` gives the training split cut at its own 90% quantile, for choosing hyper-parameters."""
    kind, _, path = spec.partition(":")
    if kind == "synthetic":
        return SyntheticDataset(synthetic_spec(path), seed, examples, name=spec).dataset(split)
    if kind in READERS and path:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                table, malformed = READERS[kind](Path(path).expanduser())
            return build_dataset(table, spec, split, malformed)
        except ConfigError as e:  # a reader names the file; the key is the data spec's
            raise ConfigError(e.path or "data", e.message, e.file or path) from None
    raise ConfigError("--data", f"unknown data spec {spec!r} (allowed: {', '.join(KINDS)})")
