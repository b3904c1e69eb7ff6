"""The search-space YAML, typed and strictly validated (errors name the file and the key path).

A parameter is either a list of choices (categorical) or a `Range` (`low`, `high`, optional `log`, `step`).
Per-stream knobs are sampled per stream (event-level personalization) unless `per_stream: false`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from kunlun.model.config import COMPONENTS, FIRST_LAYER, check_window
from kunlun.model.family import FamilyName
from kunlun.model.yamlio import ConfigError
from kunlun.space.budget import Budget


@dataclass
class Range:
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def check(self, path: str) -> None:
        if not self.low <= self.high:
            raise ConfigError(f"{path}.low", f"must be <= high ({self.high}), got {self.low}")
        if self.log and self.low <= 0:
            raise ConfigError(f"{path}.low", f"must be > 0 with log: true, got {self.low}")
        if self.step is not None and (self.step <= 0 or self.log):
            raise ConfigError(f"{path}.step", "must be > 0 and cannot be combined with log: true")


IntParam = list[int] | Range
FloatParam = list[float] | Range


def _all_layer_sets() -> list[str]:
    sets = []
    for n in range(1, len(COMPONENTS) + 1):
        sets += ["+".join(c) for c in itertools.combinations(COMPONENTS, n)]
    return sets


@dataclass
class ScheduleSpec:
    """CompSkip: named schedules, plus generated per-layer patterns when `generated` is true."""

    named: list[Literal["none", "alternate"]] = field(default_factory=lambda: ["none", "alternate"])
    generated: bool = False
    layer_sets: list[str] = field(default_factory=_all_layer_sets)  # 'pffn+hsp+interaction', ...

    def check(self, path: str) -> None:
        if not self.named and not self.generated:
            raise ConfigError(path, "needs at least one named schedule or generated: true")
        for i, s in enumerate(self.layer_sets):
            bad = [c for c in s.split("+") if c not in COMPONENTS]
            if bad or not s:
                raise ConfigError(f"{path}.layer_sets[{i}]", f"{s!r}: components are {'+'.join(COMPONENTS)}")
        if self.generated and not self.first_layer_sets():
            raise ConfigError(f"{path}.layer_sets", f"layer 0 needs a set containing {FIRST_LAYER!r}")

    def first_layer_sets(self) -> list[str]:
        return [s for s in self.layer_sets if FIRST_LAYER in s.split("+")]


@dataclass
class WindowSpec:
    """SWA half-windows; null = full attention. `tie`: one window for everything (`all`), one per stream
    (`stream`), or one per stream and layer (`layer`)."""

    choices: list[int | None] = field(default_factory=lambda: [None])
    tie: Literal["all", "stream", "layer"] = "stream"

    def check(self, path: str) -> None:
        if not self.choices:
            raise ConfigError(f"{path}.choices", "needs at least one window")
        for w in self.choices:
            check_window(f"{path}.choices", w)


@dataclass
class Params:
    family: list[FamilyName] = field(default_factory=lambda: ["kunlun"])
    seq_share: FloatParam = field(default_factory=lambda: Range(0.2, 0.8))  # sequence branch's budget share
    stream_share: FloatParam = field(default_factory=lambda: Range(0.2, 0.8))  # per-stream weight, normalised
    num_layers: IntParam = field(default_factory=lambda: [2])
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    window: WindowSpec = field(default_factory=WindowSpec)
    depth: list[int | None] = field(default_factory=lambda: [None])  # null = all layers
    kv_len: IntParam = field(default_factory=lambda: [32])
    seeds: IntParam = field(default_factory=lambda: [16])
    summary_tokens: IntParam = field(default_factory=lambda: [4])
    heads: IntParam = field(default_factory=lambda: [2])
    experts: IntParam = field(default_factory=lambda: [1])  # Wukong experts
    fm_rank: IntParam = field(default_factory=lambda: [8])  # Wukong optimized-FM rank
    # most recent events a stream keeps; null = the base's. A short history can beat a long one (the model dilutes
    # recent events), and it is cheap: the solver then gives the FLOPs to the widths.
    max_len: IntParam | None = None
    per_stream: bool = True

    def check(self, path: str) -> None:
        for name in ("family", "seq_share", "stream_share", "num_layers", "depth", "kv_len", "seeds",
                     "summary_tokens", "heads", "experts", "fm_rank"):
            value = getattr(self, name)
            if isinstance(value, list) and not value:
                raise ConfigError(f"{path}.{name}", "needs at least one choice")
        if isinstance(self.max_len, list) and not self.max_len:
            raise ConfigError(f"{path}.max_len", "needs at least one choice (or null: the base's)")
        for name in ("num_layers", "kv_len", "seeds", "summary_tokens", "heads", "experts", "fm_rank", "max_len"):
            value = getattr(self, name)
            if value is None:
                continue
            low = min(value) if isinstance(value, list) else value.low
            if low < 1:
                raise ConfigError(f"{path}.{name}", f"values must be >= 1, got {low}")
        for name in ("seq_share", "stream_share"):
            value = getattr(self, name)
            values = value if isinstance(value, list) else [value.low, value.high]
            if min(values) < 0 or max(values) > 1:
                raise ConfigError(f"{path}.{name}", "shares must lie in [0, 1]")


@dataclass
class SolverSpec:
    """How an allocation becomes widths: coarse widths on hardware-friendly multiples (a stream's width is a
    multiple of lcm(width_multiple, heads * head_dim_multiple)), then the fine knob in closed form."""

    width_multiple: int = 16
    head_dim_multiple: int = 8
    min_width: int = 16
    max_width: int = 4096
    fine: Literal["mlp_hidden", "head_hidden"] = "mlp_hidden"
    fine_min: int = 4
    fine_max: int = 16384
    share_tolerance: float = 0.1  # |realised - sampled| sequence share beyond this is infeasible

    def check(self, path: str) -> None:
        for name in ("width_multiple", "head_dim_multiple", "min_width", "fine_min"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{path}.{name}", f"must be >= 1, got {getattr(self, name)}")
        if self.max_width < self.min_width or self.fine_max < self.fine_min:
            raise ConfigError(path, "max_width/fine_max must be >= min_width/fine_min")


@dataclass
class SpaceSpec:
    name: str
    budget: Budget
    params: Params = field(default_factory=Params)
    base: str | None = None  # model preset or YAML whose other fields every trial keeps
    data: str = "synthetic"  # synthetic | movielens:PATH | taobao:PATH (overridden by --data)
    seed: int = 0  # study seed: data, evaluation set, sampler
    # which split trials are evaluated on (TrainConfig.split): real-data spaces choose on `inner`, never on the
    # protocol's evaluation split, which the chosen config then meets once (`kunlun train --split eval`)
    split: Literal["eval", "inner"] = "eval"
    examples: int | None = None  # training examples per trial (train.examples; replaces fixed.train.epochs)
    fixed: dict[str, Any] = field(default_factory=dict)  # KunlunConfig sections every trial keeps
    solver: SolverSpec = field(default_factory=SolverSpec)
    description: str = ""

    def check(self, path: str) -> None:
        allowed = ("model", "schema", "workload", "train")
        for key in self.fixed:
            if key not in allowed:
                raise ConfigError(f"fixed.{key}", f"unknown section (allowed: {', '.join(allowed)})")
        if self.examples is not None and self.examples < 1:
            raise ConfigError("examples", f"must be >= 1, got {self.examples}")
        if self.seed < 0:
            raise ConfigError("seed", f"must be >= 0, got {self.seed}")
        if not self.name or "/" in self.name:
            raise ConfigError("name", f"must be a non-empty name without '/', got {self.name!r}")
