from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from kunlun.data.movielens import GENRES, read_movielens
from kunlun.data.spec import open_data
from kunlun.model.yamlio import ConfigError


def _check_table(table, ratings: list) -> None:
    assert len(table) == len(ratings)
    assert table.labels[:, 0].tolist() == [float(r >= 4) for _, _, r, _ in ratings]
    assert set(table.streams) == {"rated", "liked"} and table.streams["rated"].by == "user"
    assert table.streams["liked"].mask.tolist() == [r >= 4 for _, _, r, _ in ratings]
    assert table.dense.shape == (len(ratings), len(GENRES) + 1)


def test_100k_folder_and_file(ml100k: Path, ratings: list) -> None:
    table, bad = read_movielens(ml100k)
    _check_table(table, ratings)
    assert bad == 0
    again, _ = read_movielens(ml100k / "u.data")
    assert np.array_equal(again.item, table.item)


def test_1m_layout_latin1_and_gz(ml1m: Path, ratings: list) -> None:
    table, _ = read_movielens(ml1m)
    _check_table(table, ratings)
    # Item 2 (Action, Adventure, Thriller) gets the same genre flags as in the 100K layout.
    flags = table.dense[table.item == 2][0, :len(GENRES)]
    assert [GENRES[i] for i in np.flatnonzero(flags)] == ["Action", "Adventure", "Thriller"]
    table2, _ = read_movielens(ml1m / "ratings.dat.gz")
    assert np.array_equal(table2.ts, table.ts)


def test_layouts_agree(ml100k: Path, ml1m: Path) -> None:
    a, b = read_movielens(ml100k)[0], read_movielens(ml1m)[0]
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.sparse["genres"] >= 0, b.sparse["genres"] >= 0)


def test_sniffed_layout_from_an_unusual_name(ml1m: Path, ratings: list) -> None:
    with gzip.open(ml1m / "ratings.dat.gz", "rb") as f:
        (ml1m / "my_ratings.txt").write_bytes(f.read())
    assert len(read_movielens(ml1m / "my_ratings.txt")[0]) == len(ratings)


def test_missing_companion_is_a_config_error(ml100k: Path) -> None:
    (ml100k / "u.item").unlink()
    with pytest.raises(ConfigError, match="u.item"):
        read_movielens(ml100k)


def test_not_movielens(tmp_path: Path) -> None:
    bad = tmp_path / "u.data"
    bad.write_text("this is\tnot a\tratings file\n")
    (tmp_path / "u.user").write_text("")
    with pytest.raises(ConfigError, match="u.data"):
        read_movielens(bad)
    with pytest.raises(ConfigError, match="no MovieLens ratings"):
        read_movielens(tmp_path / "..")
    with pytest.raises(ConfigError, match="unknown data spec"):
        open_data("movielens")


@pytest.mark.realdata
def test_real_movielens_100k_split(shared_data: Path) -> None:
    data = open_data(f"movielens:{shared_data / 'movielens-100k'}")
    assert (len(data.train_index), len(data.eval_index)) == (80003, 19997)  # BASELINES.md
    assert data.schema.streams["rated"].vocab == data.schema.sparse["item"]
