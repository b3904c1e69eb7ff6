from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from kunlun.data.dataset import build_dataset
from kunlun.data.events import EventTable, StreamSpec
from kunlun.data.movielens import read_movielens
from kunlun.data.vocab import OOV


def _table(user, ts, item, label) -> EventTable:
    user, ts, item, label = (np.asarray(x, dtype=np.int64) for x in (user, ts, item, label))
    return EventTable(user=user, ts=ts, item=item, labels=label.astype(np.float32)[:, None],
                      sparse={"user": user, "item": item}, dense=np.zeros((len(ts), 0), np.float32),
                      side={"label_of_event": label},
                      streams={"all": StreamSpec(np.ones(len(ts), bool), ["label_of_event"]),
                               "pos": StreamSpec(label == 1, [])},
                      tasks=["y"])


def test_histories_hold_only_strictly_earlier_events_of_the_same_user() -> None:
    # Rows deliberately out of order; user 7 has two events at t=10.
    t = _table(user=[7, 7, 8, 7, 8, 7], ts=[30, 10, 5, 10, 40, 20], item=[1, 2, 3, 4, 5, 6],
               label=[1, 0, 1, 1, 0, 1])
    d = build_dataset(t, "t")
    s = d.streams["all"]
    for i in range(len(d)):
        hist = np.arange(s.lo[i], s.hi[i])
        assert (s.timestamps[hist] < d.request_time[i]).all()
        same_user_earlier = (d.user == d.user[i]) & (d.request_time < d.request_time[i])
        assert len(hist) == same_user_earlier.sum()
    # The two events at t=10 do not see each other, and their history is empty.
    at10 = np.flatnonzero(d.request_time == 10)
    assert len(at10) == 2 and (s.hi[at10] == s.lo[at10]).all()


def test_a_stream_by_item_holds_the_items_strictly_earlier_events_of_any_user() -> None:
    t = _table(user=[7, 8, 9, 7, 8, 9, 8], ts=[10, 10, 20, 30, 40, 5, 50], item=[1, 1, 1, 2, 1, 2, 2],
               label=[1, 0, 1, 1, 0, 1, 0])
    t.streams["audience"] = StreamSpec(np.ones(len(t), bool), ["label_of_event"], by="item")
    t.fixed_vocab = {"item": 3, "label_of_event": 2}  # every id kept, so values compare with raw ids
    d = build_dataset(t, "t")
    s = d.streams["audience"]
    raw_item = d.sparse[:, list(d.schema.sparse).index("item")] - 1
    for i in range(len(d)):
        hist = np.arange(s.lo[i], s.hi[i])
        want = (raw_item == raw_item[i]) & (d.request_time < d.request_time[i])
        assert len(hist) == want.sum() and (s.values[hist] - 1 == raw_item[i]).all()
        assert sorted(s.timestamps[hist]) == sorted(d.request_time[want])
        assert list(s.timestamps[hist]) == sorted(s.timestamps[hist])  # oldest first
    # item 1 at t=10 by users 7 and 8: neither sees the other; user 8's item-1 event at t=40 sees t=10, 10, 20
    at40 = int(np.flatnonzero(d.request_time == 40)[0])
    assert s.hi[at40] - s.lo[at40] == 3
    assert (s.hi[d.request_time == 10] == s.lo[d.request_time == 10]).all()


def test_no_label_leaks_into_its_own_history_or_features(ml100k: Path) -> None:
    table, _ = read_movielens(ml100k)
    # History lengths are checked below through the ranges; their dense copy is standardised with split-wide
    # statistics, which the comparison example by example cannot isolate.
    table.history_length_features = False
    table.fixed_vocab = {"rating": 6}  # so that a rating vanishing from the training split shifts no other id
    d = build_dataset(table, "ml")
    # Changing an event's own rating may change only its label and LATER events' histories (of any user).
    for i in range(len(table)):
        changed = table.select(np.ones(len(table), bool))
        changed.labels[i] = 1 - changed.labels[i]
        rating = table.side["rating"].copy()
        rating[i] = 6 - rating[i]
        changed.side = {**changed.side, "rating": rating}
        changed.streams = {k: replace(v, mask=v.mask.copy()) for k, v in table.streams.items()}
        changed.streams["liked"].mask[i] = not changed.streams["liked"].mask[i]
        d2 = build_dataset(changed, "ml")
        j = int(np.argsort(np.lexsort((np.arange(len(table)), table.ts, table.user)))[i])  # row i, sorted
        for k in np.flatnonzero(d.request_time <= table.ts[i]):  # any user: `audience` crosses users
            assert np.array_equal(d.sparse[k], d2.sparse[k]) and np.allclose(d.dense[k], d2.dense[k])
            for name in d.streams:
                a, b = d.streams[name], d2.streams[name]
                assert a.hi[k] - a.lo[k] == b.hi[k] - b.lo[k]
                assert np.array_equal(a.values[a.lo[k]:a.hi[k]], b.values[b.lo[k]:b.hi[k]])
                for side in a.side:
                    assert np.array_equal(a.side[side][a.lo[k]:a.hi[k]], b.side[side][b.lo[k]:b.hi[k]])
        assert d.labels[j] != d2.labels[j]


def test_split_vocab_oov_and_workload() -> None:
    # Times 1..10: the 80% quantile (linear) is 8.2, so t <= 8 trains.
    t = _table(user=[1] * 5 + [2] * 5, ts=list(range(1, 11)), item=[1, 2, 3, 1, 2, 1, 2, 9, 9, 4],
               label=[1, 0] * 5)
    d = build_dataset(t, "t")
    assert d.cut_time == np.quantile(np.arange(1, 11), 0.8)
    assert d.train_index.tolist() == list(range(8)) and d.eval_index.tolist() == [8, 9]
    item_col = list(d.schema.sparse).index("item")
    assert d.sparse[9, item_col] == OOV  # item 4 appears only in the evaluation period
    assert d.sparse[8, item_col] == OOV  # item 9: seen once in training (t=8), below MIN_COUNT
    assert d.sparse[6, item_col] != OOV  # item 2 was seen 3 times in training
    assert d.schema.sparse["item"] == 3  # {1, 2} + OOV
    assert d.schema.streams["all"].vocab == 3
    # Evaluation examples keep their full causal history, evaluation-period events included.
    s = d.streams["all"]
    assert s.hi[9] - s.lo[9] == 4
    hist = d.workload.streams["all"]
    assert hist.lengths == [0, 1, 2, 3, 4] and hist.weights == [2.0, 2.0, 2.0, 1.0, 1.0]


def test_inner_split_never_sees_the_evaluation_period() -> None:
    t = _table(user=[1] * 10, ts=list(range(1, 11)), item=list(range(10)), label=[1, 0] * 5)
    d = build_dataset(t, "t", split="inner")
    assert d.request_time.max() <= np.quantile(np.arange(1, 11), 0.8)
    assert len(d) == 8
