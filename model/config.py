"""The typed config: one YAML file rebuilds one model (DESIGN.md, "The YAML config").

Sections: `schema_version`, `model`, `schema`, `workload`, `train`, `provenance`. Every section but `provenance` is
validated strictly; errors name the key path (`model.streams.click.heads: ...`).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from kunlun.kernels.gdpa.op import Activation
from kunlun.model.family import FAMILIES, FamilyName
from kunlun.model.kvgen import kvgen_params
from kunlun.model.yamlio import (
    ConfigError,
    check_preset,
    dump_yaml,
    from_mapping,
    is_preset_name,
    load_yaml_file,
    to_mapping,
    validate,
)

SCHEMA_VERSION = 1
COMPONENTS = ("pffn", "swa", "hsp", "interaction")
Window = int | None
FIRST_LAYER = "hsp"  # layer 0 must run it where streams run: later layers reuse its summary
RESERVED_NAMES = frozenset({"ctx", "tokens", "summary", "interaction", "head", "embed", *COMPONENTS, "kvgen"})


def check_window(path: str, w: Window) -> None:
    """A half-window is >= 0, or null for full attention; the search space's window choices obey it too."""
    if w is not None and w < 0:
        raise ConfigError(path, f"must be >= 0 or null, got {w}")


def _positive(path: str, **values: float) -> None:
    for name, v in values.items():
        if v <= 0:
            raise ConfigError(f"{path}.{name}" if path else name, f"must be > 0, got {v}")


@dataclass
class StreamConfig:
    """Per-stream capacity (event-level personalization)."""

    d: int = 64  # stream width d_e
    heads: int = 4
    kv_len: int = 32  # GDPA-PFFN key length n_kv (the per-example FFN's hidden width)
    seeds: int = 16  # HSP seeds n_seed
    summary_tokens: int = 4  # HSP output tokens n_tok
    kron_rank: int = 2  # SumKronLinear rank k
    window: Window | list[Window] = None  # SWA half-window w (|i - j| <= w); one for all layers or one per layer
    depth: int | None = None  # layers this stream runs; None = all
    max_len: int = 256  # most recent events kept
    pffn_activation: Activation = "gelu"
    swa_activation: Activation = "silu"
    hsp_activation: Activation = "silu"
    pooling: Literal["hsp", "pma"] = "hsp"

    def check(self, path: str) -> None:
        _positive(path, d=self.d, heads=self.heads, kv_len=self.kv_len, seeds=self.seeds,
                  summary_tokens=self.summary_tokens, kron_rank=self.kron_rank, max_len=self.max_len)
        if self.d % self.heads:
            raise ConfigError(f"{path}.heads", f"must divide d={self.d}, got {self.heads}")
        if self.depth is not None and self.depth < 1:
            raise ConfigError(f"{path}.depth", f"must be >= 1 or null, got {self.depth}")
        windows = self.window if isinstance(self.window, list) else [self.window]
        for i, w in enumerate(windows):
            sub = f"{path}.window[{i}]" if isinstance(self.window, list) else f"{path}.window"
            check_window(sub, w)
            if w is not None and w >= self.max_len:  # |i - j| <= max_len - 1 already spans the kept events
                raise ConfigError(sub, f"{w} is wider than the stream (max_len {self.max_len}; allowed: 0 to "
                                  f"{self.max_len - 1}, or null for full attention)")

    @property
    def head_dim(self) -> int:
        return self.d // self.heads

    def window_at(self, layer: int) -> Window:
        return self.window[layer] if isinstance(self.window, list) else self.window

    def runs_at(self, layer: int) -> bool:
        return self.depth is None or layer < self.depth


@dataclass
class KvGenConfig:
    """How GDPA-PFFN keys/values are generated per example from the context summary (KUNLUN.md 3.8)."""

    kind: Literal["tokens", "lowrank", "interformer"] = "tokens"
    rank: int = 16  # hypernetwork rank for `lowrank`
    max_params: float = 5e6  # per stream and layer; a generator above it is a validation error

    def check(self, path: str) -> None:
        _positive(path, rank=self.rank, max_params=self.max_params)


@dataclass
class InteractionConfig:
    """Mixture of Wukong Experts: M experts over a fixed round-robin partition of the tokens."""

    experts: int = 2
    layers: int = 1  # Wukong layers per expert
    fm_rank: int = 8  # optimized FM rank k
    mlp_hidden: int = 128  # FMB MLP hidden width

    def check(self, path: str) -> None:
        _positive(path, experts=self.experts, layers=self.layers, fm_rank=self.fm_rank, mlp_hidden=self.mlp_hidden)


@dataclass
class HeadConfig:
    hidden: int = 64
    summary_tokens: int = 4  # the head's own gated summary of the final context tokens

    def check(self, path: str) -> None:
        _positive(path, hidden=self.hidden, summary_tokens=self.summary_tokens)


@dataclass
class RoteConfig:
    """Rotary temporal encoding on SWA queries and keys."""

    t_scale: float = 3600.0  # seconds; tau = log(1 + dt / t_scale), dt = request time - event time
    time_fraction: float = 0.5  # share of rotary frequency pairs driven by tau (the rest by position)
    enabled: bool = True

    def check(self, path: str) -> None:
        _positive(path, t_scale=self.t_scale)
        if not 0.0 <= self.time_fraction <= 1.0:
            raise ConfigError(f"{path}.time_fraction", f"must be in [0, 1], got {self.time_fraction}")


@dataclass
class ModelConfig:
    family: FamilyName = "kunlun"
    d_model: int = 64  # context token width d
    embedding_dim: int = 32  # stream item/side embedding width (projected to each stream's d)
    # Streams read the context's table (width d_model) for their items and for every side feature named like a
    # context feature with the same vocabulary: a history event and the candidate then share one vector per id,
    # so matching them is a dot product, not two tables that must learn to agree (DIN shares them the same way).
    share_embeddings: bool = False
    # Stream tokens add learned embeddings of two log-bucketed time gaps: event to request and event to the
    # previous event of its stream (the bucketed gap embeddings Meta's GDPA kernel adds to q, KUNLUN.md 3.1).
    # ROTE alone cannot say how long ago an event was: its rotations cancel to differences between events.
    # No effect in family `wukong`, which has no stream tokens.
    time_embedding: bool = False
    # Stream tokens add a learned embedding of the event's recency rank (0 = the latest event; exact up to 15,
    # then half-octaves): the position embedding that kernel adds to q, here added to the token (so it reaches
    # every layer's PFFN, SWA and HSP, as the gap rows do). "The last few events" is a rank, not a time gap: ROTE
    # sees rank differences only, and the time gap says how long ago, not how many events ago.
    # Inner splits, kunlun-small, seeds 0/1: MovieLens (100k examples) NE 0.8266/0.8252 -> 0.8191/0.8198, Taobao
    # (60k) 0.9179/0.9133 -> 0.9010/0.9058 (both with cosine). No effect in family `wukong`.
    recency_embedding: bool = False
    num_layers: int = 2
    schedule: Literal["none", "alternate"] | list[list[str]] = "alternate"
    dense_tokens: int = 1
    summary_tokens: int = 4  # context summary tokens n_sum
    kvgen: KvGenConfig = field(default_factory=KvGenConfig)
    interaction: InteractionConfig = field(default_factory=InteractionConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    rote: RoteConfig = field(default_factory=RoteConfig)
    streams: dict[str, StreamConfig] = field(default_factory=dict)
    stream_defaults: StreamConfig = field(default_factory=StreamConfig)

    def check(self, path: str) -> None:
        p = f"{path}." if path else ""
        _positive(path, d_model=self.d_model, embedding_dim=self.embedding_dim, num_layers=self.num_layers,
                  summary_tokens=self.summary_tokens)
        if self.dense_tokens < 0:
            raise ConfigError(f"{p}dense_tokens", f"must be >= 0, got {self.dense_tokens}")
        if isinstance(self.schedule, list):
            if len(self.schedule) != self.num_layers:
                raise ConfigError(f"{p}schedule", f"has {len(self.schedule)} layers, num_layers is {self.num_layers}")
            for i, comps in enumerate(self.schedule):
                for c in comps:
                    if c not in COMPONENTS:
                        raise ConfigError(f"{p}schedule[{i}]", f"unknown component {c!r} (allowed: {COMPONENTS})")
        family = FAMILIES[self.family]
        if family.streams and FIRST_LAYER not in self.layer_components(0):
            raise ConfigError(f"{p}schedule[0]", f"layer 0 must contain {FIRST_LAYER!r} (later layers reuse its "
                              "summary)")
        for name, s in {**self.streams, "stream_defaults": self.stream_defaults}.items():
            sp = f"{p}streams.{name}" if name != "stream_defaults" else f"{p}stream_defaults"
            if isinstance(s.window, list) and len(s.window) != self.num_layers:
                raise ConfigError(f"{sp}.window", f"has {len(s.window)} entries, num_layers is {self.num_layers}")
            if s.depth is not None and s.depth > self.num_layers:
                raise ConfigError(f"{sp}.depth", f"{s.depth} exceeds num_layers={self.num_layers}")
            for key, value in family.stream_settings.items():
                if getattr(s, key) != value:
                    raise ConfigError(f"{sp}.{key}", f"family {self.family!r} requires {value!r}, got "
                                      f"{getattr(s, key)!r}")
        if family.schedule is not None and self.schedule != family.schedule:
            raise ConfigError(f"{p}schedule", f"family {self.family!r} {family.schedule_reason}: must be "
                              f"{family.schedule!r}")
        if family.kvgen is not None and self.kvgen.kind != family.kvgen:
            raise ConfigError(f"{p}kvgen.kind", f"family {self.family!r} uses kvgen {family.kvgen!r}")

    def layer_components(self, layer: int) -> frozenset[str]:
        if self.schedule == "none":
            return frozenset(COMPONENTS)
        if self.schedule == "alternate":
            return frozenset({"pffn", "hsp", "interaction"} if layer % 2 == 0 else {"swa", "interaction"})
        return frozenset(self.schedule[layer])

    def stream(self, name: str) -> StreamConfig:
        return self.streams.get(name, self.stream_defaults)


@dataclass
class StreamSchema:
    vocab: int  # item ids in [0, vocab)
    side: dict[str, int] = field(default_factory=dict)  # side feature -> vocabulary

    def check(self, path: str) -> None:
        _positive(path, vocab=self.vocab)
        for k, v in self.side.items():
            _positive(f"{path}.side", **{k: v})


@dataclass
class SchemaConfig:
    """Features as the data provides them: vocabularies, dense count, streams, tasks."""

    sparse: dict[str, int] = field(default_factory=dict)  # feature -> vocabulary
    dense: int = 0
    streams: dict[str, StreamSchema] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=lambda: ["label"])

    def check(self, path: str) -> None:
        p = f"{path}." if path else ""
        for k, v in self.sparse.items():
            _positive(f"{p}sparse", **{k: v})
        if self.dense < 0:
            raise ConfigError(f"{p}dense", f"must be >= 0, got {self.dense}")
        if not self.tasks:
            raise ConfigError(f"{p}tasks", "needs at least one task")
        for name in self.streams:
            if name in RESERVED_NAMES or not name.isidentifier():
                raise ConfigError(f"{p}streams.{name}", "a stream name must be an identifier and not one of "
                                  f"{', '.join(sorted(RESERVED_NAMES))} (module keys are built from it)")


@dataclass
class LengthHistogram:
    """Stream length distribution: exact lengths and their weights (normalised when used)."""

    lengths: list[int]
    weights: list[float]

    def check(self, path: str) -> None:
        if len(self.lengths) != len(self.weights) or not self.lengths:
            raise ConfigError(path, "lengths and weights must be non-empty lists of the same size")
        if min(self.lengths) < 0:
            raise ConfigError(f"{path}.lengths", "lengths must be >= 0")
        if min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ConfigError(f"{path}.weights", "weights must be >= 0 with a positive sum")

    def normalised(self) -> list[tuple[int, float]]:
        total = sum(self.weights)
        return [(n, w / total) for n, w in zip(self.lengths, self.weights) if w > 0]

    def mean(self) -> float:
        return sum(n * w for n, w in self.normalised())


@dataclass
class WorkloadConfig:
    """The deployment a config is priced on: per-GPU batch size, per-stream length histograms, and how the training
    step is launched. The defaults are a production user's: a per-GPU batch of 1,024 (Wukong's 262,144 over 128-256
    GPUs is 1,024-2,048, KUNLUN.md) and the whole step replayed as CUDA graphs, where kernel launches cost the least
    (space/cost.py prices each mode; `eager` is plain PyTorch, `compile` is torch.compile without graphs)."""

    batch_size: int = 1024
    streams: dict[str, LengthHistogram] = field(default_factory=dict)
    launch: Literal["graphs", "compile", "eager"] = "graphs"

    def check(self, path: str) -> None:
        _positive(path, batch_size=self.batch_size)


@dataclass
class TrainConfig:
    data: str = "synthetic"  # synthetic | movielens:PATH | taobao:PATH
    data_seed: int = 0
    data_examples: int = 80000  # size of the synthetic dataset (train + eval)
    examples: int = 60000  # training examples processed (epochs wrap)
    # passes over the split's own training part; when set it decides the examples (`examples_for`), so the inner
    # split (90% of the training period) and the evaluation split's whole training period train the same number of
    # passes, and a data set of another size gets the same rule
    epochs: float | None = None
    batch_size: int = 256
    eval_batch_size: int = 1024
    lr: float = 2e-3
    # cosine: decays to min_lr_ratio * lr at `examples`; wsd (stable-decay, no warmup): constant, then the same
    # cosine over the last `decay_fraction` of the examples. Under one epoch, wsd: synthetic data_seed 1, 60k
    # examples, kunlun-small NE 0.887/0.871/0.886 (seeds 0-2) against 0.921/0.898/0.906 with cosine; past one
    # epoch, cosine: MovieLens inner split, 100k examples, 0.819/0.820 against 0.825/0.826 with wsd.
    lr_schedule: Literal["constant", "cosine", "wsd"] = "cosine"
    min_lr_ratio: float = 0.1
    decay_fraction: float = 0.3
    weight_decay: float = 0.01
    sparse_optimizer: Literal["adamw", "adagrad"] = "adamw"
    sparse_lr: float = 2e-2
    clip_norm: float = 1.0
    seed: int = 0
    eval_every: int = 0  # examples between evaluations during training; 0 = only at the end
    # eval: the protocol's evaluation split (BASELINES.md); inner: the training split cut at its own 90% time
    # quantile, where hyper-parameters and searches on real data must choose
    split: Literal["eval", "inner"] = "eval"

    def examples_for(self, train_size: int) -> int:
        """The examples processed on a split with `train_size` training examples."""
        return self.examples if self.epochs is None else max(1, round(self.epochs * train_size))

    def with_examples(self, examples: int) -> TrainConfig:
        """An explicit count, which replaces `epochs`."""
        return dataclasses.replace(self, examples=examples, epochs=None)

    def check(self, path: str) -> None:
        _positive(path, data_examples=self.data_examples, examples=self.examples, batch_size=self.batch_size,
                  eval_batch_size=self.eval_batch_size, lr=self.lr, sparse_lr=self.sparse_lr,
                  clip_norm=self.clip_norm)
        if self.epochs is not None and not self.epochs > 0:
            raise ConfigError(f"{path}.epochs", f"must be > 0 or null, got {self.epochs}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"{path}.min_lr_ratio", f"must be in [0, 1], got {self.min_lr_ratio}")
        if not 0.0 < self.decay_fraction <= 1.0:
            raise ConfigError(f"{path}.decay_fraction", f"must be in (0, 1], got {self.decay_fraction}")
        if self.weight_decay < 0 or self.eval_every < 0:
            raise ConfigError(path, "weight_decay and eval_every must be >= 0")
        for name in ("seed", "data_seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{path}.{name}" if path else name, f"must be >= 0, got {getattr(self, name)}")


@dataclass
class KunlunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def check(self, path: str) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ConfigError("schema_version", f"must be {SCHEMA_VERSION}, got {self.schema_version}")
        for name in self.workload.streams:
            if name not in self.schema.streams:
                raise ConfigError(f"workload.streams.{name}", f"not a stream of the schema "
                                  f"(schema streams: {', '.join(self.schema.streams) or 'none'})")
        n_ctx = self.num_context_tokens
        if n_ctx < 1:
            raise ConfigError("schema", "the context branch needs at least one sparse or dense feature")
        if self.model.interaction.experts > n_ctx:
            raise ConfigError("model.interaction.experts",
                              f"{self.model.interaction.experts} experts need at least as many context tokens "
                              f"(there are {n_ctx})")
        for name in self.sequence_streams:
            n = kvgen_params(self.model, self.model.stream(name))
            if n > self.model.kvgen.max_params:
                raise ConfigError(f"model.streams.{name}", f"kvgen '{self.model.kvgen.kind}' has {n:,} parameters "
                                  f"per layer, above model.kvgen.max_params={self.model.kvgen.max_params:,.0f}")

    # -- derived ------------------------------------------------------------------------------------------------
    @property
    def stream_names(self) -> list[str]:
        """Streams the model runs: the schema's (data) streams, in schema order."""
        return list(self.schema.streams)

    @property
    def sequence_streams(self) -> list[str]:
        """Streams that run in the sequence branch (none when the family has no such branch)."""
        return self.stream_names if FAMILIES[self.model.family].streams else []

    def shared_tables(self, stream: str) -> dict[str, str]:
        """A stream's tables read from the context: `item` or a side feature -> the context feature."""
        if not self.model.share_embeddings:
            return {}
        schema, s = self.schema.sparse, self.schema.streams[stream]
        wanted = {"item": ("item", s.vocab), **{k: (k, v) for k, v in s.side.items()}}
        return {k: f for k, (f, vocab) in wanted.items() if schema.get(f) == vocab}

    @property
    def num_context_tokens(self) -> int:
        n = len(self.schema.sparse) + (self.model.dense_tokens if self.schema.dense > 0 else 0)
        return n + len(self.stream_names) - len(self.sequence_streams)  # + one pooled token per other stream

    @property
    def num_interaction_tokens(self) -> int:
        """The interaction's input: the context tokens and every sequence stream's summary tokens."""
        return self.num_context_tokens + sum(self.model.stream(n).summary_tokens for n in self.sequence_streams)

    @property
    def num_tasks(self) -> int:
        return len(self.schema.tasks)

    # -- construction ----------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, file: str | Path | None = None) -> KunlunConfig:
        try:
            if not isinstance(data, dict):
                kind = type(data).__name__
                raise ConfigError("", f"expected a mapping with sections (model, schema, ...), got {kind}")
            data = dict(data)
            provenance = data.pop("provenance", None) or {}
            if not isinstance(provenance, dict):
                raise ConfigError("provenance", "must be a mapping")
            config = from_mapping(cls, data)
            config.provenance = provenance
            return config
        except ConfigError as e:
            raise e.in_file(file) if file is not None else e from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> KunlunConfig:
        return cls.from_dict(load_yaml_file(path), file=path)

    @classmethod
    def preset(cls, name: str) -> KunlunConfig:
        check_preset(name, "model", preset_names())
        with resources.as_file(resources.files("kunlun.model.presets") / f"{name}.yaml") as p:
            return cls.from_yaml(p)

    @classmethod
    def load(cls, spec: str | Path) -> KunlunConfig:
        """A YAML path or a model preset name (wherever a CONFIG is accepted; yamlio.is_preset_name tells them
        apart)."""
        if not is_preset_name(spec):
            return cls.from_yaml(spec)
        return cls.preset(str(spec))

    def to_dict(self) -> dict[str, Any]:
        out = to_mapping(self)
        out = {"schema_version": out.pop("schema_version"), **out}
        return out

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = dump_yaml(self.to_dict())
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def copy(self) -> KunlunConfig:
        return copy.deepcopy(self)

    def replace(self, **sections: Any) -> KunlunConfig:
        return dataclasses.replace(self.copy(), **sections)

    def with_schema(self, schema: SchemaConfig, workload: WorkloadConfig | None = None) -> KunlunConfig:
        """Adopt a data schema: architecture streams the data lacks are dropped (warning); data streams the
        architecture does not name get `stream_defaults`."""
        out = self.copy()
        for name in list(out.model.streams):
            if name not in schema.streams:
                warnings.warn(f"model stream {name!r} is not in the data; dropped", stacklevel=2)
                del out.model.streams[name]
        out.schema = copy.deepcopy(schema)
        if workload is not None:  # the data's length histograms; the batch and launch mode stay the config's
            out.workload = dataclasses.replace(out.workload, streams=copy.deepcopy(workload.streams))
        else:
            out.workload.streams = {k: v for k, v in out.workload.streams.items() if k in schema.streams}
        return validate(out)


def preset_names() -> list[str]:
    root = resources.files("kunlun.model.presets")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))
