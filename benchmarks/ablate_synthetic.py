"""Ablations on the default synthetic data (CPU): kunlun-small against wukong-small and against itself with a
shrunk window, shrunk history or a stream removed, over several seeds; what issue 4's last done-when asks.

    python benchmarks/ablate_synthetic.py --seeds 0 1 2 --csv results/ablation/synthetic.csv
    python benchmarks/ablate_synthetic.py --data-seed 1 --variants kunlun-small "wukong-small (no sequence branch)"

`--data-seed` draws another synthetic dataset (the presets train on data_seed 0): where training choices are made
without looking at the reported data.

Prints one markdown row per variant (mean NE and AUC over the seeds, their range) and the gap to kunlun-small;
`--csv` also writes every (variant, seed) row. Each run is `kunlun train` on the preset's own data (or
`--data-seed`'s) and examples.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from kunlun.data.dataset import EventDataset
from kunlun.model.config import KunlunConfig
from kunlun.search.training import train_and_evaluate
from kunlun.space.data import open_cached


def _window(w: int) -> Callable[[KunlunConfig], None]:
    def edit(c: KunlunConfig) -> None:
        for s in c.model.streams.values():
            s.window = w
    return edit


def _max_len(n: int) -> Callable[[KunlunConfig], None]:
    def edit(c: KunlunConfig) -> None:
        for s in c.model.streams.values():
            s.max_len = n
    return edit


# name -> (preset, config edit, stream removed from the data)
VARIANTS: dict[str, tuple[str, Callable[[KunlunConfig], None] | None, str | None]] = {
    "kunlun-small": ("kunlun-small", None, None),
    "window 0 (SWA sees itself only)": ("kunlun-small", _window(0), None),
    "history 4 (max_len 4)": ("kunlun-small", _max_len(4), None),
    "no click stream": ("kunlun-small", None, "click"),
    "no impression stream": ("kunlun-small", None, "impression"),
    "wukong-small (no sequence branch)": ("wukong-small", None, None),
}


def _without(data: EventDataset, stream: str) -> EventDataset:
    """The data as if it had never recorded `stream`."""
    def keep(d: dict) -> dict:
        return {k: v for k, v in d.items() if k != stream}
    return replace(data, streams=keep(data.streams), schema=replace(data.schema, streams=keep(data.schema.streams)),
                   workload=replace(data.workload, streams=keep(data.workload.streams)))


def run(variant: str, seed: int, data_seed: int | None = None) -> dict:
    preset, edit, removed = VARIANTS[variant]
    config = KunlunConfig.preset(preset)
    if data_seed is not None:
        config.train.data_seed = data_seed
    data = open_cached(config.train.data, config.train.data_seed, config.train.data_examples)  # once for all runs
    if removed:
        data = _without(data, removed)
    config = config.with_schema(data.schema, data.workload)
    if edit:
        edit(config)
    config.train.seed = seed
    report = train_and_evaluate(config, data, progress=True)
    return {"variant": variant, "data_seed": config.train.data_seed, "seed": seed, "ne": report["ne"],
            "auc": report["auc"], "train_flops_per_example": report["train_flops_per_example"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--data-seed", type=int, help="synthetic dataset seed (default: the presets' data_seed)")
    parser.add_argument("--csv", type=Path, help="write every (variant, seed) row here")
    args = parser.parse_args()
    rows = [run(v, s, args.data_seed) for v in args.variants for s in args.seeds]
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    by = {v: [r for r in rows if r["variant"] == v] for v in args.variants}
    ref = by.get("kunlun-small")
    ref_ne = sum(r["ne"] for r in ref) / len(ref) if ref else float("nan")
    print("| variant | NE (mean) | NE range over seeds | AUC (mean) | NE - kunlun-small |")
    print("|---|---|---|---|---|")
    for v, rs in by.items():
        ne = [r["ne"] for r in rs]
        auc = sum(r["auc"] for r in rs) / len(rs)
        mean = sum(ne) / len(ne)
        print(f"| {v} | {mean:.4f} | {max(ne) - min(ne):.4f} | {auc:.4f} | {mean - ref_ne:+.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
