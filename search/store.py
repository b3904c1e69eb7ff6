"""A study folder (DESIGN.md "Results"): storage URLs, study.json, trials.csv, and the Optuna study itself."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kunlun.model.yamlio import ConfigError

STUDY_JSON = "study.json"
INFEASIBLE = "infeasible_reason"


@dataclass
class StudyInfo:
    name: str
    storage: str
    space: str  # preset name or YAML path
    budget: float
    budget_kind: str
    families: list[str]
    objectives: list[str]
    seed: int
    trials: int
    data: str
    backend: str = "optuna"
    sampler: str = "auto"
    overrides: dict[str, Any] = field(default_factory=dict)  # command-line overrides applied to the space

    def write(self, out: Path) -> None:
        _atomic_write(out / STUDY_JSON, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, out: Path) -> StudyInfo:
        path = out / STUDY_JSON
        if not path.is_file():
            raise ConfigError("", f"not a study folder (no {STUDY_JSON})", out)
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as e:
            raise ConfigError("", f"unreadable ({e})", path) from None


def budget_tag(value: float) -> str:
    """2.5e9 -> '2.5G': the budget part of a study name."""
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def storage_url(arg: str | None, out: Path) -> str:
    if arg is None:
        return f"sqlite:///{(out / 'study.db').resolve()}"
    if arg.startswith(("sqlite:///", "journal:", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://",
                       "mysql://", "mysql+pymysql://")):
        return arg
    raise ConfigError("--storage", f"{arg!r} is not a storage URL (allowed: sqlite:///PATH, journal:PATH, "
                      "postgresql://...)")


def open_storage(url: str) -> Any:
    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url[len("journal:"):]))
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}}
                                      if url.startswith("sqlite") else {})


def load_study(out: Path, info: StudyInfo | None = None) -> Any:
    import optuna

    info = info or StudyInfo.read(out)
    return optuna.load_study(study_name=info.name, storage=open_storage(info.storage))


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Serialises trial claims and trials.csv writes between the local worker processes."""
    with open(out / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


CSV_ATTRS = ("ne", "auc", "logloss", "train_flops_per_example", "fwd_flops_per_example", "seq_share",
             "sampled_seq_share", "sequence_flops", "context_flops", "params_dense", "params_sparse",
             "b200_us_per_example", "predicted_mfu", "examples_per_second", "seed", "family", "compskip", "windows",
             INFEASIBLE, "fail_reason")


def trial_status(t: Any) -> str:
    """complete | infeasible | pruned | fail | running | waiting."""
    name = t.state.name.lower()
    if name == "complete" and t.user_attrs.get(INFEASIBLE):
        return "infeasible"
    return name


FAILING_AFTER = 5


def failing(study: Any) -> str | None:
    """The last failure's reason when the first FAILING_AFTER finished trials all failed (a broken setup, not
    bad luck): the search stops instead of failing forever."""
    status = [trial_status(t) for t in study.get_trials(deepcopy=False)]
    if status.count("fail") < FAILING_AFTER or any(s in ("complete", "infeasible", "pruned") for s in status):
        return None
    last = [t for t in study.get_trials(deepcopy=False) if trial_status(t) == "fail"][-1]
    return last.user_attrs.get("fail_reason") or "unknown"


def write_trials_csv(study: Any, out: Path) -> None:
    trials = study.get_trials(deepcopy=False)
    params = sorted({p for t in trials for p in t.params})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["number", "status", "start", "seconds", *CSV_ATTRS, *(f"param.{p}" for p in params)])
    for t in trials:
        seconds = t.duration.total_seconds() if t.duration is not None else ""
        start = t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else ""
        w.writerow([t.number, trial_status(t), start, seconds, *(_cell(t.user_attrs.get(a)) for a in CSV_ATTRS),
                    *(_cell(t.params.get(p)) for p in params)])
    _atomic_write(out / "trials.csv", buf.getvalue())


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
