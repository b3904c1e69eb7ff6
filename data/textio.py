"""Reading data files: `.gz` transparently (by magic bytes, not by name), companion files located with or
without `.gz`, rows parsed with malformed ones counted and skipped (a cut-off last line is normal in
dumps)."""

from __future__ import annotations

import gzip
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO, TypeVar

from kunlun.model.yamlio import ConfigError

T = TypeVar("T")
# A file with more malformed rows than this share is not in the expected format, rather than dirty.
MAX_MALFORMED_SHARE = 0.5


def open_text(path: Path, encoding: str = "utf-8") -> TextIO:
    try:
        with path.open("rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        raw = gzip.open(path, "rb") if gz else path.open("rb")  # noqa: SIM115 (closed by the wrapper)
    except OSError as e:
        raise ConfigError("", f"cannot be read ({e.strerror or e})", path) from None
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")


def find_companion(folder: Path, name: str, what: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise ConfigError("", f"missing companion file {name} (or {name}.gz) with the {what}", folder)


def strip_gz(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def parse_rows(path: Path, parse: Callable[[str], T], what: str,
               encoding: str = "utf-8") -> tuple[list[T], int]:
    """`parse(line)` returns a row or raises ValueError/IndexError; blank lines are ignored. Malformed rows
    are counted and skipped with one warning; a file without valid rows, or mostly malformed, is a
    ConfigError. Returns the rows and the number of malformed rows."""
    rows: list[T] = []
    bad, first_bad = 0, 0
    for lineno, line in _lines(path, encoding, what):
        if not line.strip():
            continue
        try:
            rows.append(parse(line.rstrip("\r\n")))
        except (ValueError, IndexError, KeyError):
            bad += 1
            first_bad = first_bad or lineno
    if not rows:
        raise ConfigError("", f"no valid row: not {what}", path)
    if bad > MAX_MALFORMED_SHARE * (bad + len(rows)):
        raise ConfigError("", f"{bad} of {bad + len(rows)} rows are malformed (first at line {first_bad}): "
                          f"not {what}", path)
    if bad:
        warnings.warn(f"{path}: skipped {bad} malformed row(s) (first at line {first_bad})", stacklevel=2)
    return rows, bad


def _lines(path: Path, encoding: str, what: str) -> Iterator[tuple[int, str]]:
    with open_text(path, encoding) as f:
        try:
            yield from enumerate(f, start=1)
        except UnicodeDecodeError as e:
            message = f"not {encoding} text ({e.reason} at byte {e.start}): not {what}"
            raise ConfigError("", message, path) from None
        except (OSError, EOFError) as e:  # a corrupt or truncated gzip stream
            raise ConfigError("", f"cannot be read ({e}): not {what}", path) from None
