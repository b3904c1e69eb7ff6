"""Datasheet numbers of the GPUs we price and benchmark on, and detection of the one we run on.

Peaks are dense (no 2:4 sparsity): NVIDIA's datasheets quote sparse tensor throughput, so each value here is
half the sparse figure. Bytes are decimal (1 GB = 1e9 B, 1 TB/s = 1e12 B/s), as on the datasheets.
Special-function (MUFU: exp2, rsqrt, sin, ...) throughput is not on any datasheet: it is 16 ops/clock/SM on
Hopper and Blackwell (CUDA C Programming Guide, arithmetic instruction throughput table) times SMs times the
boost clock, which is how softmax's exp becomes the bottleneck on B200 (KUNLUN.md section 5).
`detect()` never guesses: a GPU not in the table (or a MIG slice, whose peaks are a fraction) is "unknown".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

UNKNOWN = "unknown"
MUFU_OPS_PER_CLOCK_PER_SM = 16


@dataclass(frozen=True)
class GPUSpec:
    name: str
    aliases: tuple[str, ...]
    bf16_flops: float  # dense tensor-core FLOP/s; fp16 is the same
    fp8_flops: float
    tf32_flops: float
    hbm_bandwidth: float  # B/s
    memory_bytes: float
    sm_count: int
    boost_clock_hz: float
    source: str

    @property
    def mufu_ops(self) -> float:
        """Special-function evaluations per second (see the module docstring)."""
        return MUFU_OPS_PER_CLOCK_PER_SM * self.sm_count * self.boost_clock_hz

    @property
    def ridge(self) -> float:
        """FLOP per byte where bf16 compute and HBM bandwidth take equally long."""
        return self.bf16_flops / self.hbm_bandwidth

    def peak_flops(self, dtype: torch.dtype) -> float:
        """Dense tensor-core peak for matmuls in `dtype` (fp32 runs on tensor cores as tf32)."""
        if dtype in (torch.bfloat16, torch.float16):
            return self.bf16_flops
        if dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            return self.fp8_flops
        if dtype == torch.float32:
            return self.tf32_flops
        raise ValueError(f"no tensor-core peak for {dtype}")


_B200_SOURCE = ("NVIDIA HGX B200 datasheet (8-GPU totals / 8: 36 PF bf16, 72 PF fp8, 18 PF tf32 sparse; "
                "1.44 TB, 64 TB/s), 148 SMs, 1.965 GHz boost")
GPUS: tuple[GPUSpec, ...] = (
    GPUSpec("B200 HGX (1000 W)", ("b200", "b200-hgx"), 2.25e15, 4.5e15, 1.125e15, 8.0e12, 180e9, 148, 1.965e9,
            _B200_SOURCE),
    GPUSpec("B200 in GB200 (1200 W)", ("gb200",), 2.5e15, 5.0e15, 1.25e15, 8.0e12, 186e9, 148, 1.965e9,
            "NVIDIA GB200 NVL72 datasheet (72-GPU totals / 72: 360 PF bf16, 720 PF fp8, 180 PF tf32 sparse; "
            "13.4 TB, 576 TB/s), 148 SMs; boost clock assumed equal to HGX B200's"),
    GPUSpec("H100 SXM", ("h100", "h100-sxm"), 989.4e12, 1978.9e12, 494.7e12, 3.35e12, 80e9, 132, 1.98e9,
            "NVIDIA H100 Tensor Core GPU datasheet, SXM column (1,979 TF bf16, 3,958 TF fp8, 989 TF tf32 "
            "sparse; 80 GB, 3.35 TB/s), 132 SMs, 1.98 GHz boost"),
    GPUSpec("H100 PCIe", ("h100-pcie",), 756.5e12, 1513e12, 378e12, 2.0e12, 80e9, 114, 1.755e9,
            "NVIDIA H100 Tensor Core GPU datasheet, PCIe column (1,513 TF bf16, 3,026 TF fp8, 756 TF tf32 "
            "sparse; 80 GB, 2 TB/s), 114 SMs, 1.755 GHz boost"),
    GPUSpec("H200 SXM", ("h200", "h200-sxm"), 989.4e12, 1978.9e12, 494.7e12, 4.8e12, 141e9, 132, 1.98e9,
            "NVIDIA H200 Tensor Core GPU datasheet, SXM column (1,979 TF bf16, 3,958 TF fp8, 989 TF tf32 "
            "sparse; 141 GB, 4.8 TB/s), 132 SMs, 1.98 GHz boost"),
)

# torch.cuda.get_device_name() strings, most specific first. Variants with other clocks or power (H100 NVL,
# H200 NVL) and MIG slices are deliberately absent, so they come out unknown.
_DEVICE_NAMES: tuple[tuple[str, str], ...] = (
    (r"\bmig\b", UNKNOWN),
    (r"\bnvl\b", UNKNOWN),
    (r"\bgb200\b", "gb200"),
    (r"\bb200\b", "b200"),
    (r"\bh200\b", "h200"),
    (r"\bh100\b.*\bpcie\b", "h100-pcie"),
    (r"\bh100\b.*\b(sxm\d?|hbm3)\b", "h100"),
)


def lookup(name: str) -> GPUSpec:
    """A spec by its name or an alias, case-insensitive."""
    key = name.strip().lower()
    for spec in GPUS:
        if key == spec.name.lower() or key in spec.aliases:
            return spec
    raise KeyError(f"unknown GPU {name!r}; known: {[a for s in GPUS for a in s.aliases]}")


def detect(device_name: str | None = None) -> GPUSpec | str:
    """The spec of `device_name` (default: the current CUDA device), or UNKNOWN."""
    if device_name is None:
        if not torch.cuda.is_available():
            return UNKNOWN
        device_name = torch.cuda.get_device_name()
    name = device_name.lower()
    for pattern, alias in _DEVICE_NAMES:
        if re.search(pattern, name):
            return UNKNOWN if alias == UNKNOWN else lookup(alias)
    return UNKNOWN
