"""Fold measured rows into the cost model's table: kernel rows into efficiencies, training steps into launch terms.

    python benchmarks/calibrate.py results/bench/kernels.csv results/bench/train_step.csv space/efficiency.yaml

Kernel rows (bench=kernels): per op kind and width bucket, the median fraction of the bf16 datasheet peak of the
newest forward rows (`kunlun.space.cost.calibrate`); cells without rows keep the table's values, and
`measured_cells` lists the measured ones. Training-step rows (bench=train_step, variant=step, from
`train_step.py` on a GPU the table knows, with `host_ms`): per launch mode (the row's provider), the launch terms
fitted to the newest step of each model and batch (`kunlun.space.cost.fit_launch`: host time per step and per
kernel from `host_ms`; per-kernel device time and the roofline scale from the steps that are not host-bound); modes
without rows keep the table's terms. Kernel CSVs are folded in first, since the step fit prices each model's ops
with the efficiencies. The GPU, versions and date of the rows go into the table.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rows  # noqa: E402
import train_step  # noqa: E402

from kunlun.kernels import hardware  # noqa: E402
from kunlun.model import count_flops  # noqa: E402
from kunlun.space.cost import (  # noqa: E402
    KERNELS_PER_OP,
    LAUNCH_MODES,
    EfficiencyTable,
    StepSample,
    calibrate,
    default_table,
    fit_launch,
    roofline_seconds,
    write_table,
)


@functools.cache
def _report(name: str, batch: int):
    return count_flops(train_step.config_for(name, batch))


def measured_steps(path: Path) -> list[dict[str, str]]:
    """The newest measured step row of each (GPU, model, shape, launch mode) on a GPU the hardware table knows."""
    newest: dict[tuple[str, str, str, str], dict[str, str]] = {}
    for r in rows.read_rows(path):
        if r["bench"] != "train_step" or r["variant"] != "step" or r["provider"] not in LAUNCH_MODES:
            continue
        if hardware.detect(r["gpu_name"]) == hardware.UNKNOWN:
            continue
        key = (r["gpu_name"], r["name"], r["shape"], r["provider"])
        if key not in newest or r["date"] >= newest[key]["date"]:
            newest[key] = r
    return list(newest.values())


def step_sample(row: dict[str, str], table: EfficiencyTable) -> StepSample:
    """What the launch fit needs of a row: the model's kernels and rooflines on the row's GPU, and its times."""
    report = _report(row["name"], train_step.batch_of(row["shape"]))
    spec = hardware.detect(row["gpu_name"])
    roofline = sum(sum(roofline_seconds(op, spec, table)) for op in report.ops)
    return StepSample(sum(KERNELS_PER_OP) * len(report.ops), roofline, float(row["ms"]) / 1e3,
                      float(row["host_ms"]) / 1e3)


def fit_steps(path: Path, table: EfficiencyTable) -> list[str]:
    """Fit the launch terms of every mode `path` has host-timed steps of, in place; returns the modes fitted."""
    by_mode: dict[str, list[StepSample]] = {}
    gpus: dict[str, set[str]] = {}
    for row in measured_steps(path):
        if row["host_ms"]:
            by_mode.setdefault(row["provider"], []).append(step_sample(row, table))
            gpus.setdefault(row["provider"], set()).add(row["gpu_name"])
    for mode, samples in by_mode.items():
        table.launch[mode] = fit_launch(samples, table.launch[mode], f"{path.name} on {', '.join(sorted(gpus[mode]))}")
    return sorted(by_mode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, nargs="+", help="kernels and/or train_step CSVs")
    parser.add_argument("out", type=Path, help="the efficiency YAML to write")
    args = parser.parse_args(argv)
    for path in args.csv:
        if not path.is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return 2
    table = default_table()
    kernel_csvs = [p for p in args.csv if any(r["bench"] == "kernels" for r in rows.read_rows(p))]
    for path in kernel_csvs:
        table = calibrate(path, table)
    fitted = [f"{mode} ({path.name})" for path in args.csv for mode in fit_steps(path, table)]
    if not table.measured_cells and not fitted:
        print(f"error: {', '.join(map(str, args.csv))}: no bf16 forward triton/cublas kernel rows and no host-timed "
              "training steps on a known GPU to calibrate from", file=sys.stderr)
        return 2
    sources = ", ".join(map(str, args.csv))
    note = ("Efficiencies (fraction of the dense bf16 datasheet peak) per op kind and width bucket, and launch terms\n"
            f"per launch mode (space/cost.py), written by benchmarks/calibrate.py from {sources}.\n"
            f"Measured efficiency cells: {', '.join(table.measured_cells) or 'none'}; the others are documented\n"
            "defaults (not measured): cuBLAS near 70% of peak on large GEMMs, far less on thin ones; GDPA 40-55% at\n"
            "head dim 64 (issue 3's targets). Launch terms: each mode's `source` says whether it was fitted.")
    write_table(table, args.out, note)
    for kind, values in table.kinds.items():
        print(f"{kind:>8}: " + "  ".join(f"{v:.3f}" for v in values))
    for mode, t in table.launch.items():
        print(f"{mode:>8}: host {t.host_step_us:.1f} us/step + {t.host_launch_us:.2f} us/kernel; device "
              f"{t.roofline_scale:.3f} x roofline + {t.device_launch_us:.2f} us/kernel ({t.source})")
    print(f"wrote {args.out} (measured cells: {', '.join(table.measured_cells) or 'none'}; "
          f"launch modes fitted: {', '.join(fitted) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
