"""`kunlun train CONFIG [--data SPEC] [--examples N] [--seed S | --seeds S ...] [--json]`: train one config and
evaluate it on the evaluation split of the protocol (BASELINES.md). With `--json`, one JSON document on stdout; logs
and the progress bar go to stderr."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from kunlun.data.dataset import EventDataset
from kunlun.data.spec import KINDS, open_data
from kunlun.model.config import KunlunConfig
from kunlun.model.train import NonFiniteLossError, use_cpu_threads
from kunlun.model.yamlio import ConfigError, is_preset_name
from kunlun.search.store import finite
from kunlun.search.training import train_and_evaluate

HELP = "train and evaluate one config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="model config: a YAML file or a model preset name")
    parser.add_argument("--data", help=f"data spec: {' | '.join(KINDS)} (default: the config's train.data)")
    parser.add_argument("--examples", type=int, help="training examples processed (epochs wrap; default: "
                        "the config's train.epochs passes over the split's training part when set, else its "
                        "train.examples)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, help="initialisation and shuffling seed (default: train.seed); "
                       "the data and its split do not change")
    seeds.add_argument("--seeds", type=int, nargs="+", metavar="S",
                       help="train once per seed; report each run and the mean NE with its 95%% interval")
    parser.add_argument("--split", choices=("eval", "inner"),
                        help="eval: the protocol's evaluation split; inner: train on the training split's "
                        "first 90%% (in time) and evaluate on its last 10%%, for choosing hyper-parameters "
                        "(default: the config's train.split, eval unless a search on inner exported it)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    if args.examples is not None and args.examples <= 0:
        raise ConfigError("--examples", f"must be > 0, got {args.examples}")
    for flag, values in (("--seed", [args.seed]), ("--seeds", args.seeds or [])):
        if any(v is not None and v < 0 for v in values):
            raise ConfigError(flag, f"must be >= 0, got {min(v for v in values if v is not None)}")
    config = KunlunConfig.load(args.config)
    given = config.train if args.examples is None else config.train.with_examples(args.examples)
    train = dataclasses.replace(
        given,
        data=args.data or config.train.data,
        seed=args.seed if args.seed is not None else config.train.seed,
        split=args.split or config.train.split,
    )
    data = open_data(train.data, seed=train.data_seed, examples=train.data_examples, split=train.split)
    try:
        config = config.with_schema(data.schema, data.workload)
    except ConfigError as e:  # the data's schema does not fit the architecture
        raise ConfigError(e.path, f"{e.message}, with the schema of --data {train.data}",
                          e.file or _config_file(args.config)) from None
    config.train = train
    if args.seeds:
        return _run_seeds(config, data, args)
    try:
        report = _train(config, data)
    except NonFiniteLossError as e:
        print(f"kunlun train: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(finite(report), indent=2))
    else:
        print(f"NE {report['ne']:.4f}  AUC {report['auc']:.4f}  logloss {report['logloss']:.4f}  "
              f"calibration {report['calibration']:.3f}  {report['examples']:,} examples "
              f"({report['epochs']:.2f} epochs); training {report['train_seconds']:.1f} s "
              f"({report['examples_per_second']:,.0f} examples/s), evaluation {report['eval_seconds']:.1f} s")
    return 0


def _run_seeds(config: KunlunConfig, data: EventDataset, args: argparse.Namespace) -> int:
    """One run per seed (same data and split), then the mean NE and AUC with 95% Student-t intervals."""
    from kunlun.search.reeval import mean_ci

    runs = []
    for seed in args.seeds:
        config.train = dataclasses.replace(config.train, seed=seed)
        try:
            report = _train(config, data)
        except NonFiniteLossError as e:
            print(f"kunlun train: seed {seed}: {e}", file=sys.stderr)
            return 1
        runs.append({"seed": seed, **report})
        if not args.json:
            print(f"seed {seed}: NE {report['ne']:.4f}  AUC {report['auc']:.4f}  calibration "
                  f"{report['calibration']:.3f}  ({report['seconds']:.1f} s)")
    out: dict = {"seeds": list(args.seeds)}
    for key in ("ne", "auc"):
        mean, half = mean_ci([r[key] for r in runs])
        out[f"{key}_mean"], out[f"{key}_ci"] = mean, [mean - half, mean + half]
    if args.json:
        print(json.dumps(finite({**out, "runs": runs}), indent=2))
    else:
        print(f"mean over {len(runs)} seeds: NE {out['ne_mean']:.4f} [{out['ne_ci'][0]:.4f}, {out['ne_ci'][1]:.4f}]  "
              f"AUC {out['auc_mean']:.4f} [{out['auc_ci'][0]:.4f}, {out['auc_ci'][1]:.4f}]")
    return 0


def _config_file(spec: str) -> str:
    """The file a CONFIG argument names (a preset's own file for a preset name)."""
    if not is_preset_name(spec):
        return spec
    return f"model/presets/{spec}.yaml"


def _train(config: KunlunConfig, data: EventDataset) -> dict:
    """search/training.py's run with the progress bar, its data announced on stderr; the report has `--json`'s keys."""
    skipped = f", {data.malformed_rows} malformed rows skipped" if data.malformed_rows else ""
    print(f"kunlun train: {data.name}: {len(data.train_index):,} train / {len(data.eval_index):,} eval "
          f"examples{skipped}", file=sys.stderr)
    use_cpu_threads()
    report = train_and_evaluate(config, data, progress=True)
    for key in ("timed_us_per_example", "device"):
        report.pop(key)
    return report
