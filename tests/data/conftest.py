"""Small dataset files in the real layouts, written into tmp_path (the real files may not be
redistributed)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

GENRE_FLAGS = {1: "0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0", 2: "0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0",
               3: "0|0|0|0|0|0|0|0|1|0|0|0|0|0|1|0|0|0|0", 4: "0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|1|0|0"}

# user, item, rating, ts: ties on time within user 1 (ts 100 twice); user 3 only rates late.
RATINGS = [(1, 1, 5, 100), (1, 2, 3, 100), (1, 3, 4, 200), (1, 4, 1, 300), (1, 2, 4, 400),
           (2, 1, 4, 50), (2, 3, 2, 150), (2, 4, 5, 250), (2, 2, 5, 350),
           (3, 1, 1, 500), (3, 4, 5, 600)]


@pytest.fixture
def ratings() -> list[tuple[int, int, int, int]]:
    return list(RATINGS)


@pytest.fixture
def taobao_rows() -> list[str]:
    return list(TAOBAO_ROWS)


@pytest.fixture
def ml100k(tmp_path: Path) -> Path:
    d = tmp_path / "ml-100k"
    d.mkdir()
    (d / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS))
    (d / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|17|M|student|32067\n")
    (d / "u.item").write_bytes("".join(
        f"{i}|Film {i} (199{i})|01-Jan-199{i}||http://x/{i}|{GENRE_FLAGS[i]}\n" for i in GENRE_FLAGS
    ).replace("Film 2", "Les Misérables").encode("latin-1"))
    return d


@pytest.fixture
def ml1m(tmp_path: Path) -> Path:
    d = tmp_path / "ml-1m"
    d.mkdir()
    with gzip.open(d / "ratings.dat.gz", "wt", encoding="latin-1") as f:
        f.write("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in RATINGS))
    (d / "users.dat").write_bytes(b"1::M::25::15::85711\n2::F::50::1::94043\n3::M::1::10::32067\n")
    (d / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Misérables, Les (1995)::Action|Adventure|Thriller\n"
        "3::Crème (1996)::Drama|Romance\n4::Heat (1995)::Action|Sci-Fi|Thriller\n".encode("latin-1"))
    return d


TAOBAO_ROWS = [
    "1,10,100,pv,1000", "1,11,100,pv,1000", "1,10,100,cart,1000", "1,12,101,pv,1100", "1,10,100,buy,1200",
    "2,10,100,pv,900", "2,13,102,fav,950", "2,13,102,pv,1300", "2,14,102,pv,1400", "3,15,103,pv,1500",
]


@pytest.fixture
def taobao_csv(tmp_path: Path) -> Path:
    p = tmp_path / "UserBehavior.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write("\n".join([*TAOBAO_ROWS, "3,16,103,pv"]))  # the cut-off last line, no newline
    return p
