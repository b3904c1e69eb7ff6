"""MovieLens reader: the 100K layout (`u.data`, `u.user`, `u.item`) and the 1M layout (`ratings.dat`,
`users.dat`, `movies.dat`, latin-1), detected from a folder or from the ratings file; `.gz` read
transparently.

Example = one rating; label = rating >= 4. Context: user, item, age bucket, gender, occupation, zip prefix,
genre combination, release year (sparse); genre flags and release year (dense). Streams: `rated` (every
earlier rating, side features: the rating and the genre combination) and `liked` (earlier ratings >= 4,
side: genre combination). A stream of the candidate movie's earlier ratings by anyone (`by: item`, as Taobao's
`audience`) was tried and left out: on the inner split it changed NE by less than the seed spread (0.8204 and
0.8205 with it over two seeds, 0.8194 without; kunlun-small, 60k examples), for a third stream's FLOPs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kunlun.data.events import EventTable, StreamSpec
from kunlun.data.textio import find_companion, open_text, parse_rows, strip_gz
from kunlun.model.yamlio import ConfigError

GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western")
AGE_BUCKETS = (18, 25, 35, 45, 50, 56)  # the 1M release's age codes; 100K ages are bucketed the same way
ENCODING = "latin-1"  # 1M `.dat` and 100K `u.item` are latin-1; the other files are ASCII
WHAT_RATINGS = "MovieLens ratings (user, item, rating 1-5, unix time)"


@dataclass
class User:
    age: int
    gender: int
    occupation: str
    zip_prefix: str


@dataclass
class Movie:
    genres: tuple[int, ...]  # 0/1 per GENRES entry
    year: int  # 0 when unknown


def read_movielens(path: Path) -> tuple[EventTable, int]:
    """(events, malformed rows skipped)."""
    ratings_file, layout = _locate(path)
    folder = ratings_file.parent
    if layout == "100k":
        ratings, bad = parse_rows(ratings_file, lambda s: _ints(s.split("\t"), 4), WHAT_RATINGS, ENCODING)
        users, _ = _table(find_companion(folder, "u.user", "user demographics"), _user_100k, "|", 5)
        movies, _ = _table(find_companion(folder, "u.item", "movie genres"), _movie_100k, "|", 24)
    else:
        ratings, bad = parse_rows(ratings_file, lambda s: _ints(s.split("::"), 4), WHAT_RATINGS, ENCODING)
        users, _ = _table(find_companion(folder, "users.dat", "user demographics"), _user_1m, "::", 5)
        movies, _ = _table(find_companion(folder, "movies.dat", "movie genres"), _movie_1m, "::", 3)
    r = np.asarray(ratings, dtype=np.int64)
    if not ((r[:, 2] >= 1) & (r[:, 2] <= 5)).all():
        raise ConfigError("", f"ratings outside 1-5: not {WHAT_RATINGS}", ratings_file)
    return _events(r, users, movies), bad


def _locate(path: Path) -> tuple[Path, str]:
    if path.is_dir():
        for name, layout in (("u.data", "100k"), ("ratings.dat", "1m")):
            for candidate in (path / name, path / f"{name}.gz"):
                if candidate.is_file():
                    return candidate, layout
        raise ConfigError("", "no MovieLens ratings file here (u.data for 100K, ratings.dat for 1M, "
                          "optionally .gz)", path)
    if not path.is_file():
        raise ConfigError("", "no such file or folder", path)
    name = strip_gz(path.name)
    if name == "u.data":
        return path, "100k"
    if name == "ratings.dat":
        return path, "1m"
    with open_text(path, ENCODING) as f:
        first = next((line for line in f if line.strip()), "")
    if "::" in first:
        return path, "1m"
    if "\t" in first:
        return path, "100k"
    raise ConfigError("", f"not {WHAT_RATINGS} in the 100K (tab) or 1M (::) layout", path)


def _ints(fields: list[str], n: int) -> list[int]:
    if len(fields) != n:
        raise ValueError(f"expected {n} fields")
    return [int(x) for x in fields]


def _table(path: Path, parse, sep: str, n: int) -> tuple[dict[int, object], int]:
    def row(line: str) -> tuple[int, object]:
        fields = line.split(sep)
        if len(fields) != n:
            raise ValueError(f"expected {n} fields")
        return int(fields[0]), parse(fields)

    rows, bad = parse_rows(path, row, f"a MovieLens {path.name} file", ENCODING)
    return dict(rows), bad


def _age_bucket(age: int) -> int:
    return int(np.searchsorted(AGE_BUCKETS, age, side="right"))


def _user_100k(f: list[str]) -> User:
    return User(_age_bucket(int(f[1])), int(f[2] == "F"), f[3], f[4][:3])


def _user_1m(f: list[str]) -> User:
    return User(_age_bucket(int(f[2])), int(f[1] == "F"), f[3], f[4][:3])


def _movie_100k(f: list[str]) -> Movie:
    flags = tuple(int(x) for x in f[5:24])
    m = re.search(r"(\d{4})$", f[2].strip())
    return Movie(flags, int(m.group(1)) if m else 0)


def _movie_1m(f: list[str]) -> Movie:
    names = set(f[2].split("|"))
    m = re.search(r"\((\d{4})\)\s*$", f[1])
    return Movie(tuple(int(g in names) for g in GENRES), int(m.group(1)) if m else 0)


def _events(r: np.ndarray, users: dict, movies: dict) -> EventTable:
    user, item, rating, ts = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
    unknown_user = User(-1, -1, "", "")
    unknown_movie = Movie((0,) * len(GENRES), 0)
    user_ids, ui = np.unique(user, return_inverse=True)
    item_ids, mi = np.unique(item, return_inverse=True)
    u = [users.get(int(x), unknown_user) for x in user_ids]
    m = [movies.get(int(x), unknown_movie) for x in item_ids]
    flags = np.asarray([mv.genres for mv in m], dtype=np.float32)[mi]
    combo = np.unique(np.asarray([mv.genres for mv in m]), axis=0, return_inverse=True)[1].reshape(-1)[mi]
    year = np.asarray([mv.year for mv in m], dtype=np.int64)[mi]
    sparse = {
        "user": user,
        "item": item,
        "age": np.asarray([x.age for x in u], dtype=np.int64)[ui],
        "gender": np.asarray([x.gender for x in u], dtype=np.int64)[ui],
        "occupation": _codes([x.occupation for x in u])[ui],
        "zip": _codes([x.zip_prefix for x in u])[ui],
        "genres": combo.astype(np.int64),
        "year": year,
    }
    known_year = np.where(year > 0, year, np.median(year)).astype(np.float32)
    dense = np.concatenate([flags, known_year[:, None]], axis=1)
    liked = rating >= 4
    return EventTable(
        user=user, ts=ts, item=item, labels=liked.astype(np.float32)[:, None], sparse=sparse, dense=dense,
        side={"rating": rating, "genres": combo.astype(np.int64)},
        streams={"rated": StreamSpec(np.ones(len(r), dtype=bool), ["rating", "genres"]),
                 "liked": StreamSpec(liked, ["genres"])},
        tasks=["like"],
    )


def _codes(values: list[str]) -> np.ndarray:
    return np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)[1].astype(np.int64)
