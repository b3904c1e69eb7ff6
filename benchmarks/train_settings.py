"""Which `train` (or `model`) settings should a space fix? Paired runs on the inner split only, so nothing is
chosen on the evaluation split.

    python benchmarks/train_settings.py movielens --data movielens:../shared/data/movielens-100k \
        --variant lr=1e-3 --variant lr=4e-3 --variant sparse_lr=5e-3 --out results/train-settings/movielens --workers 2
    python benchmarks/train_settings.py TINY.yaml --data synthetic --configs 2 --seeds 1 --variant lr=1e-2 \
        --out /tmp/ts

Each `--variant` is comma-separated `train` keys (`lr=1e-3,weight_decay=0.1`) or `model.KEY`s
(`model.recency_embedding=false`) laid over the space's own settings, on each sampled config as it was solved
(widths are not re-solved); `base` (the space as it is) always runs first. Every variant trains the same `--configs`
configs sampled from the space (as `benchmarks/selection.py` samples them, so its config ids match) plus the
`--reference` configs, with the same `--seeds`, on the inner split. OUT/runs.csv gets one row per run as it
finishes; a rerun skips the runs there. The summary (OUT/summary.json, also printed) gives per variant the mean
inner NE and its paired difference from `base` (same config, same seed) with a 95% t interval, and how many configs
it improves on their seed mean.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from kunlun.model.config import KunlunConfig
from kunlun.model.yamlio import ConfigError, validate
from kunlun.search.reeval import t95
from kunlun.space.space import SearchSpace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import selection  # noqa: E402
from selection import config_hash, reference_config, sample_configs  # noqa: E402

BASE = "base"
COLUMNS = ("variant", "config", "seed", "ne", "auc", "seconds", "examples", "config_hash")


def parse_variant(text: str, config: KunlunConfig) -> dict[str, Any]:
    """`key=value,...` -> overrides, each value read as YAML: `train` keys bare, `model` keys as `model.KEY`; unknown
    keys and bad values are a ConfigError."""
    if text == BASE:
        return {}
    types = {f.name: str(f.type) for f in dataclasses.fields(config.train)}
    types |= {f"model.{f.name}": str(f.type) for f in dataclasses.fields(config.model)}
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in types:
            raise ConfigError("--variant", f"{item!r}: want KEY=VALUE with KEY a train key or model.KEY "
                              f"({', '.join(sorted(types))})")
        out[key] = yaml.safe_load(value)
        if isinstance(out[key], str) and "float" in types[key]:  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                out[key] = float(out[key])
            except ValueError:
                raise ConfigError(f"--variant {key}", f"{value!r} is not a number") from None
    with_settings(config, out)
    return out


def with_settings(config: KunlunConfig, overrides: dict[str, Any]) -> KunlunConfig:
    """A validated copy with the variant's overrides."""
    c = config.copy()
    model = {k.removeprefix("model."): v for k, v in overrides.items() if k.startswith("model.")}
    c.model = dataclasses.replace(c.model, **model)
    c.train = dataclasses.replace(c.train, **{k: v for k, v in overrides.items() if not k.startswith("model.")})
    return validate(c)


def summarise(rows: list[dict[str, Any]], variants: list[str]) -> dict[str, Any]:
    """Per variant, over the (config, seed) pairs that it and `base` both have."""
    ne = {(r["variant"], r["config"], int(r["seed"])): float(r["ne"]) for r in rows}
    base = {(c, s): v for (name, c, s), v in ne.items() if name == BASE}
    out: dict[str, Any] = {}
    for name in variants:
        pairs = sorted(k for k in base if (name, *k) in ne)
        if not pairs:
            continue
        mine = np.array([ne[(name, *k)] for k in pairs])
        diff = mine - np.array([base[k] for k in pairs])
        configs = sorted({c for c, _ in pairs})
        per_config = [diff[[c == x for x, _ in pairs]].mean() for c in configs]
        half = t95(len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        out[name] = {"runs": len(pairs), "mean_ne": float(mine.mean()), "diff_vs_base": float(diff.mean()),
                     "diff_ci95": [float(diff.mean() - half), float(diff.mean() + half)],
                     "configs_improved": f"{sum(d < 0 for d in per_config)}/{len(configs)}",
                     "per_config_diff": {c: round(float(d), 4) for c, d in zip(configs, per_config)}}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("space", help="space YAML or space preset")
    p.add_argument("--data", help="synthetic | movielens:PATH | taobao:PATH (default: the space's)")
    p.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,...]",
                   help="train settings to compare with the space's own (repeatable)")
    p.add_argument("--configs", type=int, default=3, help="configs sampled from the space (default 3)")
    p.add_argument("--seeds", type=int, default=2, help="initialisation seeds per config (default 2)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the config sample (default 0)")
    p.add_argument("--reference", action="append", default=[], metavar="CONFIG",
                   help="a hand-made config (preset or YAML) trained alongside (repeatable)")
    p.add_argument("--workers", type=int, default=1, help="runs at once, in spawned processes (default 1)")
    p.add_argument("--out", type=Path, required=True, help="folder for runs.csv and summary.json")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _main(args)
    except ConfigError as e:
        print(f"train_settings: {e}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    from tqdm import tqdm


    for flag, value in (("--configs", args.configs), ("--seeds", args.seeds), ("--workers", args.workers)):
        if value < 1:
            raise ConfigError(flag, f"must be >= 1, got {value}")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError("--out", f"{args.out} is a file (allowed: a folder)")
    space = SearchSpace.load(args.space, **({"data": args.data} if args.data else {}))
    names = [BASE] + [v for v in args.variant if v != BASE]
    variants = {name: parse_variant(name, space.base) for name in names}
    configs = sample_configs(space, args.configs, args.sample_seed)
    configs += [(r, reference_config(space, r)) for r in args.reference]
    seeds = [space.spec.seed + i for i in range(args.seeds)]
    runs = {(name, cid, seed): with_settings(c, overrides) for name, overrides in variants.items()
            for cid, c in configs for seed in seeds}
    hashes = {k: config_hash(c) for k, c in runs.items()}
    runs_csv = args.out / "runs.csv"
    done = _read(runs_csv, hashes)
    args.out.mkdir(parents=True, exist_ok=True)
    if not runs_csv.is_file():
        runs_csv.write_text(",".join(COLUMNS) + "\n")
    todo = [k for k in runs if k not in done]
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="runs", unit="run", file=sys.stderr,
               disable=args.no_progress, dynamic_ncols=True)

    def record(key: tuple[str, str, int], result: dict[str, Any]) -> None:
        row = {"variant": key[0], "config": key[1], "seed": key[2], "config_hash": hashes[key],
               **{k: result[k] for k in ("ne", "auc", "seconds", "examples")}}
        with runs_csv.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=COLUMNS).writerow(row)
        bar.update()

    selection.run_all({k: (runs[k], k[2], "inner") for k in todo}, record, args.workers)
    bar.close()
    summary = {"space": space.spec.name, "data": space.base.train.data, "seeds": seeds,
               "configs": [cid for cid, _ in configs], "variants": variants,
               "results": summarise(list(_read(runs_csv, hashes).values()), names)}
    text = json.dumps(summary, indent=2)
    (args.out / "summary.json").write_text(text + "\n")
    print(text)
    return 0


def _read(path: Path, hashes: dict[tuple[str, str, int], str]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Rows already run with the same config (a changed space or sample is rerun, not mixed in)."""
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ConfigError("", f"not a runs file of this script (columns {', '.join(COLUMNS)})", path)
        rows = {}
        for row in reader:
            key = (row["variant"], row["config"], int(row["seed"]))
            if hashes.get(key) == row["config_hash"]:
                rows[key] = row
        return rows


if __name__ == "__main__":
    sys.exit(main())
