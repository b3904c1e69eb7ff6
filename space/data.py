"""The data a space trains on, opened once per process (the schema and workload come from it)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from kunlun.model.yamlio import ConfigError


def check_data_path(spec: str) -> None:
    """A real data spec must name an existing path (checked first in every trial, on every worker)."""
    kind, _, path = spec.partition(":")
    if kind != "synthetic" and path and not Path(path).expanduser().exists():  # synthetic:MODE reads no file
        raise ConfigError("--data", f"{kind} data path {path!r} does not exist on this machine")


@lru_cache(maxsize=4)
def open_cached(spec: str, seed: int, examples: int, split: str = "eval") -> Any:
    from kunlun.data.spec import open_data

    check_data_path(spec)
    return open_data(spec, seed=seed, examples=examples, split=split)
