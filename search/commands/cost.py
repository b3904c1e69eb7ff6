"""`kunlun cost CONFIG [--gpu b200|h100|h200] [--json]`: predicted step time, QPS, MFU per module, memory."""

from __future__ import annotations

import argparse
import json

from kunlun.model import KunlunConfig
from kunlun.space.cost import CostReport, predict

HELP = "predicted GPU time, QPS and MFU of a config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a config YAML file or a model preset name")
    parser.add_argument("--gpu", default="b200", help="b200 (default, extrapolated), h100, h200, gb200, h100-pcie")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def format_cost(name: str, c: CostReport) -> str:
    label = " (extrapolated)" if c.extrapolated else ""
    lines = [
        f"{name} on {c.gpu}{label}, workload batch {c.batch_size:g}; efficiencies: {c.efficiency_source}",
        f"training: {1e3 * c.step_seconds:.3f} ms/step, {c.us_per_example:.3f} us/example, "
        f"{c.examples_per_second:,.0f} examples/s, predicted MFU {c.mfu:.1%}",
        f"inference: {c.inference_us_per_example:.3f} us/example",
        f"memory: {c.memory_bytes / 1e9:.2f} GB of {c.gpu_memory_bytes / 1e9:.0f} GB "
        f"({'fits' if c.fits_memory else 'DOES NOT FIT'}; params with Adam state + activations)",
        "",
        f"{'module':<26}{'us/example':>12}{'share':>8}{'MFU':>8}",
    ]
    for key, row in c.modules.items():
        share = row["seconds"] / c.step_seconds if c.step_seconds else 0.0
        lines.append(f"{key:<26}{row['us_per_example']:>12.4f}{share:>8.1%}{row['mfu']:>8.1%}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = KunlunConfig.load(args.config)
    report = predict(config, args.gpu)
    print(json.dumps(report.to_dict()) if args.json else format_cost(args.config, report))
    return 0
