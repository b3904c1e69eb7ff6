"""The learnable synthetic dataset, the embedded default (`--data synthetic`).

Generative process (deterministic given the seed):
- Catalogue: `items` items, each in one of `categories` categories, with a Zipf popularity inside its
  category and a latent quality q_i ~ N(0, 1).
- Users: `users` users, each with a long-term taste theta_u ~ Dirichlet(0.2) over categories and a main
  device. Event counts per user are long-tailed: a multinomial split of the n events with lognormal (sigma
  `length_sigma`) weights. Event times are bursty (sessions) and strictly increasing per user over `days`
  days, each user starting somewhere in the first half of the window.
- Impressions: a short-term interest category drifts (with probability `drift` per event it is redrawn from
  theta_u); an impression's category is the current interest (60%), a draw from theta_u (20%) or uniform
  (20%); its item is drawn by popularity within the category. Context: device (the user's main one 70% of
  the time), position in the page, hour of day; dense: a noisy view of q_i and a price ~ N(0, 1).
- Label (click) ~ Bernoulli(sigmoid(logit)), from strictly earlier events of the same user only:
      logit = bias
            + w_recent  * share of the last `recent` clicks in the candidate's category  (short range, clicks)
            + w_long    * smoothed share of ALL earlier clicks in that category           (long range, clicks)
            + w_fatigue * unclicked impressions of that category among the last
                          `fatigue_window` impressions                                   (impression stream)
            + w_quality * q_i + w_position * position + w_price * price                  (context)
            + w_device  * ([device == category mod devices] - 1/devices)                 (interaction)
  so that a model without the sequence branch, with too short a history, or without either stream is worse.
  The recent term outweighs the long-range one (w_recent 3.0, w_long 1.5) on purpose: a mean of the click
  history's category embeddings, which any model can take, recovers the long-range share once the history and
  the candidate read one category table (`model.share_embeddings`); which clicks are recent, and which
  impressions went unclicked, only a model of the sequence sees.
Streams: `click` (earlier clicks) and `impression` (earlier impressions, clicked or not), side feature
`category`. Context sparse: user, item, category, hour, device, position; dense: 2. Ids are dense, so the
vocabularies are the sizes above plus the OOV bucket whatever the seed: the model presets carry this schema.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass

import numpy as np

from kunlun.data.dataset import EventDataset, build_dataset
from kunlun.data.events import EventTable, StreamSpec
from kunlun.data.split import Split
from kunlun.model.config import SchemaConfig, StreamSchema, WorkloadConfig
from kunlun.model.yamlio import ConfigError

DEFAULT_EXAMPLES = 80000
DAY = 86400
STREAMS = ("click", "impression")
SPARSE = ("user", "item", "category", "hour", "device", "position")


@dataclass(frozen=True)
class SyntheticSpec:
    users: int = 1000
    items: int = 5000
    categories: int = 32
    devices: int = 4
    positions: int = 8
    days: int = 30
    length_sigma: float = 1.0
    drift: float = 0.15
    recent: int = 3
    fatigue_window: int = 10
    bias: float = -1.0
    w_recent: float = 3.0
    w_long: float = 1.5
    w_fatigue: float = -0.35
    w_quality: float = 0.5
    w_position: float = -0.12
    w_price: float = -0.3
    w_device: float = 0.8

    def sizes(self) -> dict[str, int]:
        """Raw id-space size of every sparse feature, in schema order."""
        return {"user": self.users, "item": self.items, "category": self.categories, "hour": 24,
                "device": self.devices, "position": self.positions}

    @classmethod
    def from_schema(cls, schema: SchemaConfig) -> SyntheticSpec:
        """Sizes from a schema's vocabularies (minus the OOV bucket); the schema must be the synthetic one.
        """
        missing = [f for f in SPARSE if f not in schema.sparse]
        missing += [s for s in STREAMS if s not in schema.streams]
        if missing:
            raise ConfigError("schema", f"not the synthetic schema: lacks {', '.join(missing)} "
                              f"(it needs sparse {', '.join(SPARSE)} and streams {', '.join(STREAMS)})")
        v = schema.sparse
        return cls(users=v["user"] - 1, items=v["item"] - 1, categories=v["category"] - 1,
                   devices=v["device"] - 1, positions=v["position"] - 1)

    def schema(self) -> SchemaConfig:
        return SchemaConfig(sparse={k: n + 1 for k, n in self.sizes().items()}, dense=2,
                            streams={s: StreamSchema(self.items + 1, {"category": self.categories + 1})
                                     for s in STREAMS},
                            tasks=["click"])


class SyntheticDataset:
    """`SyntheticDataset(schema, seed, n)`: `schema` is a `SyntheticSpec`, a synthetic `SchemaConfig` (sizes
    taken from its vocabularies) or None (the defaults); `n` events (= examples, train + eval)."""

    def __init__(self, schema: SyntheticSpec | SchemaConfig | None = None, seed: int = 0,
                 n: int = DEFAULT_EXAMPLES):
        if isinstance(schema, SchemaConfig):
            schema = SyntheticSpec.from_schema(schema)
        self.spec = schema or SyntheticSpec()
        self.seed = seed
        self.n = n

    def events(self) -> EventTable:
        return _generate(self.spec, self.seed, self.n)

    def dataset(self, split: Split = "eval") -> EventDataset:
        return build_dataset(self.events(), f"synthetic(seed={self.seed}, n={self.n})", split)


@functools.lru_cache(maxsize=4)
def synthetic_schema(seed: int = 0, n: int = DEFAULT_EXAMPLES) -> tuple[SchemaConfig, WorkloadConfig]:
    """The default synthetic schema and its workload (the training split's history-length histograms)."""
    data = SyntheticDataset(None, seed, n).dataset()
    return data.schema, data.workload


def _generate(s: SyntheticSpec, seed: int, n: int) -> EventTable:
    rng = np.random.default_rng(seed)
    item_cat = rng.integers(0, s.categories, size=s.items)
    quality = rng.standard_normal(s.items)
    by_cat = [np.flatnonzero(item_cat == c) for c in range(s.categories)]
    # Zipf popularity within a category; an empty category falls back to any item.
    pop = [(ids, _zipf_cdf(len(ids))) if len(ids) else (np.arange(s.items), _zipf_cdf(s.items))
           for ids in by_cat]
    weights = rng.lognormal(0.0, s.length_sigma, size=s.users)
    lengths = rng.multinomial(n, weights / weights.sum())

    names = ("user", "ts", "item", "cat", "device", "pos", "price", "label")
    cols: dict[str, list[np.ndarray]] = {k: [] for k in names}
    horizon = s.days * DAY
    for u in range(s.users):
        length = int(lengths[u])
        if length == 0:
            continue
        theta = rng.dirichlet(np.full(s.categories, 0.2))
        start = rng.uniform(0, 0.5 * horizon)
        # Bursty sessions: mostly short gaps, some long ones.
        gaps = np.where(rng.random(length) < 0.15, rng.exponential(40.0, length),
                        rng.exponential(1.0, length))
        t = start + (horizon - start) * np.cumsum(gaps) / (gaps.sum() + gaps.mean())
        ts = np.floor(t).astype(np.int64)
        ts = np.maximum.accumulate(ts - np.arange(length)) + np.arange(length)  # strictly increasing
        device = np.where(rng.random(length) < 0.7, rng.integers(s.devices),
                          rng.integers(0, s.devices, length))
        pos = rng.integers(0, s.positions, length)
        price = rng.standard_normal(length)
        cats = _impression_categories(rng, s, theta, length)
        items = np.array([_draw(pop[c], r) for c, r in zip(cats, rng.random(length))], dtype=np.int64)
        ctx_logit = (s.bias + s.w_quality * quality[items] + s.w_position * pos + s.w_price * price
                     + s.w_device * ((device == cats % s.devices) - 1.0 / s.devices))
        labels = _clicks(rng, s, cats, ctx_logit)
        for key, v in (("user", np.full(length, u)), ("ts", ts), ("item", items), ("cat", cats),
                       ("device", device), ("pos", pos), ("price", price), ("label", labels)):
            cols[key].append(v)
    c = {k: np.concatenate(v) for k, v in cols.items()}
    noisy_quality = quality[c["item"]] + rng.standard_normal(len(c["item"]))
    click = c["label"].astype(bool)
    return EventTable(
        user=c["user"].astype(np.int64), ts=c["ts"], item=c["item"],
        labels=c["label"].astype(np.float32)[:, None],
        sparse={"user": c["user"].astype(np.int64), "item": c["item"], "category": c["cat"].astype(np.int64),
                "hour": (c["ts"] // 3600) % 24, "device": c["device"].astype(np.int64),
                "position": c["pos"].astype(np.int64)},
        dense=np.stack([noisy_quality, c["price"]], axis=1).astype(np.float32),
        side={"category": c["cat"].astype(np.int64)},
        streams={"click": StreamSpec(click, ["category"]),
                 "impression": StreamSpec(np.ones(len(click), dtype=bool), ["category"])},
        tasks=["click"],
        fixed_vocab=s.sizes(),
        history_length_features=False,
    )


def _zipf_cdf(k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1)
    return np.cumsum(w) / w.sum()


def _draw(pop: tuple[np.ndarray, np.ndarray], r: float) -> int:
    ids, cdf = pop
    return int(ids[min(int(np.searchsorted(cdf, r)), len(ids) - 1)])


def _impression_categories(rng: np.random.Generator, s: SyntheticSpec, theta: np.ndarray,
                           n: int) -> np.ndarray:
    interest = np.empty(n, dtype=np.int64)
    current = rng.choice(s.categories, p=theta)
    redraw = rng.random(n) < s.drift
    taste = rng.choice(s.categories, size=n, p=theta)
    for i in range(n):
        if redraw[i]:
            current = taste[i]
        interest[i] = current
    mode = rng.random(n)
    return np.where(mode < 0.6, interest,
                    np.where(mode < 0.8, rng.choice(s.categories, size=n, p=theta),
                             rng.integers(0, s.categories, n)))


def _clicks(rng: np.random.Generator, s: SyntheticSpec, cats: np.ndarray,
            ctx_logit: np.ndarray) -> np.ndarray:
    """Sequential: each label depends on the user's strictly earlier clicks and impressions."""
    counts = np.zeros(s.categories)
    recent: deque[int] = deque(maxlen=s.recent)
    shown: deque[tuple[int, int]] = deque(maxlen=s.fatigue_window)
    prior = 1.0 / s.categories
    u = rng.random(len(cats))
    out = np.zeros(len(cats), dtype=np.int64)
    for i, c in enumerate(cats.tolist()):
        short = sum(r == c for r in recent) / s.recent
        long = (counts[c] + prior) / (counts.sum() + 1.0)
        fatigue = sum(1 for sc, clicked in shown if sc == c and not clicked)
        logit = ctx_logit[i] + s.w_recent * short + s.w_long * long + s.w_fatigue * fatigue
        y = int(u[i] < 1.0 / (1.0 + np.exp(-logit)))
        out[i] = y
        if y:
            counts[c] += 1
            recent.append(c)
        shown.append((c, y))
    return out
