from __future__ import annotations

import numpy as np
import pytest

from kunlun.data.spec import open_data
from kunlun.data.synthetic import MODES, SyntheticDataset, SyntheticSpec, category_moods
from kunlun.model.config import KunlunConfig
from kunlun.model.yamlio import ConfigError

SMALL = SyntheticSpec(users=60, items=300, categories=8)


def test_deterministic_by_seed() -> None:
    a = SyntheticDataset(SMALL, seed=1, n=3000).dataset()
    b = SyntheticDataset(SMALL, seed=1, n=3000).dataset()
    c = SyntheticDataset(SMALL, seed=2, n=3000).dataset()
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.sparse, b.sparse)
    assert np.array_equal(a.streams["click"].values, b.streams["click"].values)
    assert not np.array_equal(a.labels, c.labels)
    assert len(a) == 3000 and a.schema == SMALL.schema()


def test_labels_depend_on_recent_clicks_and_lengths_are_long_tailed() -> None:
    t = SyntheticDataset(SMALL, seed=0, n=20000).events()
    d = SyntheticDataset(SMALL, seed=0, n=20000).dataset()
    click = d.streams["click"]
    cat_col = list(d.schema.sparse).index("category")
    last = np.where(click.hi > click.lo, click.side["category"][np.maximum(click.hi - 1, 0)], -1)
    match = last == d.sparse[:, cat_col]
    rate_match, rate_other = d.labels[match, 0].mean(), d.labels[~match, 0].mean()
    assert rate_match > rate_other + 0.1
    per_user = np.bincount(t.user)
    assert per_user.max() > 4 * np.median(per_user)


def test_schema_round_trip_and_validation() -> None:
    schema = SMALL.schema()
    assert SyntheticSpec.from_schema(schema) == SyntheticSpec(users=60, items=300, categories=8)
    with pytest.raises(ConfigError, match="not the synthetic schema"):
        SyntheticSpec.from_schema(KunlunConfig().schema)
    assert len(open_data("synthetic", seed=0, examples=2000)) == 2000


# --- modes (`synthetic:MODE`): what each label depends on, checked on the true click probabilities -----------------

def _mode(mode: str, n: int = 12000) -> tuple[SyntheticDataset, np.ndarray, object]:
    ds = SyntheticDataset(MODES[mode], seed=0, n=n, name=f"synthetic:{mode}")
    return ds, ds.oracle(), ds.events()


def _last_clicks_match(d, k: int) -> np.ndarray:
    """(N,) how many of each example's last k earlier clicks share the candidate's category (from the built
    dataset's own stream arrays, not the generator's)."""
    click = d.streams["click"]
    cat = d.sparse[:, list(d.schema.sparse).index("category")]
    out = np.zeros(len(d), dtype=np.int64)
    for j in range(1, k + 1):
        idx = click.hi - j
        ok = idx >= click.lo
        out += ok & (click.side["category"][np.where(ok, idx, 0)] == cat)
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float), b.astype(float))[0, 1])


def _context_columns(t) -> dict[str, np.ndarray]:
    return {"price": t.dense[:, 1], "quality": t.dense[:, 0], "position": t.sparse["position"],
            "device_match": t.sparse["device"] == t.sparse["category"] % 4}


def test_modes_keep_the_schema_and_are_deterministic() -> None:
    for mode in MODES:
        a = open_data(f"synthetic:{mode}", seed=3, examples=2000)
        b = open_data(f"synthetic:{mode}", seed=3, examples=2000)
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.streams["click"].values,
                                                                   b.streams["click"].values)
        assert list(a.schema.sparse) == ["user", "item", "category", "hour", "device", "position"]
        assert set(a.schema.streams) == {"click", "impression"} and a.schema.dense == 2
        assert all(set(s.side) == {"category"} for s in a.schema.streams.values())
        assert a.name.startswith(f"synthetic:{mode}(")
    # plain `synthetic` is still the process the presets' numbers rest on
    assert SyntheticDataset(None, seed=0, n=2000).spec == SyntheticSpec()


def test_unknown_mode_names_the_allowed_ones() -> None:
    allowed = "synthetic:history, synthetic:context, synthetic:recent, synthetic:mixed, synthetic:capacity"
    with pytest.raises(ConfigError, match=allowed):
        open_data("synthetic:nope")


def test_history_mode_label_ignores_context_and_follows_history() -> None:
    ds, p, t = _mode("history")
    logit = np.log(p / (1 - p))
    for name, column in _context_columns(t).items():
        assert abs(_corr(logit, column)) < 0.03, name
    # the same checks fail on plain synthetic data, whose label has context terms
    base = SyntheticDataset(None, seed=0, n=12000)
    pb = base.oracle()
    assert _corr(np.log(pb / (1 - pb)), _context_columns(base.events())["price"]) < -0.1
    d = ds.dataset()
    order = np.lexsort((np.arange(len(t)), t.ts, t.user))  # the dataset's row order
    assert _corr(logit[order], _last_clicks_match(d, 3)) > 0.4


def _within_items(items: np.ndarray, v: np.ndarray) -> np.ndarray:
    """v less its mean over each item's rows: removes any per-item effect (the latent quality)."""
    v = v.astype(float)
    return v - (np.bincount(items, v) / np.bincount(items))[items]


def _unexplained_by_context(t, p: np.ndarray) -> float:
    """Residual std of the logit after least squares on the request's own features (an effect per item, and
    position, price, device match; the item effects removed by demeaning within items): 0 when the label is a
    function of the context alone."""
    c = _context_columns(t)
    items = np.unique(t.item, return_inverse=True)[1]
    x = np.stack([_within_items(items, c[k]) for k in ("position", "price", "device_match")], axis=1)
    y = _within_items(items, np.log(p / (1 - p)))
    return float(np.std(y - x @ np.linalg.lstsq(x, y, rcond=None)[0]))


def test_context_mode_label_is_a_function_of_the_context_alone() -> None:
    _, p, t = _mode("context")
    assert _unexplained_by_context(t, p) < 1e-6
    _, p_history, t_history = _mode("history")  # the check fails where the label reads histories
    assert _unexplained_by_context(t_history, p_history) > 0.5


def test_recent_mode_label_is_a_function_of_the_last_two_clicks() -> None:
    ds, p, t = _mode("recent")
    d = ds.dataset()
    order = np.lexsort((np.arange(len(t)), t.ts, t.user))
    match = _last_clicks_match(d, 2)
    prob = p[order]
    # exactly one probability per number of matches among the last two clicks: nothing older, nothing else
    for k in range(3):
        assert np.ptp(prob[match == k]) < 1e-12
    assert len(np.unique(prob.round(12))) == 3
    # the same check fails when the third-last click is counted too
    three = _last_clicks_match(d, 3)
    assert any(np.ptp(prob[three == k]) > 0.1 for k in range(1, 4))


def _last_clicks_mood(d, k: int, mood: np.ndarray) -> np.ndarray:
    """(N,) the mean mood of each example's last k earlier clicks' categories (0 without clicks), from the built
    dataset's stream arrays; dataset category ids are the generator's plus one (0 is padding)."""
    click = d.streams["click"]
    total, count = np.zeros(len(d)), np.zeros(len(d))
    for j in range(1, k + 1):
        idx = click.hi - j
        ok = idx >= click.lo
        total += np.where(ok, mood[click.side["category"][np.where(ok, idx, 0)] - 1], 0.0)
        count += ok
    return np.divide(total, count, out=np.zeros(len(d)), where=count > 0)


def test_mixed_mode_label_is_the_context_plus_the_last_four_clicks_mood() -> None:
    ds, p, t = _mode("mixed")
    d = ds.dataset()
    order = np.lexsort((np.arange(len(t)), t.ts, t.user))
    mood = category_moods(ds.spec.categories, seed=0)
    logit = np.log(p / (1 - p))[order]
    c = {k: v[order] for k, v in _context_columns(t).items()}
    items = np.unique(t.item[order], return_inverse=True)[1]

    def residual(k: int) -> tuple[float, float]:
        x = np.stack([_within_items(items, v) for v in (c["position"], c["price"], _last_clicks_mood(d, k, mood))],
                     axis=1)
        y = _within_items(items, logit)
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        return float(np.std(y - x @ coef)), float(coef[2])

    exact, w = residual(4)
    assert exact < 1e-6 and w == pytest.approx(ds.spec.w_mood)
    assert residual(3)[0] > 0.3 and residual(5)[0] > 0.3  # one click more or less in the window: not the label
    assert c["price"].std() > 0 and abs(_corr(logit, c["price"])) > 0.1  # and the context carries signal too


def test_capacity_mode_has_long_histories_and_headroom() -> None:
    ds, p, t = _mode("capacity", n=20000)
    d = ds.dataset()
    per_user = np.bincount(t.user)
    assert np.median(per_user) >= 60 and per_user.max() > 200  # n / 200 events per user on average
    y = t.labels[:, 0]
    rate = y.mean()
    entropy = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    oracle_ne = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) / entropy
    assert oracle_ne < 0.75  # far below 1: a model has much to learn
    assert np.array_equal(ds.events().labels, t.labels) and len(d) == 20000
