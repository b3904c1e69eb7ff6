"""`SearchSpace`: a loaded space YAML plus the fixed parts of every trial's config; samples Allocations.

Sampling goes through a trial-like object (`suggest_categorical/int/float`: an Optuna trial, or `RandomTrial`
for dry runs and benchmarks), so this module never imports optuna.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from kunlun.model.config import KunlunConfig, preset_names
from kunlun.model.family import FAMILIES
from kunlun.model.yamlio import ConfigError, check_preset, from_mapping, is_preset_name, load_yaml_file
from kunlun.space.allocation import Allocation, StreamAllocation
from kunlun.space.spec import Range, SpaceSpec


class TrialLike(Protocol):
    def suggest_categorical(self, name: str, choices: list) -> Any: ...
    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...


class RandomTrial:
    """Uniform random sampling with Optuna's suggest_* interface."""

    def __init__(self, seed: int | None = None):
        self.rng = random.Random(seed)
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: list) -> Any:
        return self.params.setdefault(name, self.rng.choice(list(choices)))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        if log:
            value = round(math.exp(self.rng.uniform(math.log(low), math.log(high))))
        else:
            value = self.rng.randrange(low, high + 1, step)
        return self.params.setdefault(name, value)

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        if step:
            value = low + step * self.rng.randrange(int(round((high - low) / step)) + 1)
        else:
            value = self.rng.uniform(low, high)
        return self.params.setdefault(name, value)


def space_preset_names() -> list[str]:
    root = resources.files("kunlun.space.presets")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


@dataclass
class SearchSpace:
    spec: SpaceSpec
    base: KunlunConfig  # schema, workload, train and the model fields the search does not touch
    source: str  # the file or preset it came from

    # -- loading -------------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: str | Path, **overrides: Any) -> SearchSpace:
        """A space YAML path or a space preset name (yamlio.is_preset_name tells them apart); command-line
        overrides (data, budget, examples, seed, family) applied before validation."""
        if not is_preset_name(spec):
            return cls.from_yaml(spec, **overrides)
        check_preset(str(spec), "space", space_preset_names(), {"model": preset_names()})
        with resources.as_file(resources.files("kunlun.space.presets") / f"{spec}.yaml") as f:
            space = cls.from_yaml(f, **overrides)
        space.source = str(spec)
        return space

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> SearchSpace:
        try:
            return cls.from_dict(load_yaml_file(path), source=str(path), **overrides)
        except ConfigError as e:
            raise (e if e.file else e.in_file(path)) from None

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<dict>", data: str | None = None, budget: str | None = None,
                  examples: int | None = None, seed: int | None = None, family: str | None = None,
                  split: str | None = None) -> SearchSpace:
        if not isinstance(raw, dict):
            raise ConfigError("", "a search space is a mapping (name, budget, params, ...)")
        raw = dict(raw)
        if budget is not None:
            from kunlun.space.budget import budget_kind_of

            raw["budget"] = {**(raw.get("budget") or {}), "value": budget, "kind": budget_kind_of(budget)}
        for key, value in (("data", data), ("examples", examples), ("seed", seed), ("split", split)):
            if value is not None:
                raw[key] = value
        if family is not None:  # one study per budget and family (scaling runs)
            raw["params"] = {**(raw.get("params") or {}), "family": [family]}
        spec = from_mapping(SpaceSpec, raw)
        return cls(spec=spec, base=_base_config(spec), source=source)

    # -- sampling ------------------------------------------------------------------------------------------------
    @property
    def stream_names(self) -> list[str]:
        return self.base.stream_names

    def sample(self, trial: TrialLike) -> Allocation:
        p = self.spec.params
        family = trial.suggest_categorical("family", list(p.family))
        layers = _suggest_int(trial, "num_layers", p.num_layers)
        streams = self.stream_names if FAMILIES[family].streams else []
        seq_share = _suggest_float(trial, "seq_share", p.seq_share) if streams else 0.0
        schedule = self._schedule(trial, family, layers)
        windows = self._windows(trial, family, layers, streams)
        raw = {s: _suggest_float(trial, f"share.{s}", p.stream_share) for s in streams} if len(streams) > 1 else {}
        total = sum(raw.values())
        out = {}
        for s in streams:
            share = (raw[s] / total if total > 0 else 1 / len(streams)) if raw else 1.0
            key = (lambda k, s=s: f"{k}.{s}") if p.per_stream else (lambda k: k)
            depth = trial.suggest_categorical(key("depth"), list(p.depth))
            out[s] = StreamAllocation(
                share=share, heads=_suggest_int(trial, key("heads"), p.heads),
                kv_len=_suggest_int(trial, key("kv_len"), p.kv_len), seeds=_suggest_int(trial, key("seeds"), p.seeds),
                summary_tokens=_suggest_int(trial, key("summary_tokens"), p.summary_tokens),
                window=windows[s], depth=None if depth is None or depth >= layers else depth,
                max_len=None if p.max_len is None else _suggest_int(trial, key("max_len"), p.max_len))
        return Allocation(family=family, target_seq_share=seq_share, num_layers=layers, schedule=schedule,
                          experts=_suggest_int(trial, "experts", p.experts),
                          fm_rank=_suggest_int(trial, "fm_rank", p.fm_rank), streams=out)

    def _schedule(self, trial: TrialLike, family: str, layers: int) -> str | tuple[tuple[str, ...], ...]:
        spec = self.spec.params.schedule
        if FAMILIES[family].schedule is not None:
            return FAMILIES[family].schedule
        choices = list(spec.named) + (["generated"] if spec.generated else [])
        name = trial.suggest_categorical("schedule", choices)
        if name != "generated":
            return name
        sets = [trial.suggest_categorical("schedule.L0", spec.first_layer_sets())]
        sets += [trial.suggest_categorical(f"schedule.L{i}", list(spec.layer_sets)) for i in range(1, layers)]
        return tuple(tuple(s.split("+")) for s in sets)

    def _windows(self, trial: TrialLike, family: str, layers: int, streams: list[str]) -> dict[str, Any]:
        spec, fixed = self.spec.params.window, FAMILIES[family].stream_settings
        if "window" in fixed:
            return dict.fromkeys(streams, fixed["window"])
        choices = list(spec.choices)
        if spec.tie == "all":
            w = trial.suggest_categorical("window", choices)
            return dict.fromkeys(streams, w)
        if spec.tie == "stream":
            return {s: trial.suggest_categorical(f"window.{s}", choices) for s in streams}
        return {s: tuple(trial.suggest_categorical(f"window.{s}.L{i}", choices) for i in range(layers))
                for s in streams}


def _suggest_int(trial: TrialLike, name: str, param: list[int] | Range) -> int:
    if isinstance(param, list):
        return int(trial.suggest_categorical(name, list(param)))
    return trial.suggest_int(name, int(param.low), int(param.high), step=int(param.step or 1), log=param.log)


def _suggest_float(trial: TrialLike, name: str, param: list[float] | Range) -> float:
    if isinstance(param, list):
        return float(trial.suggest_categorical(name, list(param)))
    return trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)


def _base_config(spec: SpaceSpec) -> KunlunConfig:
    """The base preset with the fixed sections laid over it, on the data's schema and workload."""
    try:
        raw: dict[str, Any] = KunlunConfig.load(spec.base).to_dict() if spec.base else {}
    except ConfigError as e:  # the base's own file names itself; an unknown preset name is this key's fault
        raise (e if e.file else ConfigError("base", e.message)) from None
    raw.pop("provenance", None)
    for section, value in spec.fixed.items():
        if not isinstance(value, dict):
            raise ConfigError(f"fixed.{section}", "must be a mapping")
        merged = dict(raw.get(section) or {})
        merged.update(value)
        raw[section] = merged
    train = dict(raw.get("train") or {})
    train.update(data=spec.data, data_seed=spec.seed, seed=spec.seed, split=spec.split)
    raw["train"] = train
    try:
        config = KunlunConfig.from_dict(raw)
    except ConfigError as e:
        raise ConfigError(f"fixed.{e.path}" if e.path else "fixed", e.message) from None
    if spec.examples is not None:
        config.train = config.train.with_examples(spec.examples)
    from kunlun.space.data import open_cached

    kind, _, path = config.train.data.partition(":")
    if kind != "synthetic" and not path:
        raise ConfigError("data", f"the {spec.name!r} space trains on {kind} data: pass --data {kind}:PATH")
    data = open_cached(config.train.data, config.train.data_seed, config.train.data_examples, config.train.split)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # architecture streams the data lacks are dropped on purpose
            config = config.with_schema(data.schema, data.workload)
    except ConfigError as e:  # the base (with `fixed`) does not fit the data's schema
        raise ConfigError(f"fixed.{e.path}" if e.path else "fixed", f"{e.message}, with the schema of data "
                          f"{spec.data} (base {spec.base or 'defaults'})") from None
    if not config.schema.streams and all(FAMILIES[f].streams for f in spec.params.family):
        raise ConfigError("data", f"{spec.data!r} has no event streams: only family 'wukong' can run")
    return config
