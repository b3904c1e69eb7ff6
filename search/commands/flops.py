"""`kunlun flops CONFIG [--json]`: the FlopReport of the config's workload, per module, per branch, per example."""

from __future__ import annotations

import argparse
import json

from kunlun.model import KunlunConfig, count_flops
from kunlun.model.flops import FlopReport

HELP = "analytic FLOP/parameter report of a config's workload"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a config YAML file or a model preset name")
    parser.add_argument("--json", action="store_true", help="print one JSON document (the report's fields)")


def _g(x: float) -> str:
    return f"{x / 1e6:12.3f}"


def format_report(name: str, report: FlopReport) -> str:
    n = max(report.examples, 1e-12)
    lines = [f"{name}: training {report.train_flops_per_example / 1e6:.3f} MFLOP/example "
             f"(forward {report.fwd_flops_per_example / 1e6:.3f}), sequence share {report.seq_share:.1%}, "
             f"workload batch {report.examples:g}",
             f"parameters: dense {report.params_dense:,}  sparse {report.params_sparse:,}  "
             f"activations {report.activation_bytes_per_example / 1e3:.1f} kB/example",
             "",
             f"{'module':<26}{'fwd MFLOP/ex':>12}{'train MFLOP/ex':>16}{'share':>8}{'dense params':>14}{'sparse':>12}"]
    modules = report.by_module()
    for key in dict.fromkeys([*modules, *report.params]):
        row = modules.get(key, {"forward": 0.0, "training": 0.0})
        p = report.params.get(key, {"dense": 0, "sparse": 0})
        share = row["training"] / report.training if report.training else 0.0
        lines.append(f"{key:<26}{_g(row['forward'] / n)}{_g(row['training'] / n):>16}{share:>8.1%}"
                     f"{p['dense']:>14,}{p['sparse']:>12,}")
    lines += ["", f"{'branch':<26}{'train MFLOP/ex':>16}",
              f"{'sequence':<26}{_g(report.sequence / n):>16}", f"{'context':<26}{_g(report.context / n):>16}"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = KunlunConfig.load(args.config)
    report = count_flops(config)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(format_report(args.config, report))
    return 0
