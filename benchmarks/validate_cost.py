"""The cost model against measured training steps: `train_step.py --presets` writes, per preset, the measured
step (provider triton or compile) and the cost model's prediction for the same GPU and batch (provider
cost-model). This prints the error of each prediction against the newest measurement (issue target: 20%).

    python benchmarks/validate_cost.py results/bench/train_step.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rows  # noqa: E402


def pairs(path: Path) -> list[tuple[str, str, float, float]]:
    """(gpu, preset, predicted ms, measured ms) of the newest step rows of each preset and GPU."""
    newest: dict[tuple[str, str, bool], dict[str, str]] = {}
    for r in rows.read_rows(path):
        if r["bench"] != "train_step" or r["variant"] != "step":
            continue
        key = (r["gpu_name"], r["name"], r["provider"] == "cost-model")
        if key not in newest or r["date"] >= newest[key]["date"]:
            newest[key] = r
    out = []
    for (gpu, name, is_prediction), r in sorted(newest.items()):
        measured = newest.get((gpu, name, False))
        if is_prediction and measured:
            out.append((gpu, name, float(r["ms"]), float(measured["ms"])))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"error: {args.csv}: no such file", file=sys.stderr)
        return 2
    found = pairs(args.csv)
    if not found:
        print(f"error: {args.csv}: no preset has both a measured and a predicted step row "
              "(run benchmarks/train_step.py --presets on a GPU)", file=sys.stderr)
        return 2
    print(f"{'gpu':<24}{'preset':<22}{'predicted ms':>14}{'measured ms':>14}{'error':>9}")
    for gpu, name, predicted, measured in found:
        print(f"{gpu:<24}{name:<22}{predicted:>14.3f}{measured:>14.3f}{predicted / measured - 1:>+9.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
