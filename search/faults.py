"""Trial faults made on purpose: the host memory cap that turns a runaway allocation into a failed trial, and the
test-only fault injection.

`KUNLUN_TRIAL_MEMORY=SIZE` (e.g. 4G, 512M, bytes) caps the host memory of each process that runs trials (worker
processes, Ray workers; with it the optuna backend always runs its trials in worker processes): RLIMIT_DATA, so an
allocation past the cap fails inside the trial instead of the kernel killing the process.

`KUNLUN_FAULTS` is test-only fault injection, inert unless set: a comma-separated list of KIND@N, each firing once
in trial number N (then a marker file `fault-KIND` in the trial folder holds the pid of the process running the
trial; a trial that Ray re-runs after a crash runs clean):
  crash@N   the process running trial N kills itself (SIGKILL) after sampling: the search with --workers 1, a worker
            process, a Ray worker
  slow@N:S  trial N sleeps S seconds (default 30) after sampling (its heartbeats go on): time to kill the search
  raise@N   trial N raises RuntimeError("injected fault")
  nan@N     trial N's training loss is NaN from its second step (`poison_loss`)
  oom@N     trial N runs out of GPU memory (on CUDA: allocates twice the GPU; on CPU: raises
            torch.OutOfMemoryError, as a full GPU does)
  hog@N     trial N allocates twice KUNLUN_TRIAL_MEMORY of host memory at once (needs the cap)
"""

from __future__ import annotations

import os
import resource
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MEMORY_ENV = "KUNLUN_TRIAL_MEMORY"
FAULTS_ENV = "KUNLUN_FAULTS"
FAULT_KINDS = ("crash", "slow", "raise", "nan", "oom", "hog")


def memory_cap() -> int | None:
    """Bytes from KUNLUN_TRIAL_MEMORY (4G, 512M, 100K or bytes), None when unset."""
    raw = os.environ.get(MEMORY_ENV, "").strip()
    if not raw:
        return None
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(raw[-1].upper(), 1)
    try:
        value = float(raw[:-1] if scale > 1 else raw) * scale
    except ValueError:
        value = 0
    if value <= 0:
        from kunlun.model.yamlio import ConfigError

        raise ConfigError(MEMORY_ENV, f"{raw!r} is not a memory size (e.g. 4G, 512M)")
    return int(value)


def apply_memory_cap() -> int | None:
    """Cap this process's data segment (RLIMIT_DATA: heap and anonymous mappings) at KUNLUN_TRIAL_MEMORY; call it
    in a process that only runs trials. Returns the cap."""
    cap = memory_cap()
    if cap is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        resource.setrlimit(resource.RLIMIT_DATA, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    return cap


def injected_faults(number: int, folder: Path) -> list[tuple[str, str]]:
    """The faults KUNLUN_FAULTS injects into trial `number` (each once per trial folder); [] when unset."""
    raw = os.environ.get(FAULTS_ENV, "").strip()
    if not raw:
        return []
    out = []
    for item in raw.split(","):
        kind, _, rest = item.strip().partition("@")
        target, _, arg = rest.partition(":")
        if kind not in FAULT_KINDS or not target.isdigit():
            raise ValueError(f"{FAULTS_ENV}: {item!r} is not KIND@TRIAL (kinds: {', '.join(FAULT_KINDS)})")
        if int(target) == number and not (folder / f"fault-{kind}").exists():
            out.append((kind, arg))
    return out


def fire(kind: str, arg: str, folder: Path, log: Callable[[str], None]) -> None:
    """Set off one injected fault (nan only marks itself here: `poison_loss` does its work in training)."""
    (folder / f"fault-{kind}").write_text(f"{os.getpid()}\n")  # the pid of the process running the trial
    log(f"injected fault: {kind}")
    if kind == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "slow":
        time.sleep(float(arg or 30))
    elif kind == "raise":
        raise RuntimeError("injected fault")
    elif kind == "oom":
        import torch

        if torch.cuda.is_available():  # a real one: more than the GPU holds
            torch.empty(2 * torch.cuda.mem_get_info()[1], dtype=torch.uint8, device="cuda")
        raise torch.OutOfMemoryError("CUDA out of memory (injected fault)")
    elif kind == "hog":
        import torch

        cap = memory_cap()
        if cap is None:
            raise ValueError(f"hog needs {MEMORY_ENV}")
        hog = torch.empty(2 * cap, dtype=torch.uint8)  # past the cap: the allocator refuses
        hog.fill_(1)


def poison_loss(model: Any) -> None:
    """The nan fault: the model's loss is NaN from its second step."""
    loss, steps = model.loss, [0]

    def poisoned(batch: Any) -> Any:
        steps[0] += 1
        value = loss(batch)
        return value * float("nan") if steps[0] >= 2 else value

    model.loss = poisoned
