from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kunlun.data.dataset import build_dataset
from kunlun.data.spec import open_data
from kunlun.data.taobao import BEHAVIORS, read_taobao
from kunlun.model.yamlio import ConfigError


def test_reads_gz_and_counts_the_cut_off_row(taobao_csv: Path, taobao_rows: list) -> None:
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        table, bad = read_taobao(taobao_csv)
    assert bad == 1 and len(table) == len(taobao_rows)
    behaviour = [r.split(",")[3] for r in taobao_rows]
    assert table.labels[:, 0].tolist() == [float(b != "pv") for b in behaviour]
    for b in BEHAVIORS:
        assert table.streams[b].mask.tolist() == [x == b for x in behaviour]


def test_own_behaviour_is_never_a_feature(taobao_csv: Path) -> None:
    with pytest.warns(UserWarning):
        table, _ = read_taobao(taobao_csv)
    data = build_dataset(table, "t")
    # Features are a function of (user, item, category, time) and of strictly earlier events: two events that
    # differ only in behaviour (user 1, item 10, t=1000: pv and cart) get identical inputs.
    pv, cart = 0, 2
    assert np.array_equal(data.sparse[pv], data.sparse[cart])
    assert np.array_equal(data.dense[pv], data.dense[cart])
    for s in data.streams.values():
        assert (s.lo[pv], s.hi[pv]) == (s.lo[cart], s.hi[cart])
    assert data.labels[pv, 0] == 0 and data.labels[cart, 0] == 1


def test_not_taobao(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ConfigError, match="no valid row"):
        read_taobao(p)
    p.write_text("1,2,3,click,5\n1,2,3,pv,6\n1,2,3,like,7\n")
    with pytest.raises(ConfigError, match="malformed"):
        read_taobao(p)
    with pytest.raises(ConfigError, match="exactly one"):
        open_data(f"taobao:{tmp_path}/..")


@pytest.mark.realdata
def test_real_taobao_split(shared_data: Path) -> None:
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        data = open_data(f"taobao:{shared_data / 'taobao-userbehavior-head84k'}")
    assert data.malformed_rows == 1
    assert (len(data.train_index), len(data.eval_index)) == (67580, 16895)  # BASELINES.md
    assert set(data.streams) == {*BEHAVIORS, "audience"}
