"""Timing and memory measurement shared by the benchmark scripts: triton.testing.do_bench (median of CUDA-event
timings, L2 flushed between runs) on a GPU, a wall-clock median on CPU (smoke runs only, not results)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def measure_ms(fn: Callable[[], object], device: str, grad_to_none=None, quick: bool = False) -> float:
    if device == "cuda":
        import triton.testing

        warmup, rep = (5, 20) if quick else (25, 100)
        return float(triton.testing.do_bench(fn, warmup=warmup, rep=rep, grad_to_none=grad_to_none,
                                             return_mode="median"))
    fn()
    times = []
    for _ in range(1 if quick else 5):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def reset_peak_memory(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gb(device: str) -> float | None:
    """Peak allocated CUDA memory since the last reset, in GB (1e9 bytes); None on CPU."""
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 1e9
