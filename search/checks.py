"""Checks that run before a command starts work (DESIGN.md "CLI"): bad input exits 2 with one message naming the
file, the key path and what is allowed, and nothing is created or half-written. A command calls these at the top
of its `run`, before it creates a folder, opens a study for writing or trains anything.

optuna is imported lazily (only where a storage is opened).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

from kunlun.model.yamlio import ConfigError
from kunlun.search.errors import UsageError, one_line

SQLITE_MAGIC = b"SQLite format 3\x00"
BUDGET_SAMPLES = 128  # allocations sampled to find what budgets a space can land on
TIME_SAMPLES = 16  # the same for a B200-time budget (each solve is a search over FLOPs)


# -- command-line numbers ------------------------------------------------------------------------------------------
def at_least(flag: str, value: float | None, low: float, *, strict: bool = False) -> None:
    """`flag` (when given) must be >= low (> low with strict)."""
    if value is None:
        return
    if (value <= low) if strict else (value < low):
        raise UsageError(f"{flag} must be {'>' if strict else '>='} {low:g}, got {value:g}")


def check_out(out: Path | None, flag: str = "--out") -> None:
    """An output folder: new (its nearest existing parent a folder we may write in), or an existing folder we may
    write in; never a file, nor a path through a file."""
    if out is not None:
        _check_writable(out, flag, folder=True)


def check_output_file(path: Path, flag: str) -> None:
    """An output file: new or overwritten, in a folder that exists or can be made; never a folder."""
    _check_writable(path, flag, folder=False)


def _check_writable(path: Path, flag: str, folder: bool) -> None:
    allowed = "a new folder or an existing one" if folder else "a file path"
    if path.is_dir() and not folder:
        raise UsageError(f"{flag}: {path} is a folder (allowed: {allowed})")
    if path.exists() and not path.is_dir() and folder:
        raise UsageError(f"{flag}: {path} is a file (allowed: {allowed})")
    parent = path if path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{flag}: {path} goes through {parent}, a file (allowed: {allowed})")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag}: {path}: {parent} is not writable (allowed: {allowed} where we may write)")


def make_folder(path: Path, flag: str) -> None:
    """mkdir -p, with a refusal (a read-only or virtual file system such as /proc or /sys: no permission check
    sees those as root) as bad input. Call it where the command writes first, so nothing else is written yet."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{flag}: cannot create {path} ({e.strerror or e})") from None


def check_backend(args: argparse.Namespace) -> None:
    if getattr(args, "address", None) and args.backend != "ray":
        raise UsageError(f"--address {args.address} needs --backend ray (the optuna backend runs on this machine)")


def check_search_args(args: argparse.Namespace) -> None:
    """`kunlun search`: the flags alone, before the space is loaded."""
    for flag, value, low in (("--trials", args.trials, 1), ("--workers", args.workers, 1),
                             ("--examples", args.examples, 1), ("--samples", args.samples, 1),
                             ("--seed", args.seed, 0), ("--gpus-per-trial", args.gpus_per_trial, 0),
                             ("--warm-start-top", args.warm_start_top, 1)):
        at_least(flag, value, low)
    at_least("--cpus-per-trial", args.cpus_per_trial, 0, strict=True)
    if args.budget is not None:
        check_budget_flag("--budget", args.budget)
    check_backend(args)
    check_out(args.out)
    if args.storage is not None:
        check_storage(args.storage, "--storage")


def check_search(args: argparse.Namespace, space: Any) -> None:
    """`kunlun search`, once the space is loaded (after --dry-run, which reports feasibility itself): the budget
    can be met, and the storage can hold the study."""
    check_budget(space, "--budget" if args.budget else "budget.value")
    out = args.out or Path("results") / study_name(space, args.family)
    if args.resume and (out / "study.json").is_file():
        check_study_folder(out)
        from kunlun.search.store import StudyInfo

        recorded = StudyInfo.read(out).storage
        if args.storage is not None and _same_storage(args.storage) != _same_storage(recorded):
            raise UsageError(f"--storage {args.storage}: the study in {out} lives in {recorded} (its study.json); "
                             "leave --storage out with --resume")
    elif args.storage is not None and not args.resume:
        name = study_name(space, args.family)
        if name in study_names(args.storage, "--storage"):
            raise UsageError(f"--storage {args.storage} already holds a study {name!r}: continue it with --resume "
                             f"--out FOLDER (the folder with its study.json), or choose another --storage")


def study_name(space: Any, family: str | None) -> str:
    """The study name `kunlun search` gives a new study (its default --out folder name)."""
    from kunlun.search.store import budget_tag

    spec = space.spec
    return f"{spec.name}-{budget_tag(spec.budget.amount)}" + (f"-{family}" if family else "")


# -- budgets --------------------------------------------------------------------------------------------------------
def check_budget_flag(flag: str, value: str, kind: str | None = None) -> float:
    """A budget given on the command line: a positive number of FLOPs per example or a B200 time."""
    from kunlun.space.budget import parse_budget

    try:
        return parse_budget(value, flag, kind)
    except ConfigError:
        allowed = "FLOPs per training example (2.5e9, 2.5G)" + ("" if kind == "flops" else
                                                                 " or B200 time per example (40us, 1.5ms)")
        raise UsageError(f"{flag}: {value!r} is not a budget (allowed: a positive {allowed})") from None


def budget_reach(space: Any, budget: float | None = None, samples: int = BUDGET_SAMPLES) -> tuple[bool, float, float,
                                                                                                    list[str]]:
    """(some sampled allocation lands on the budget, smallest and largest budget the sampled structures can reach,
    reasons of invalid structures). Stops at the first allocation that lands (the usual case: one solve). For a
    B200-time budget the range is the predicted time of each structure's narrowest and widest config (approximate:
    time is not exactly monotone in width)."""
    from kunlun.space.space import RandomTrial
    from kunlun.space.time_solver import TimeBudgetSolver, solver_for

    solver = solver_for(space, budget)
    timed = isinstance(solver, TimeBudgetSolver)
    lo, hi, invalid = math.inf, 0.0, []
    for i in range(TIME_SAMPLES if timed else samples):
        alloc = space.sample(RandomTrial(space.spec.seed * 100003 + i))
        solution = solver.solve(alloc)
        if solution.feasible:
            return True, lo, hi, invalid
        if timed:
            ends = solver.extremes(alloc)
            try:
                reach = None if ends is None else (solver.time_us(ends[0]), solver.time_us(ends[1]))
            except Exception:  # an end the cost model cannot price: no range from this structure
                continue
        else:
            reach = solver.reach(alloc)
        if reach is None:
            invalid.append(solution.reason or "invalid structure")
            continue
        lo, hi = min(lo, *reach), max(hi, *reach)
    return False, lo, hi, invalid


def check_budget(space: Any, key: str, budget: float | None = None) -> None:
    """A budget no config of the space can meet is bad input: say the smallest and largest feasible ones. (A budget
    inside that range where no sampled allocation happens to land is left to the search: `--dry-run` tells.)"""
    amount = float(budget if budget is not None else space.spec.budget.amount)
    tol = space.spec.budget.tolerance
    ok, lo, hi, invalid = budget_reach(space, amount)
    if ok:
        return
    if lo == math.inf:
        raise ConfigError("params", f"no sampled config of this space is valid (the first: {invalid[0]})",
                          space.source)
    if amount * (1 + tol) < lo or amount * (1 - tol) > hi:
        if space.spec.budget.kind == "b200_time":
            what, about, unit = f"{amount:.4g}us per example of predicted B200 time", "about ", "us"
        else:
            what, about, unit = f"{amount:.4g} training FLOPs/example", "", ""
        raise ConfigError(key, f"no config of this space lands on {what} (within {tol:.0%}): allowed budgets lie "
                          f"between {about}{lo:.4g}{unit} (the smallest feasible) and {hi:.4g}{unit} (the largest)",
                          space.source)


# -- storages and study folders ------------------------------------------------------------------------------------
def _file_of(url: str, prefix: str) -> Path:
    return Path(url[len(prefix):].split("?", 1)[0]).expanduser()


def _same_storage(url: str) -> str:
    """A storage URL with a file path made absolute, to compare two spellings of one storage."""
    for prefix in ("sqlite:///", "journal:"):
        if url.startswith(prefix):
            return prefix + str(_file_of(url, prefix).resolve())
    return url


def check_storage(url: str, key: str, file: str | Path | None = None, existing: bool = False) -> None:
    """A storage URL that can be opened: an SQLite file (new, in an existing folder, or an SQLite database), a
    journal file (new, or one Optuna wrote), a database server we reach with its driver installed. `existing`: the
    storage must already be there (a study folder's), so nothing is created by looking."""
    from kunlun.search.store import storage_url

    try:
        storage_url(url, Path("."))
    except ConfigError as e:
        raise ConfigError(key, e.message, file) from None
    if url.startswith("sqlite:///"):
        path = _file_of(url, "sqlite:///")
        _check_file(path, url, key, file, existing)
        if path.is_file() and path.stat().st_size > 0:
            with path.open("rb") as f:
                if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                    raise ConfigError(key, f"{path} is not an SQLite database (allowed: a new file, or the SQLite "
                                      "file of a study)", file)
        return
    if url.startswith("journal:"):
        path = _file_of(url, "journal:")
        _check_file(path, url, key, file, existing)
        if path.is_file():
            with path.open("rb") as f:
                first = f.readline()
            try:
                if first.strip():
                    json.loads(first)
            except ValueError:
                raise ConfigError(key, f"{path} is not an Optuna journal (a file of JSON lines; allowed: a new file, "
                                  "or the journal of a study)", file) from None
        return
    _check_driver(url, key, file)
    _open(url, key, file)


def _check_file(path: Path, url: str, key: str, file: str | Path | None, existing: bool) -> None:
    if path.is_dir():
        raise ConfigError(key, f"{url}: {path} is a folder (allowed: a file)", file)
    if not path.exists():
        if existing:
            raise ConfigError(key, f"{url}: {path} does not exist (the study's storage is gone)", file)
        if not path.parent.is_dir():
            raise ConfigError(key, f"{url}: folder {path.parent} does not exist (allowed: a file in an existing "
                              "folder)", file)


def _check_driver(url: str, key: str, file: str | Path | None) -> None:
    try:
        from sqlalchemy.engine import make_url

        make_url(url).get_dialect().import_dbapi()
    except ImportError as e:
        raise ConfigError(key, f"{url}: the database driver is not installed ({e}; for PostgreSQL: pip install "
                          "'kunlun-search[postgres]')", file) from None
    except Exception as e:  # an unknown dialect or a malformed URL
        raise ConfigError(key, f"{url} is not a storage URL we can open ({one_line(str(e))})", file) from None


def _open(url: str, key: str, file: str | Path | None) -> Any:
    from kunlun.search.store import open_storage

    try:
        return open_storage(url)
    except Exception as e:  # a server that refuses us, a file that is not a database: the user's input
        raise ConfigError(key, f"cannot open {url}: {one_line(str(e))}", file) from None


def study_names(url: str, key: str, file: str | Path | None = None) -> list[str]:
    """The studies a storage holds ([] for an SQLite or journal file that does not exist yet: nothing is created)."""
    for prefix in ("sqlite:///", "journal:"):
        if url.startswith(prefix) and not _file_of(url, prefix).is_file():
            return []
    storage = _open(url, key, file)
    try:
        return [s.study_name for s in storage.get_all_studies()]
    except Exception as e:
        raise ConfigError(key, f"cannot read {url}: {one_line(str(e))}", file) from None


def check_study_folder(folder: Path) -> None:
    """A study folder that `pareto`, `export` and `search --resume` can read: study.json, and a storage that exists
    and holds the study it names (opening a missing SQLite file would create an empty one: it is not opened)."""
    from kunlun.search.store import STUDY_JSON, StudyInfo

    info = StudyInfo.read(folder)
    file = folder / STUDY_JSON
    if not isinstance(info.storage, str) or not isinstance(info.name, str):
        raise ConfigError("storage", "storage and name must be strings", file)
    check_storage(info.storage, "storage", file, existing=True)
    names = study_names(info.storage, "storage", file)
    if info.name not in names:
        raise ConfigError("name", f"{info.storage} holds no study {info.name!r} (it holds: "
                          f"{', '.join(map(repr, names)) or 'none'})", file)


def check_study_folders(root: Path) -> list[Path]:
    """`root` is a study folder or a folder of them (each checked); returns them."""
    from kunlun.search.front import study_folders

    folders = study_folders(root)
    for folder in folders:
        check_study_folder(folder)
    return folders
