from __future__ import annotations

import numpy as np
import pytest

from kunlun.data.spec import open_data
from kunlun.data.synthetic import SyntheticDataset, SyntheticSpec
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
