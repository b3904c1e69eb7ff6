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
            + w_mood    * mean mood of the last `mood_window` clicks' categories         (`mixed` only)
  so that a model without the sequence branch, with too short a history, or without either stream is worse.
  The recent term outweighs the long-range one (w_recent 3.0, w_long 1.5) on purpose: a mean of the click
  history's category embeddings, which any model can take, recovers the long-range share once the history and
  the candidate read one category table (`model.share_embeddings`); which clicks are recent, and which
  impressions went unclicked, only a model of the sequence sees.
Streams: `click` (earlier clicks) and `impression` (earlier impressions, clicked or not), side feature
`category`. Context sparse: user, item, category, hour, device, position; dense: 2. Ids are dense, so the
vocabularies are the sizes above plus the OOV bucket whatever the seed: the model presets carry this schema.

Modes (`--data synthetic:MODE`, `MODES`) keep this schema (the sizes may differ) and change the generative
parameters and the label; plain `synthetic` is the process above, unchanged. The first three plant an optimum that
is known by construction (issue 18), so a search can be checked against it; they use 500 users, 1,000 items and
8 categories, so that a tiny model learns them from a few thousand examples:
- `history`: every context weight is 0: the label depends only on the user's earlier clicks and impressions,
  read against the candidate's category. No context feature alone carries signal: a high sequence share wins.
- `context`: every history weight is 0 and the context terms are stronger: the label depends only on the
  request's own features, histories are noise. A low sequence share wins.
- `recent`: the label depends only on the last 2 clicks (w_recent 5 on their share in the candidate's category;
  no long-range, fatigue or context term), and tastes are broad (Dirichlet 1) and drift (0.3), so older events add
  nothing: a short history wins (same signal, fewer FLOPs, nothing to dilute it).
- `mixed` (the demo's data): half context (quality, position, price), half history: the mean mood of the
  categories of the user's last 4 clicks (w_mood 4; one fixed standardised value per category), so both branches
  pay and a pooling of the click stream that any structure has learns the history term from the first batches on.
  It plants no single optimum; it gives `make demo` a front whose span is larger than the seed spread (the match
  terms of `history` are learnt all or nothing, seed by seed). Its oracle NE on the evaluation split is 0.46 at a
  click rate of 0.15.
- `capacity` (issue 17): 200 users, so histories run to hundreds of events (n / 200 per user on average), and a
  label from a random teacher network that keeps rewarding capacity: a tanh MLP (hidden `teacher_hidden`) over
  the candidate item's latent vector (its category's plus its own, `latent` wide), exponential moving averages of
  the latents of the user's earlier clicks at three horizons (`decays`, in events) and of its unclicked
  impressions, their elementwise products with the candidate's (history x candidate interactions), and latent
  vectors of device and hour, position, price and quality. Learning it takes item and category embeddings, long
  histories read at several horizons and a nonlinear interaction of all of them.
`SyntheticDataset.oracle()` returns the true click probabilities (the floor of NE, and what the tests check the
label's dependencies on).
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass
from typing import Literal

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
    # the mean mood of the last `mood_window` clicks' categories (one fixed N(0, 1) value per category): a history
    # signal that needs no candidate match, so any pooling of the click stream reads it, and a tiny model learns it
    # from the first batches on (the match terms above are learnt all or nothing, seed by seed)
    w_mood: float = 0.0
    mood_window: int = 8
    taste_concentration: float = 0.2  # Dirichlet parameter of theta_u: small = few favourite categories
    label: Literal["additive", "teacher"] = "additive"  # the logit above, or the `capacity` teacher network
    latent: int = 8  # teacher: width of item, device and hour latent vectors
    teacher_hidden: int = 64
    w_teacher: float = 4.0  # teacher output scale (logits)
    teacher_gain: float = 1.5  # scale of the teacher's first layer: larger = more saturated, more nonlinear
    decays: tuple[float, ...] = (0.5, 0.9, 0.99)  # teacher: click-history moving averages, per event

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


_NO_CONTEXT = {"w_quality": 0.0, "w_position": 0.0, "w_price": 0.0, "w_device": 0.0}
_PLANTED = {"users": 500, "items": 1000, "categories": 8}  # learnable in a few thousand examples
MODES: dict[str, SyntheticSpec] = {
    "history": SyntheticSpec(**_PLANTED, **_NO_CONTEXT, w_recent=5.0, w_long=2.0, w_fatigue=-0.5, bias=-2.0),
    "context": SyntheticSpec(**_PLANTED, w_recent=0.0, w_long=0.0, w_fatigue=0.0, w_quality=1.0,
                             w_position=-0.25, w_price=-1.0, w_device=2.0),
    "recent": SyntheticSpec(**_PLANTED, **_NO_CONTEXT, recent=2, w_recent=5.0, w_long=0.0, w_fatigue=0.0,
                            drift=0.3, taste_concentration=1.0, bias=-2.0),
    "mixed": SyntheticSpec(**_PLANTED, bias=0.0, w_recent=0.0, w_long=0.0, w_fatigue=0.0, w_mood=4.0, mood_window=4,
                           w_quality=1.0, w_position=-0.25, w_price=-1.0, w_device=0.0, drift=0.3,
                           taste_concentration=1.0),
    "capacity": SyntheticSpec(users=200, categories=64, length_sigma=0.5, label="teacher", bias=-1.0,
                              teacher_gain=3.0, decays=(0.5, 0.8, 0.95)),
}


def synthetic_spec(mode: str) -> SyntheticSpec:
    """The generative parameters of `synthetic:MODE` (the empty mode: plain `synthetic`)."""
    if not mode:
        return SyntheticSpec()
    if mode not in MODES:
        raise ConfigError("--data", f"unknown synthetic mode {mode!r} (allowed: synthetic, "
                          f"{', '.join(f'synthetic:{m}' for m in MODES)})")
    return MODES[mode]


class SyntheticDataset:
    """`SyntheticDataset(schema, seed, n)`: `schema` is a `SyntheticSpec`, a synthetic `SchemaConfig` (sizes
    taken from its vocabularies) or None (the defaults); `n` events (= examples, train + eval); `name` is the
    data spec it stands for (in the dataset's name)."""

    def __init__(self, schema: SyntheticSpec | SchemaConfig | None = None, seed: int = 0,
                 n: int = DEFAULT_EXAMPLES, name: str = "synthetic"):
        if isinstance(schema, SchemaConfig):
            schema = SyntheticSpec.from_schema(schema)
        self.spec = schema or SyntheticSpec()
        self.seed = seed
        self.n = n
        self.name = name

    def events(self) -> EventTable:
        return _generate(self.spec, self.seed, self.n)[0]

    def oracle(self) -> np.ndarray:
        """(n,) the true click probability of each event of `events()`, in the same order."""
        return _generate(self.spec, self.seed, self.n)[1]

    def dataset(self, split: Split = "eval") -> EventDataset:
        return build_dataset(self.events(), f"{self.name}(seed={self.seed}, n={self.n})", split)


@functools.lru_cache(maxsize=4)
def synthetic_schema(seed: int = 0, n: int = DEFAULT_EXAMPLES) -> tuple[SchemaConfig, WorkloadConfig]:
    """The default synthetic schema and its workload (the training split's history-length histograms)."""
    data = SyntheticDataset(None, seed, n).dataset()
    return data.schema, data.workload


@functools.lru_cache(maxsize=2)
def _generate(s: SyntheticSpec, seed: int, n: int) -> tuple[EventTable, np.ndarray]:
    """The events and their true click probabilities."""
    rng = np.random.default_rng(seed)
    item_cat = rng.integers(0, s.categories, size=s.items)
    quality = rng.standard_normal(s.items)
    teacher = _Teacher(s, item_cat, np.random.default_rng([seed, 1])) if s.label == "teacher" else None
    mood = category_moods(s.categories, seed)
    by_cat = [np.flatnonzero(item_cat == c) for c in range(s.categories)]
    # Zipf popularity within a category; an empty category falls back to any item.
    pop = [(ids, _zipf_cdf(len(ids))) if len(ids) else (np.arange(s.items), _zipf_cdf(s.items))
           for ids in by_cat]
    weights = rng.lognormal(0.0, s.length_sigma, size=s.users)
    lengths = rng.multinomial(n, weights / weights.sum())

    names = ("user", "ts", "item", "cat", "device", "pos", "price", "label", "prob")
    cols: dict[str, list[np.ndarray]] = {k: [] for k in names}
    horizon = s.days * DAY
    for u in range(s.users):
        length = int(lengths[u])
        if length == 0:
            continue
        theta = rng.dirichlet(np.full(s.categories, s.taste_concentration))
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
        if teacher is None:
            ctx_logit = (s.bias + s.w_quality * quality[items] + s.w_position * pos + s.w_price * price
                         + s.w_device * ((device == cats % s.devices) - 1.0 / s.devices))
            labels, probs = _clicks(rng, s, cats, ctx_logit, mood)
        else:
            context = teacher.context(device, (ts // 3600) % 24, pos, price, quality[items])
            labels, probs = teacher.clicks(rng, items, context)
        for key, v in (("user", np.full(length, u)), ("ts", ts), ("item", items), ("cat", cats),
                       ("device", device), ("pos", pos), ("price", price), ("label", labels), ("prob", probs)):
            cols[key].append(v)
    c = {k: np.concatenate(v) for k, v in cols.items()}
    noisy_quality = quality[c["item"]] + rng.standard_normal(len(c["item"]))
    click = c["label"].astype(bool)
    table = EventTable(
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
    return table, c["prob"]


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


def category_moods(categories: int, seed: int) -> np.ndarray:
    """(categories,) each category's mood, for the `w_mood` term: from its own generator, so the events' draws do
    not move with it, and standardised, so the term's scale is the same at any number of categories."""
    mood = np.random.default_rng([seed, 2]).standard_normal(categories)
    return (mood - mood.mean()) / (mood.std() + 1e-9)


def _clicks(rng: np.random.Generator, s: SyntheticSpec, cats: np.ndarray, ctx_logit: np.ndarray,
            mood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sequential: each label depends on the user's strictly earlier clicks and impressions. Labels and their
    probabilities."""
    counts = np.zeros(s.categories)
    recent: deque[int] = deque(maxlen=s.recent)
    shown: deque[tuple[int, int]] = deque(maxlen=s.fatigue_window)
    moods: deque[float] = deque(maxlen=s.mood_window)
    prior = 1.0 / s.categories
    u = rng.random(len(cats))
    out = np.zeros(len(cats), dtype=np.int64)
    prob = np.zeros(len(cats))
    for i, c in enumerate(cats.tolist()):
        short = sum(r == c for r in recent) / s.recent
        long = (counts[c] + prior) / (counts.sum() + 1.0)
        fatigue = sum(1 for sc, clicked in shown if sc == c and not clicked)
        logit = ctx_logit[i] + s.w_recent * short + s.w_long * long + s.w_fatigue * fatigue
        if moods:
            logit += s.w_mood * sum(moods) / len(moods)
        prob[i] = 1.0 / (1.0 + np.exp(-logit))
        y = int(u[i] < prob[i])
        out[i] = y
        if y:
            counts[c] += 1
            recent.append(c)
            moods.append(mood[c])
        shown.append((c, y))
    return out, prob


class _Teacher:
    """The `capacity` label: a random tanh network over candidate, history and context latents (module docstring).
    Its weights and the latents come from their own generator, so they do not shift the events' draws."""

    def __init__(self, s: SyntheticSpec, item_cat: np.ndarray, rng: np.random.Generator):
        k = s.latent
        self.s = s
        z = rng.standard_normal((s.categories, k))[item_cat] + 0.2 * rng.standard_normal((s.items, k))
        self.item = z / np.linalg.norm(z, axis=1, keepdims=True) * np.sqrt(k)  # unit-variance coordinates
        self.device = rng.standard_normal((s.devices, k))
        self.hour = rng.standard_normal((24, k))
        # inputs: candidate, clicks at each horizon and their products with it, unclicked impressions, context
        width = k * (2 + 2 * len(s.decays)) + 2 * k + 3
        self.w1 = rng.standard_normal((width, s.teacher_hidden)) * (s.teacher_gain / np.sqrt(width))
        self.b1 = 0.5 * rng.standard_normal(s.teacher_hidden)
        self.w2 = rng.standard_normal(s.teacher_hidden) * (s.w_teacher / np.sqrt(s.teacher_hidden))

    def context(self, device: np.ndarray, hour: np.ndarray, pos: np.ndarray, price: np.ndarray,
                quality: np.ndarray) -> np.ndarray:
        """(T, 2k + 3) the events' context inputs."""
        scaled_pos = pos / max(self.s.positions - 1, 1) * 2 - 1
        return np.concatenate([self.device[device], self.hour[hour], scaled_pos[:, None], price[:, None],
                               quality[:, None]], axis=1)

    def clicks(self, rng: np.random.Generator, items: np.ndarray,
               context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sequential, as `_clicks`: the click averages move only after a click, the impression one after a
        miss."""
        s, k = self.s, self.s.latent
        decays = np.asarray(s.decays)[:, None]
        clicked = np.zeros((len(s.decays), k))
        missed = np.zeros(k)
        u = rng.random(len(items))
        out = np.zeros(len(items), dtype=np.int64)
        prob = np.zeros(len(items))
        ctx_hidden = context @ self.w1[-context.shape[1]:] + self.b1  # (T, hidden)
        w_hist = self.w1[:-context.shape[1]]
        for i, item in enumerate(items.tolist()):
            z = self.item[item]
            x = np.concatenate([z, clicked.ravel(), (clicked * z).ravel(), missed])
            prob[i] = 1.0 / (1.0 + np.exp(-(s.bias + np.tanh(x @ w_hist + ctx_hidden[i]) @ self.w2)))
            out[i] = int(u[i] < prob[i])
            if out[i]:
                clicked = decays * clicked + (1 - decays) * z
            else:
                missed = 0.8 * missed + 0.2 * z
        return out, prob
