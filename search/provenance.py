"""Provenance of an exported config: where it came from and what it was measured on."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("kunlun-search", "torch", "triton", "numpy", "optuna", "ray", "pyyaml")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def data_fingerprint(spec: str, seed: int, examples: int) -> str:
    """sha256 of the data: of its files for a real dataset, of the generator's parameters for synthetic data."""
    h = hashlib.sha256()
    kind, _, path = spec.partition(":")
    if kind == "synthetic" or not path:  # synthetic:MODE names its generator, not a file
        h.update(f"{spec}:seed={seed}:examples={examples}".encode())
        return h.hexdigest()
    root = Path(path).expanduser()
    files = sorted(p for p in (root.rglob("*") if root.is_dir() else [root]) if p.is_file())
    for f in files:
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def provenance(info: Any, trial: Any, config: Any) -> dict[str, Any]:
    a = trial.user_attrs
    t = config.train
    return {
        "study": info.name, "trial": trial.number, "space": info.space, "budget": info.budget,
        "budget_kind": info.budget_kind,
        "metrics": {k: a.get(k) for k in ("ne", "auc", "logloss", "examples_per_second")},
        "flops": {k: a.get(k) for k in ("train_flops_per_example", "fwd_flops_per_example", "seq_share",
                                        "sequence_flops", "context_flops", "params_dense", "params_sparse",
                                        "b200_us_per_example", "predicted_mfu")},
        "data": t.data, "data_fingerprint": data_fingerprint(t.data, t.data_seed, t.data_examples),
        "seeds": {"study": info.seed, "data": t.data_seed, "init": t.seed},
        "versions": versions(), "git_commit": git_commit(),
    }
