"""A study folder (DESIGN.md "Results"): storage URLs, study.json, trials.csv, and the Optuna study itself.

Liveness of RUNNING trials (a `kill -9` leaves them behind): the process that claims a trial keeps it alive with a
`Lease` until it tells the outcome. SQL storages use Optuna's own heartbeat (`RDBStorage(heartbeat_interval=...,
grace_period=...)`); the journal storage has none in Optuna 5, so there the lease is ours: the system attr
`kunlun:lease` holds the time of the owner's last beat. `fail_stale` turns a RUNNING trial whose beats stopped for
longer than the grace period into FAIL with `fail_reason` "interrupted: ..." and queues one retry of it (a WAITING
trial with the same params, Optuna's `failed_trial` / `retry_history` system attrs; at most MAX_RETRIES per original
trial). `KUNLUN_HEARTBEAT=INTERVAL[,GRACE]` (seconds, default 10,60) sets both; tests use 1 s.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import socket
import threading
import time
import warnings
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
    interval, grace = heartbeat()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}}
                                          if url.startswith("sqlite") else {},
                                          heartbeat_interval=interval, grace_period=grace)


HEARTBEAT_ENV = "KUNLUN_HEARTBEAT"
DEFAULT_HEARTBEAT = (10, 60)
LEASE = "kunlun:lease"  # system attr: unix time of the last beat (journal) or of the claim (SQL storages)
OWNER = "kunlun:owner"  # system attr: [host, pid, start time] of the process that claimed the trial
MAX_RETRIES = 2  # retries of one interrupted trial (a trial that kills its process every time is given up)


def heartbeat() -> tuple[int, int]:
    """(interval, grace period) in seconds, from KUNLUN_HEARTBEAT=INTERVAL[,GRACE] (GRACE default 3 x INTERVAL)."""
    raw = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT
    try:
        parts = [int(x) for x in raw.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts.append(3 * parts[0])
    if len(parts) != 2 or not 0 < parts[0] < parts[1]:
        raise ConfigError(HEARTBEAT_ENV, f"{raw!r} is not INTERVAL[,GRACE] in whole seconds with "
                          "0 < INTERVAL < GRACE (e.g. 10,60)")
    return parts[0], parts[1]


def _heartbeat_enabled(storage: Any) -> bool:
    return getattr(storage, "get_heartbeat_interval", lambda: None)() is not None


def ask(study: Any) -> Any:
    """study.ask() without Optuna's warning that heartbeats are meant for Study.optimize (we keep them ourselves)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return study.ask()


class Lease:
    """Keeps this process's claimed trials alive in the storage, from a daemon thread, every INTERVAL seconds: when
    the process dies the beats stop and, after the grace period, `fail_stale` fails and retries its trials."""

    def __init__(self, study: Any):
        self.storage = study._storage
        self.interval = heartbeat()[0]
        self.ids: set[int] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles its searcher: a copy holds no trials, no thread
        return {"storage": self.storage}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(type("Study", (), {"_storage": state["storage"]}))

    def add(self, trial_id: int) -> None:
        if _heartbeat_enabled(self.storage):
            self.storage.record_heartbeat(trial_id)  # before the marker: a marked trial always has a heartbeat
        self.storage.set_trial_system_attr(trial_id, LEASE, time.time())
        self.storage.set_trial_system_attr(trial_id, OWNER, this_process())
        with self.lock:
            self.ids.add(trial_id)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="kunlun-lease", daemon=True)
                self.thread.start()

    def remove(self, trial_id: int) -> None:
        with self.lock:
            self.ids.discard(trial_id)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                ids = list(self.ids)
            for trial_id in ids:
                try:
                    if _heartbeat_enabled(self.storage):
                        self.storage.record_heartbeat(trial_id)
                    else:
                        self.storage.set_trial_system_attr(trial_id, LEASE, time.time())
                except Exception:  # finished meanwhile, or a storage hiccup: the next beat tries again
                    pass


def _started(pid: int) -> int | None:
    """Start time of process `pid` (clock ticks after boot, /proc/PID/stat), None when there is none, or it is a
    zombie (it runs no more code)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def this_process() -> list[Any]:
    return [socket.gethostname(), os.getpid(), _started(os.getpid())]


def owner_gone(owner: Any) -> bool:
    """The process that claimed a trial is provably gone: it ran on this host, and no live process has its pid and
    start time (a reused pid has another start time). A process on another host cannot be checked: False."""
    if not isinstance(owner, list) or len(owner) != 3 or owner[0] != socket.gethostname():
        return False
    started = _started(owner[1])
    return started is None or (owner[2] is not None and started != owner[2])


def fail_stale(study: Any, owners: bool = False) -> list[int]:
    """FAIL (reason: interrupted) every RUNNING trial whose owner stopped beating more than the grace period ago, and
    queue a retry of each; returns their numbers. SQL storages: Optuna's heartbeat decides; journal storages, and
    any trial that never got a lease (its process died right after claiming it): the lease attr or the start time.
    `owners` (a search starting with --resume): also, at once, every trial whose claiming process is provably gone
    (owner_gone). Running workers leave that to the grace period: a worker process that dies is the search's to
    diagnose (local.run_local: killed by which signal)"""
    from optuna.trial import TrialState

    storage = study._storage
    grace = heartbeat()[1]
    stale: set[int] = set()
    sql = _heartbeat_enabled(storage)
    if sql:
        stale.update(storage._get_stale_trial_ids(study._study_id))  # BaseHeartbeat's interface
    now = time.time()
    gone = set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owners and owner_gone(t.system_attrs.get(OWNER)):  # no need to wait for the grace period
            gone.add(t._trial_id)
            continue
        lease = t.system_attrs.get(LEASE)
        if sql and lease is not None:
            continue
        last = lease if lease is not None else (t.datetime_start.timestamp() if t.datetime_start else now)
        if now - last > grace:
            stale.add(t._trial_id)
    reasons = {**dict.fromkeys(stale, f"interrupted: no heartbeat for {grace} s (its process died)"),
               **dict.fromkeys(gone, "interrupted: the process that ran it is gone (same host)")}
    return [n for n in (fail_and_retry(study, i, reasons[i]) for i in sorted(reasons)) if n is not None]


def fail_and_retry(study: Any, trial_id: int, reason: str) -> int | None:
    """FAIL a RUNNING trial with `reason` and queue a retry (same params); its number, or None when it had finished
    meanwhile (another process got there first)."""
    import optuna
    from optuna.trial import TrialState

    storage = study._storage
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return None
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    trial = storage.get_trial(trial_id)
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) <= MAX_RETRIES:
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
            system_attrs={"failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                          "retry_history": history}))
    return trial.number


def is_retry(t: Any) -> bool:
    return "failed_trial" in t.system_attrs


def draws(study: Any) -> int:
    """Trials drawn so far (sampled or enqueued), retries not counted: the index of the next draw. A resumed study's
    draws are the uninterrupted study's: an interrupted trial and its retry are one draw."""
    trials = study.get_trials(deepcopy=False)
    return len(trials) - sum(map(is_retry, trials))


def seed_number(study: Any, trial: Any) -> int:
    """The draw index that fixes a trial's initialisation seed (a retry keeps its original's): the trial number when
    nothing was retried, and in a resumed study what it was in the uninterrupted one."""
    original = int(study._storage.get_trial_system_attrs(trial._trial_id).get("failed_trial", trial.number))
    return original - sum(is_retry(t) for t in study.get_trials(deepcopy=False) if t.number < original)


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
             "b200_us_per_example", "predicted_mfu", "measured_us_per_example", "measured_mfu", "measured_device",
             "examples_per_second", "seed", "family", "compskip", "windows",
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
        attrs = {**t.user_attrs, "predicted_mfu": percent(t.user_attrs.get("predicted_mfu"))}
        w.writerow([t.number, trial_status(t), start, seconds, *(_cell(attrs.get(a)) for a in CSV_ATTRS),
                    *(_cell(t.params.get(p)) for p in params)])
    _atomic_write(out / "trials.csv", buf.getvalue())


def finite(x: Any) -> Any:
    """JSON has no NaN or inf: a value undefined here (one seed: no spread; one class: no AUC) is null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [finite(v) for v in x]
    return x


def percent(fraction: float | None) -> float | None:
    """MFU and shares are stored as fractions (DESIGN.md's attrs) and shown in percent."""
    return None if fraction is None else 100 * fraction


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
