"""The GPU cost model: predicted training-step time, examples/s and MFU of a config on its workload.

Each op record of the FlopReport (DESIGN.md, "Budgets, solver, cost model") has a roofline time

    roofline = max(FLOPs / (peak * efficiency(kind, shape)), bytes / bandwidth, transcendentals / SFU rate)

for the forward and, with its own FLOPs and twice the bytes, for the backward; it launches one forward and two
backward kernels. A training step in the workload's launch mode (`workload.launch`: graphs, compile, eager) is

    device = roofline_scale * sum(roofline) + device_launch_us * launches
    host   = host_step_us + host_launch_us * launches          (the CPU time to issue the step)
    step   = max(device, host)                                 (the host runs ahead of the device until it is idle)

with the launch terms of that mode. `launch_share` = 1 - roofline_scale * sum(roofline) / step is the part of the
step that is launches, gaps between kernels and host time rather than the ops' own work: near 1, the time axis
counts ops, not FLOPs.

Efficiencies and launch terms come from `efficiency.yaml` beside this file, with the GPU, versions and date they
were measured on: efficiencies per op kind and shape bucket from kernel rows (results/bench/kernels.csv,
`calibrate`), launch terms per mode fitted to measured training steps (results/bench/train_step.csv,
`fit_launch`); cells and modes never measured are documented defaults and say so. B200 figures are extrapolated
(CARRY_RULE). `roofline_scale` is how much longer the measured device time is than the priced ops' rooflines: the
norms, gathers and elementwise ops that have no record, and kernels below their tabled efficiency.
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

PRICED_ON = "b200"  # the GPU trials are priced on: the b200_* trial attrs, the plots' x axis, `kunlun cost`'s default
MEASURED_ON = ("h100", "h200")  # GPUs whose efficiencies we can measure; others are extrapolated
CARRY_RULE = ("Hopper-measured efficiencies against this GPU's datasheet peaks and bandwidth; launch terms "
              "(host and per-kernel device time) carried unchanged from the GPU they were measured on")
OPTIMIZER_BYTES_PER_PARAM = 2 + 4 + 8  # bf16 weight, fp32 master, two fp32 Adam moments
LAUNCH_MODES = ("graphs", "compile", "eager")
KERNELS_PER_OP = (1, 2)  # forward, backward kernels an op record launches
HOST_BOUND_MARGIN = 1.1  # a measured step within 10% of its host time is host-bound: it says nothing of the device


@dataclass
class LaunchTerms:
    """What a launch mode adds to the ops' rooflines (the module docstring's formula), per step and per kernel."""

    host_step_us: float  # host time per step besides launches: optimizer, Python, graph replay
    host_launch_us: float  # host time per kernel launched (0 where a recorded graph replays them)
    device_launch_us: float  # device time per kernel beyond its roofline: launch latency, the gap to the next one
    roofline_scale: float = 1.0
    measured: bool = False
    source: str = "default (not measured)"


@dataclass
class EfficiencyTable:
    """Fraction of the dense bf16 peak an op reaches, by kind and by its smallest matmul dimension (head dim for
    gdpa)."""

    buckets: list[int]  # upper bounds of the smallest dimension; the last bucket is open
    kinds: dict[str, list[float]]  # kind -> one efficiency per bucket (len(buckets) + 1)
    launch: dict[str, LaunchTerms]  # launch mode -> its terms (every mode of LAUNCH_MODES)
    source: str
    measured: bool
    gpu: str = ""
    date: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    measured_cells: list[str] = field(default_factory=list)  # "kind[bucket]" cells that come from measurements

    def __post_init__(self):
        self.launch = {mode: t if isinstance(t, LaunchTerms) else LaunchTerms(**t) for mode, t in self.launch.items()}
        missing = set(LAUNCH_MODES) - set(self.launch)
        if missing:
            raise ValueError(f"efficiency table: no launch terms for {sorted(missing)}")

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
    step_seconds: float  # forward + backward of one workload batch: max(device, host)
    forward_seconds: float  # device time of the forward alone (inference)
    train_flops_per_example: float
    peak_flops: float
    memory_bytes: float
    gpu_memory_bytes: float
    modules: dict[str, dict[str, float]]  # device time per module key
    launch: str = "graphs"
    launches: int = 0
    work_seconds: float = 0.0  # roofline_scale * the ops' rooflines: the step without launches and host
    device_seconds: float = 0.0
    host_seconds: float = 0.0
    launch_source: str = ""
    launch_measured: bool = False

    @property
    def launch_share(self) -> float:
        """Share of the step that is launches, kernel gaps and host time rather than the ops' own work."""
        return 1.0 - self.work_seconds / self.step_seconds if self.step_seconds else 0.0

    @property
    def host_bound(self) -> bool:
        return self.host_seconds > self.device_seconds

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
            "fits_memory": self.fits_memory, "launch": self.launch, "launches": self.launches,
            "launch_share": self.launch_share, "work_ms": 1e3 * self.work_seconds,
            "device_ms": 1e3 * self.device_seconds, "host_ms": 1e3 * self.host_seconds, "host_bound": self.host_bound,
            "launch_source": self.launch_source, "launch_measured": self.launch_measured,
            "carry_rule": CARRY_RULE if self.extrapolated else "", "modules": self.modules,
        }


def roofline_seconds(op: OpRecord, spec: GPUSpec, table: EfficiencyTable) -> tuple[float, float]:
    """(forward, backward) roofline seconds of one op record, without launches."""
    rate = spec.bf16_flops * table.efficiency(op)
    fwd = max(op.forward / rate, op.bytes / spec.hbm_bandwidth, op.transcendentals / spec.mufu_ops)
    # backward: its own FLOPs, about twice the traffic (inputs and output gradients)
    bwd = max(op.backward / rate, 2 * op.bytes / spec.hbm_bandwidth, op.transcendentals / spec.mufu_ops)
    return fwd, bwd


def op_seconds(op: OpRecord, spec: GPUSpec, table: EfficiencyTable, launch: str = "eager") -> tuple[float, float]:
    """(forward, backward) device seconds of one op record in a launch mode: scaled roofline plus its kernels."""
    terms = table.launch[launch]
    fwd, bwd = roofline_seconds(op, spec, table)
    per_kernel = terms.device_launch_us * 1e-6
    return (terms.roofline_scale * fwd + KERNELS_PER_OP[0] * per_kernel,
            terms.roofline_scale * bwd + KERNELS_PER_OP[1] * per_kernel)


def spec_for(gpu: str) -> GPUSpec:
    try:
        return lookup(gpu)
    except KeyError:
        known = sorted({a for s in GPUS for a in s.aliases})
        raise ConfigError("--gpu", f"unknown GPU {gpu!r} (allowed: {', '.join(known)})") from None


def predict(config: KunlunConfig, gpu: str = PRICED_ON, workload: WorkloadConfig | None = None,
            table: EfficiencyTable | None = None, report: FlopReport | None = None,
            launch: str | None = None) -> CostReport:
    """The predicted training step of `config` on its workload (or `workload`), in the workload's launch mode
    unless `launch` names another."""
    spec = spec_for(gpu)
    table = table or default_table()
    report = report or count_flops(config, workload)
    launch = launch or (workload or config.workload).launch
    terms = table.launch[launch]
    modules: dict[str, dict[str, float]] = {}
    forward = backward = roofline = 0.0
    for op in report.ops:
        f, b = op_seconds(op, spec, table, launch)
        forward += f
        backward += b
        roofline += sum(roofline_seconds(op, spec, table))
        row = modules.setdefault(op.key, {"seconds": 0.0, "flops": 0.0})
        row["seconds"] += f + b
        row["flops"] += op.training
    for row in modules.values():
        row["mfu"] = row["flops"] / (spec.bf16_flops * row["seconds"]) if row["seconds"] else 0.0
        row["us_per_example"] = 1e6 * row["seconds"] / report.examples
    launches = sum(KERNELS_PER_OP) * len(report.ops)
    host = 1e-6 * (terms.host_step_us + terms.host_launch_us * launches)
    device = forward + backward
    params = report.params_dense + report.params_sparse
    memory = params * OPTIMIZER_BYTES_PER_PARAM + report.activation_bytes_per_example * report.examples
    return CostReport(
        gpu=spec.name, extrapolated=spec.aliases[0] not in MEASURED_ON or not table.measured,
        efficiency_source=table.source, batch_size=report.examples, step_seconds=max(device, host),
        forward_seconds=forward, train_flops_per_example=report.train_flops_per_example,
        peak_flops=spec.bf16_flops, memory_bytes=memory, gpu_memory_bytes=spec.memory_bytes, modules=modules,
        launch=launch, launches=launches, work_seconds=terms.roofline_scale * roofline, device_seconds=device,
        host_seconds=host, launch_source=terms.source, launch_measured=terms.measured,
    )


@dataclass(frozen=True)
class StepSample:
    """One measured training step, as the launch fit sees it (benchmarks/calibrate.py builds these from rows)."""

    launches: int  # kernels the cost model counts: KERNELS_PER_OP per op record
    roofline_seconds: float  # sum of the op records' rooflines on the measuring GPU (unscaled)
    step_seconds: float  # measured median step
    host_seconds: float  # measured time to issue the step (after a synchronize, until the call returns)

    @property
    def host_bound(self) -> bool:
        return self.step_seconds <= HOST_BOUND_MARGIN * self.host_seconds


def _nonnegative_fit(columns: list[list[float]], y: list[float]) -> list[float]:
    """Least squares y ~ sum(c_i * column_i) with every c_i >= 0, for one or two columns: the unconstrained
    solution if it is non-negative, else the best fit on one column alone (the other at 0)."""

    def single(col: list[float]) -> float:
        den = sum(x * x for x in col)
        return max(0.0, sum(x * t for x, t in zip(col, y)) / den) if den else 0.0

    if len(columns) == 1:
        return [single(columns[0])]
    a, b = columns
    saa, sbb, sab = sum(x * x for x in a), sum(x * x for x in b), sum(x * z for x, z in zip(a, b))
    say, sby = sum(x * t for x, t in zip(a, y)), sum(x * t for x, t in zip(b, y))
    det = saa * sbb - sab * sab
    if det > 1e-12 * saa * sbb:
        ca, cb = (say * sbb - sby * sab) / det, (sby * saa - say * sab) / det
        if ca >= 0 and cb >= 0:
            return [ca, cb]

    def sse(c: list[float]) -> float:
        return sum((t - c[0] * x - c[1] * z) ** 2 for x, z, t in zip(a, b, y))

    return min(([single(a), 0.0], [0.0, single(b)]), key=sse)


def fit_launch(samples: list[StepSample], base: LaunchTerms, source: str) -> LaunchTerms:
    """Launch terms of one mode fitted to measured steps (the module docstring's formula).

    Host: host_step_us + host_launch_us * launches by least squares on every sample's measured host time (one
    distinct launch count: per launch only). Device: from the samples that are not host-bound (a host-bound step
    hides the device time), roofline_scale * roofline + device_launch_us * launches; with a single such sample
    the scale stays the base's and only the per-kernel time is fitted; with none both stay the base's, and the
    source says so. Every term is >= 0.
    """
    if not samples:
        return base
    host_y = [1e6 * s.host_seconds for s in samples]
    launches = [float(s.launches) for s in samples]
    if len(set(launches)) > 1:
        host_step, host_launch = _nonnegative_fit([[1.0] * len(samples), launches], host_y)
    else:
        host_step, (host_launch,) = 0.0, _nonnegative_fit([launches], host_y)
    device = [s for s in samples if not s.host_bound]
    scale, per_kernel = base.roofline_scale, base.device_launch_us
    if len(device) > 1:
        scale, per_kernel = _nonnegative_fit([[1e6 * s.roofline_seconds for s in device],
                                              [float(s.launches) for s in device]],
                                             [1e6 * s.step_seconds for s in device])
    elif device:
        (per_kernel,) = _nonnegative_fit([[float(device[0].launches)]],
                                         [1e6 * (device[0].step_seconds - scale * device[0].roofline_seconds)])
    note = (f"{len(device)} device-bound" if device else "device terms are defaults: every step host-bound")
    return LaunchTerms(round(host_step, 3), round(host_launch, 4), round(per_kernel, 4), round(scale, 4), True,
                       f"fitted: {source} ({len(samples)} steps, {note})")


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
        base.buckets, kinds, base.launch, f"measured: {Path(csv_path).name} ({len(rows)} rows)", True,
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
