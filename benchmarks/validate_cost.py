"""The cost model against measured training steps: for the newest step of each model, batch and launch mode on a
GPU the hardware table knows, the measured median step, its host time, the prediction written beside it when it
was measured (`predicted_ms`) and the prediction of the cost model as it is now (space/efficiency.yaml, after
`calibrate.py`), with the error of the latter (issue 15's target: within 20%).

    python benchmarks/validate_cost.py results/bench/train_step.csv [--tolerance 0.2]

Exits 0 when it printed a table (rows outside the tolerance are flagged and counted), 2 without a file or rows.
Launch terms fitted on these very rows make the table an in-sample check; a fresh lease's rows make it a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibrate  # noqa: E402
import train_step  # noqa: E402

from kunlun.kernels import hardware  # noqa: E402
from kunlun.space.cost import HOST_BOUND_MARGIN, default_table, predict  # noqa: E402


def table_rows(path: Path, table=None) -> list[dict]:
    """One dict per measured step: gpu, model, launch, batch, measured/host/at-run/now milliseconds, host-bound."""
    table = table or default_table()
    out = []
    for r in sorted(calibrate.measured_steps(path), key=lambda r: (r["gpu_name"], r["provider"], r["name"])):
        batch = train_step.batch_of(r["shape"])
        config = train_step.config_for(r["name"], batch)
        now = predict(config, hardware.detect(r["gpu_name"]).aliases[0], table=table, launch=r["provider"])
        measured, host = float(r["ms"]), float(r["host_ms"]) if r["host_ms"] else None
        out.append({"gpu": r["gpu_name"], "model": r["name"], "launch": r["provider"], "batch": batch,
                    "measured_ms": measured, "host_ms": host,
                    "at_run_ms": float(r["predicted_ms"]) if r["predicted_ms"] else None,
                    "predicted_ms": 1e3 * now.step_seconds, "error": 1e3 * now.step_seconds / measured - 1,
                    "host_bound": host is not None and measured <= HOST_BOUND_MARGIN * host})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.2, help="relative error flagged (default 0.2)")
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"error: {args.csv}: no such file", file=sys.stderr)
        return 2
    found = table_rows(args.csv)
    if not found:
        print(f"error: {args.csv}: no measured training step on a known GPU (run benchmarks/train_step.py on a GPU)",
              file=sys.stderr)
        return 2

    def ms(v: float | None) -> str:
        return f"{v:.3f}" if v is not None else "-"

    print(f"{'gpu':<24}{'model':<24}{'launch':<9}{'batch':>6}{'measured ms':>13}{'host ms':>10}{'at run ms':>11}"
          f"{'predicted ms':>14}{'error':>8}  bound")
    for r in found:
        flag = "" if abs(r["error"]) <= args.tolerance else "  <- outside"
        print(f"{r['gpu']:<24}{r['model']:<24}{r['launch']:<9}{r['batch']:>6}{ms(r['measured_ms']):>13}"
              f"{ms(r['host_ms']):>10}{ms(r['at_run_ms']):>11}{ms(r['predicted_ms']):>14}{r['error']:>+8.0%}  "
              f"{'host' if r['host_bound'] else 'device'}{flag}")
    within = sum(abs(r["error"]) <= args.tolerance for r in found)
    print(f"{within} of {len(found)} predictions within {args.tolerance:.0%} of the measured step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
