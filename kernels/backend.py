"""The one backend switch for every op: `auto` (Triton on CUDA tensors, reference on CPU), `reference`, `triton`.

`set_backend("reference")` or `with use_backend("reference"):` switches a whole model; an op's own `backend=` argument
overrides the switch for that call.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

BACKENDS = ("auto", "reference", "triton")
_current = "auto"


def get_backend() -> str:
    return _current


def set_backend(name: str) -> None:
    global _current
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    _current = name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def triton_interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def resolve(backend: str, tensor: torch.Tensor) -> str:
    """The implementation a call runs: `reference` or `triton`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = _current
    if backend == "auto":
        return "triton" if tensor.is_cuda else "reference"
    if backend == "triton" and not tensor.is_cuda and not triton_interpreting():
        raise RuntimeError("backend='triton' on CPU tensors needs TRITON_INTERPRET=1 (Triton has no CPU backend)")
    return backend
