"""`kunlun cost CONFIG [--gpu b200|h100|h200] [--launch graphs|compile|eager] [--json]`: predicted step time, QPS,
MFU per module, memory, and how much of the step is launches and host time rather than the ops' work."""

from __future__ import annotations

import argparse
import json

from kunlun.model import KunlunConfig
from kunlun.space.cost import CARRY_RULE, LAUNCH_MODES, PRICED_ON, CostReport, predict

HELP = "predicted GPU time, QPS and MFU of a config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a config YAML file or a model preset name")
    parser.add_argument("--gpu", default=PRICED_ON, help="b200 (default, extrapolated), h100, h200, gb200, h100-pcie")
    parser.add_argument("--launch", choices=LAUNCH_MODES,
                        help="price another launch mode than the config's workload.launch (default graphs)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def format_cost(name: str, c: CostReport) -> str:
    label = " (extrapolated)" if c.extrapolated else ""
    bound = "host-bound" if c.host_bound else "device-bound"
    lines = [
        f"{name} on {c.gpu}{label}, workload batch {c.batch_size:g}, launch {c.launch}; "
        f"efficiencies: {c.efficiency_source}",
        *([f"extrapolated: {CARRY_RULE}"] if c.extrapolated else []),
        f"training: {1e3 * c.step_seconds:.3f} ms/step, {c.us_per_example:.3f} us/example, "
        f"{c.examples_per_second:,.0f} examples/s, predicted MFU {c.mfu:.1%}",
        f"launch-bound share {c.launch_share:.1%}: ops' work {1e3 * c.work_seconds:.3f} ms, device "
        f"{1e3 * c.device_seconds:.3f} ms ({c.launches} kernels), host {1e3 * c.host_seconds:.3f} ms: {bound}; "
        f"launch terms: {c.launch_source}",
        f"inference: {c.inference_us_per_example:.3f} us/example",
        f"memory: {c.memory_bytes / 1e9:.2f} GB of {c.gpu_memory_bytes / 1e9:.0f} GB "
        f"({'fits' if c.fits_memory else 'DOES NOT FIT'}; params with Adam state + activations)",
        "",
        f"{'module (device time)':<26}{'us/example':>12}{'share':>8}{'MFU':>8}",
    ]
    for key, row in c.modules.items():
        share = row["seconds"] / c.step_seconds if c.step_seconds else 0.0
        lines.append(f"{key:<26}{row['us_per_example']:>12.4f}{share:>8.1%}{row['mfu']:>8.1%}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = KunlunConfig.load(args.config)
    report = predict(config, args.gpu, launch=args.launch)
    print(json.dumps(report.to_dict()) if args.json else format_cost(args.config, report))
    return 0
