from __future__ import annotations

import numpy as np
import torch

from kunlun.data.batching import assemble_batch
from kunlun.data.dataset import build_dataset
from kunlun.data.events import EventTable, StreamSpec
from kunlun.data.loader import EvalLoader, TrainLoader


def _data():
    n = 40
    user = np.repeat([1, 2, 3, 4], 10)
    ts = np.tile(np.arange(10), 4) * 10 + user
    item = np.arange(n) + 100
    labels = (np.arange(n) % 3 == 0).astype(np.float32)[:, None]
    return build_dataset(EventTable(
        user=user, ts=ts, item=item, labels=labels, sparse={"user": user}, dense=np.ones((n, 1), np.float32),
        side={"parity": item % 2}, streams={"s": StreamSpec(np.ones(n, bool), ["parity"])}, tasks=["y"]), "t")


def test_jagged_batch_keeps_the_most_recent_events() -> None:
    d = _data()
    idx = np.array([9, 0, 5, 39])  # user 1's last, first (empty history), middle; user 4's last
    b = assemble_batch(d, idx, {"s": 3})
    s = d.streams["s"]
    assert b.streams["s"].lengths.tolist() == [3, 0, 3, 3]
    for row, i in enumerate(idx):
        lo, hi = b.streams["s"].offsets[row], b.streams["s"].offsets[row + 1]
        want = s.values[max(s.lo[i], s.hi[i] - 3):s.hi[i]]
        assert b.streams["s"].values[lo:hi].tolist() == want.tolist()  # oldest first, most recent last
        assert (b.streams["s"].timestamps[lo:hi] < b.request_time[row]).all()
    assert b.streams["s"].side["parity"].shape == b.streams["s"].values.shape
    assert b.sparse.shape == (4, 1) and b.dense.shape == (4, 2) and b.labels.shape == (4, 1)
    assert set(assemble_batch(d, idx, {}).streams) == set()


def test_train_loader_wraps_epochs_and_lands_exactly() -> None:
    d = _data()
    loader = TrainLoader(d, {"s": 4}, batch_size=7, examples=50, seed=3)
    sizes = [b.size for b in loader]
    assert sum(sizes) == 50 and max(sizes) == 7
    seen = np.concatenate(list(loader.index_batches()))
    n = len(d.train_index)
    assert sorted(seen[:n].tolist()) == sorted(d.train_index.tolist())  # first epoch: each example once
    again = np.concatenate(list(TrainLoader(d, {"s": 4}, 7, 50, seed=3).index_batches()))
    assert np.array_equal(seen, again)
    assert loader.epochs == 50 / n


def test_eval_loader_is_reiterable_in_order() -> None:
    d = _data()
    loader = EvalLoader(d, {"s": 100}, batch_size=3)
    first = np.concatenate([b.request_time.numpy() for b in loader])
    second = np.concatenate([b.request_time.numpy() for b in loader])
    assert np.array_equal(first, d.request_time[d.eval_index]) and np.array_equal(first, second)


def test_train_loader_trains_the_oov_bucket_deterministically() -> None:
    d = _data()
    plain = TrainLoader(d, {"s": 4}, 16, 32, seed=0, oov_rate=0.0)
    dropped = TrainLoader(d, {"s": 4}, 16, 32, seed=0, oov_rate=0.5)
    assert all((b.sparse != 0).all() for b in plain)
    first, second = list(dropped), list(dropped)
    assert any((b.sparse == 0).any() for b in first)
    assert all(torch.equal(a.sparse, b.sparse) for a, b in zip(first, second))
    assert all(torch.equal(a.labels, b.labels) for a, b in zip(first, list(plain)))  # same examples, same order


def _novelty_table() -> EventTable:
    """Users 1-3 act over the whole training period; user 9 appears only in its last 10%; user 7 only in the
    evaluation period (t >= 1000), where novelty must not be measured."""
    rows = [(u, t) for t in range(0, 800, 10) for u in (1, 2, 3)]
    rows += [(9, t) for t in range(880, 900, 2)] + [(u, t) for t in range(801, 900, 10) for u in (1, 2)]
    rows += [(7, t) for t in range(1000, 1136, 2)]  # 68 of 338 events: the 80% cut falls just before them
    user, ts = (np.array(c) for c in zip(*rows))
    n = len(user)
    return EventTable(user=user, ts=ts, item=np.arange(n) % 5, labels=np.zeros((n, 1), np.float32),
                      sparse={"user": user, "hour": ts % 3}, dense=np.zeros((n, 0), np.float32), side={},
                      streams={"s": StreamSpec(np.ones(n, bool))}, tasks=["y"])


def test_novelty_is_measured_inside_the_training_split() -> None:
    table = _novelty_table()
    d = build_dataset(table, "t")
    train = table.ts <= d.cut_time
    late = train & (table.ts > np.quantile(table.ts[train], 0.9))
    want = np.mean(table.user[late] == 9)
    assert 0 < want < 1 and d.oov_rates["user"] == want  # user 7 (evaluation only) is not counted
    assert d.oov_rates["hour"] == 0.0 and d.stream_oov_rate == 0.0


def test_train_loader_drops_ids_at_the_measured_novelty() -> None:
    d = build_dataset(_novelty_table(), "t")
    batches = list(TrainLoader(d, {"s": 4}, 64, 20000, seed=0))
    sparse = torch.cat([b.sparse for b in batches])
    user_dropped = (sparse[:, 0] == 0).double().mean().item()
    assert abs(user_dropped - d.oov_rates["user"]) < 0.02  # 20,000 draws: 4 sigma is below 0.015
    assert (sparse[:, 1] != 0).all()  # a column never new in training is never dropped
    assert all((b.streams["s"].values != 0).all() for b in batches)
