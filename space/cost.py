"""The GPU cost model: predicted training-step time, examples/s and MFU of a config on its workload.

Each op record of the FlopReport (DESIGN.md, "Budgets, solver, cost model") is priced as

    time = max(FLOPs / (peak * efficiency(kind, shape)), bytes / bandwidth, transcendentals / SFU rate) + launch

for the forward and, with its own FLOPs and twice the bytes, for the backward. Efficiencies come from
`efficiency.yaml` beside this file: per op kind and shape bucket, with the GPU, versions and date they were
measured on; the shipped table is a set of documented defaults until GPU rows (results/bench/kernels.csv) are
folded in with `calibrate`. B200 figures reuse Hopper-measured efficiencies against B200 peaks and are labelled
extrapolated. Ops outside the records (norms, gathers, elementwise) are not priced: the model is a lower bound
that ranks candidates, not a profiler.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
import statistics
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from kunlun.kernels.hardware import GPUS, GPUSpec, lookup
from kunlun.model.config import KunlunConfig, WorkloadConfig
from kunlun.model.count import count_flops
from kunlun.model.flops import FlopReport, OpRecord
from kunlun.model.yamlio import ConfigError, load_yaml_file

MEASURED_ON = ("h100", "h200")  # GPUs whose efficiencies we can measure; others are extrapolated
OPTIMIZER_BYTES_PER_PARAM = 2 + 4 + 8  # bf16 weight, fp32 master, two fp32 Adam moments


@dataclass
class EfficiencyTable:
    """Fraction of the dense bf16 peak an op reaches, by kind and by its smallest matmul dimension (head dim for
    gdpa)."""

    buckets: list[int]  # upper bounds of the smallest dimension; the last bucket is open
    kinds: dict[str, list[float]]  # kind -> one efficiency per bucket (len(buckets) + 1)
    launch_us: float
    source: str
    measured: bool
    gpu: str = ""
    date: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    measured_cells: list[str] = field(default_factory=list)  # "kind[bucket]" cells that come from measurements

    def efficiency(self, op: OpRecord) -> float:
        dims = op.shape[2:] if op.kind == "gdpa" else op.shape  # gdpa: (pairs, H, Dh), bucketed by Dh
        smallest = min(dims) if dims else 1.0
        index = next((i for i, b in enumerate(self.buckets) if smallest <= b), len(self.buckets))
        return self.kinds.get(op.kind, self.kinds["linear"])[index]


def default_table() -> EfficiencyTable:
    with resources.as_file(resources.files("kunlun.space") / "efficiency.yaml") as path:
        data = load_yaml_file(path)
    return EfficiencyTable(**data)


@dataclass
class CostReport:
    gpu: str
    extrapolated: bool
    efficiency_source: str
    batch_size: float
    step_seconds: float  # forward + backward of one workload batch
    forward_seconds: float
    train_flops_per_example: float
    peak_flops: float
    memory_bytes: float
    gpu_memory_bytes: float
    modules: dict[str, dict[str, float]]

    @property
    def us_per_example(self) -> float:
        return 1e6 * self.step_seconds / self.batch_size

    @property
    def inference_us_per_example(self) -> float:
        return 1e6 * self.forward_seconds / self.batch_size

    @property
    def examples_per_second(self) -> float:
        return self.batch_size / self.step_seconds if self.step_seconds else math.inf

    @property
    def mfu(self) -> float:
        return self.train_flops_per_example * self.batch_size / (self.peak_flops * self.step_seconds)

    @property
    def fits_memory(self) -> bool:
        return self.memory_bytes <= self.gpu_memory_bytes

    def to_dict(self) -> dict:
        return {
            "gpu": self.gpu, "extrapolated": self.extrapolated, "efficiency_source": self.efficiency_source,
            "batch_size": self.batch_size, "step_ms": 1e3 * self.step_seconds,
            "us_per_example": self.us_per_example, "inference_us_per_example": self.inference_us_per_example,
            "examples_per_second": self.examples_per_second, "predicted_mfu": self.mfu,
            "train_flops_per_example": self.train_flops_per_example, "peak_tflops": self.peak_flops / 1e12,
            "memory_gb": self.memory_bytes / 1e9, "gpu_memory_gb": self.gpu_memory_bytes / 1e9,
            "fits_memory": self.fits_memory, "modules": self.modules,
        }


def op_seconds(op: OpRecord, spec: GPUSpec, table: EfficiencyTable) -> tuple[float, float]:
    """(forward, backward) seconds of one op record."""
    rate = spec.bf16_flops * table.efficiency(op)
    launch = table.launch_us * 1e-6
    fwd = max(op.forward / rate, op.bytes / spec.hbm_bandwidth, op.transcendentals / spec.mufu_ops) + launch
    # backward: its own FLOPs, about twice the traffic (inputs and output gradients), two launches
    bwd = max(op.backward / rate, 2 * op.bytes / spec.hbm_bandwidth, op.transcendentals / spec.mufu_ops)
    return fwd, bwd + 2 * launch


def predict(config: KunlunConfig, gpu: str = "b200", workload: WorkloadConfig | None = None,
            table: EfficiencyTable | None = None, report: FlopReport | None = None) -> CostReport:
    try:
        spec = lookup(gpu)
    except KeyError:
        known = sorted({a for s in GPUS for a in s.aliases})
        raise ConfigError("--gpu", f"unknown GPU {gpu!r} (allowed: {', '.join(known)})") from None
    table = table or default_table()
    report = report or count_flops(config, workload)
    modules: dict[str, dict[str, float]] = {}
    forward = backward = 0.0
    for op in report.ops:
        f, b = op_seconds(op, spec, table)
        forward += f
        backward += b
        row = modules.setdefault(op.key, {"seconds": 0.0, "flops": 0.0})
        row["seconds"] += f + b
        row["flops"] += op.training
    for row in modules.values():
        row["mfu"] = row["flops"] / (spec.bf16_flops * row["seconds"]) if row["seconds"] else 0.0
        row["us_per_example"] = 1e6 * row["seconds"] / report.examples
    params = report.params_dense + report.params_sparse
    memory = params * OPTIMIZER_BYTES_PER_PARAM + report.activation_bytes_per_example * report.examples
    return CostReport(
        gpu=spec.name, extrapolated=spec.aliases[0] not in MEASURED_ON or not table.measured,
        efficiency_source=table.source, batch_size=report.examples, step_seconds=forward + backward,
        forward_seconds=forward, train_flops_per_example=report.train_flops_per_example,
        peak_flops=spec.bf16_flops, memory_bytes=memory, gpu_memory_bytes=spec.memory_bytes, modules=modules,
    )


_DH = re.compile(r"Dh=(\d+)")


def _smallest_dim(row: dict[str, str]) -> float:
    """The dimension a row is bucketed by: the head dim of a gdpa row, the smallest of a GEMM's M, N, K."""
    shape = row.get("shape", "")
    if row.get("name") == "gdpa":
        m = _DH.search(shape)
        return float(m.group(1)) if m else math.inf
    dims = [float(x) for x in re.split(r"[x=]", shape) if x.isdigit()]
    return min(dims) if dims else math.inf


def calibrate(csv_path: str | Path, base: EfficiencyTable | None = None) -> EfficiencyTable:
    """Replace default efficiencies with measured ones: per kind and bucket, the median `pct_peak` / 100 of the
    bf16 Triton/cuBLAS forward rows of a kernels CSV (results/bench/kernels.csv), taking only the newest row of
    each (name, variant, shape), so a kernel measured again after a change counts once, as it is now."""
    base = base or default_table()
    newest: dict[tuple[str, str, str], dict[str, str]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("bench") != "kernels" or row.get("mode") != "fwd" or not row.get("pct_peak"):
                continue
            if row.get("provider") not in ("triton", "cublas") or row.get("dtype", "bf16") != "bf16":
                continue
            key = (row.get("name", ""), row.get("variant", ""), row.get("shape", ""))
            if key not in newest or row.get("date", "") >= newest[key].get("date", ""):
                newest[key] = row
    samples: dict[tuple[str, int], list[float]] = {}
    for row in newest.values():
        kind = "gdpa" if row.get("name") == "gdpa" else "linear"
        smallest = _smallest_dim(row)
        index = next((i for i, b in enumerate(base.buckets) if smallest <= b), len(base.buckets))
        samples.setdefault((kind, index), []).append(float(row["pct_peak"]) / 100.0)
    if not samples:
        return base
    kinds = {k: list(v) for k, v in base.kinds.items()}
    for (kind, index), values in samples.items():
        kinds.setdefault(kind, list(base.kinds["linear"]))[index] = round(statistics.median(values), 4)
    rows = list(newest.values())
    versions = {name: ", ".join(sorted({r.get(name, "") for r in rows} - {""})) for name in ("torch", "triton", "cuda")}
    return EfficiencyTable(
        base.buckets, kinds, base.launch_us, f"measured: {Path(csv_path).name} ({len(rows)} rows)", True,
        gpu=", ".join(sorted({r.get("gpu_name", "") for r in rows} - {""})),
        date=max(r.get("date", "") for r in rows), versions={k: v for k, v in versions.items() if v},
        measured_cells=sorted(f"{kind}[{index}]" for kind, index in samples))


def write_table(table: EfficiencyTable, path: str | Path, note: str = "") -> None:
    """An efficiency YAML that `EfficiencyTable(**yaml)` reads back (the format of efficiency.yaml)."""
    header = "".join(f"# {line}\n" for line in note.splitlines())
    body = yaml.safe_dump(dataclasses.asdict(table), sort_keys=False, default_flow_style=None, width=110)
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(header + body)
    tmp.replace(path)  # never a half-written table
