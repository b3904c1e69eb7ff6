"""Selection quality of a search space: does the inner split rank configs as the evaluation split does?

    python benchmarks/selection.py movielens --data movielens:../shared/data/movielens-100k \
        --out results/selection/movielens
    python benchmarks/selection.py taobao --data taobao:../shared/data/taobao-userbehavior-head84k \
        --out results/selection/taobao --workers 2
    python benchmarks/selection.py TINY.yaml --data synthetic --configs 4 --seeds 2 --examples 256 --out /tmp/sel

`--configs` configs are sampled uniformly from the space (as a search's first trials are) and solved to its budget;
each trains with `--seeds` initialisation seeds, every (config, seed) twice, as the pipeline does: on the inner split
(the training split's first 90% in time, evaluated on its last 10%: what `kunlun search` sees) and on the
evaluation split (the whole training split, evaluated on the protocol's evaluation split: what `kunlun train CONFIG
--split eval` reports), with the same `train` settings. Nothing is chosen on the evaluation split: its NEs only
score the choices the inner NEs make. `--reference kunlun-small` adds a hand-made config, trained the same way on
the space's `train` settings, to compare the picks against.

OUT/runs.csv has one row per run, appended as each finishes; a rerun skips the runs already there (a crash loses at
most the runs in progress, one per `--workers`; more --configs or --seeds add runs, fewer summarise a subset), and
refuses a CSV whose config ids name other configs (another space, budget or --sample-seed). OUT/configs/ holds every
config; OUT/summary.json (also printed) holds, over the configs with every seed on both splits:
- `spearman`: rank correlation of the mean inner NE with the mean eval NE, with a 95% bootstrap CI (configs resampled,
  and each config's seeds resampled within it), and `spearman_single_seed`: the same for one seed's NEs, averaged
  over the seeds;
- `spread`: per split, the seed spread (pooled standard deviation of one config over seeds) against the spread
  between configs (standard deviation of the config means), and the variance share between configs;
- `regret`: the eval-split NE of the config each rule picks on the inner split, minus the best config's (the eval
  oracle among the sampled ones): `single_seed` (one seed per config, what a search sees; averaged over the seeds),
  `mean` (mean over all seeds), `bound` (the upper end of the 95% CI of NE: pessimistic), `reeval_top` (one seed,
  then the top `--top` re-evaluated on every seed and picked by mean: what `kunlun export --reeval` does), and
  `random` (expected regret of a uniform pick);
- `references`: each reference's mean NEs and the picks' eval NEs against it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import multiprocessing
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from kunlun.model.config import KunlunConfig
from kunlun.model.yamlio import ConfigError
from kunlun.search.reeval import t95
from kunlun.search.store import finite
from kunlun.space.solver import BudgetSolver
from kunlun.space.space import RandomTrial, SearchSpace

SPLITS = ("inner", "eval")
COLUMNS = ("config", "seed", "split", "ne", "auc", "logloss", "seconds", "examples", "train_flops_per_example",
           "family", "seq_share", "compskip", "max_len", "config_hash")
MAX_DRAWS = 50  # allocations drawn per wanted config before giving up (infeasible ones are skipped)


def config_hash(config: KunlunConfig) -> str:
    """The config without its seed, split and provenance: the same model and training on either split."""
    c = config.copy()
    c.train.seed, c.train.split, c.provenance = 0, "eval", {}
    return hashlib.sha256(c.to_yaml().encode()).hexdigest()[:12]


def sample_configs(space: SearchSpace, n: int, seed: int) -> list[tuple[str, KunlunConfig]]:
    """`n` distinct feasible configs drawn uniformly from the space (RandomTrial), on its budget: (id, config)."""
    solver = BudgetSolver(space)
    out: dict[str, tuple[str, KunlunConfig]] = {}
    for draw in range(n * MAX_DRAWS):
        solution = solver.solve(space.sample(RandomTrial(seed * 1_000_003 + draw)))
        if solution.feasible:
            out.setdefault(config_hash(solution.config), (f"c{len(out):02d}", solution.config))
        if len(out) == n:
            return list(out.values())
    raise ConfigError("--configs", f"only {len(out)} distinct feasible configs in {n * MAX_DRAWS} draws from the "
                      f"space {space.spec.name!r}: ask for fewer")


def reference_config(space: SearchSpace, name: str) -> KunlunConfig:
    """A hand-made config (preset or YAML) on the space's data, schema and `train` settings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its streams the data lacks are dropped, as `kunlun train --data` does
        config = KunlunConfig.load(name).with_schema(space.base.schema, space.base.workload)
    config.train = space.base.train
    return config.copy()


def read_runs(path: Path, hashes: dict[str, str]) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Rows of these configs already in runs.csv, keyed (config, seed, split); a row whose config id names another
    config is bad input. Rows of configs not in `hashes` (a run with more --configs) are left out."""
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ConfigError("", f"not a runs file of this script (columns {', '.join(COLUMNS)})", path)
        rows = {}
        for row in reader:
            if row["config"] not in hashes:
                continue
            if hashes[row["config"]] != row["config_hash"]:
                raise ConfigError("config_hash", f"{row['config']} was run with another config ({row['config_hash']}):"
                                  " other options or another space; use another --out", path)
            rows[(row["config"], int(row["seed"]), row["split"])] = row
    return rows


def run_one(config: KunlunConfig, seed: int, split: str) -> dict[str, Any]:
    from kunlun.model.count import count_flops
    from kunlun.search.training import check_finite, train_and_evaluate, training_data

    c = config.copy()
    c.train.seed, c.train.split = seed, split
    # as `kunlun train --split` does: the vocabularies and length histograms of this split's own training part
    data = training_data(c)
    c = c.with_schema(data.schema, data.workload)
    start = time.perf_counter()
    metrics = train_and_evaluate(c, data, every=0)
    check_finite(metrics)
    seconds = time.perf_counter() - start
    m, flops = c.model, count_flops(c, c.workload)
    return {"ne": metrics["ne"], "auc": metrics["auc"], "logloss": metrics["logloss"], "seconds": round(seconds, 2),
            "examples": metrics["examples"], "train_flops_per_example": flops.train_flops_per_example,
            "family": m.family, "seq_share": flops.seq_share,
            "compskip": m.schedule if isinstance(m.schedule, str) else "|".join("+".join(s) for s in m.schedule),
            "max_len": json.dumps({n: m.stream(n).max_len for n in c.stream_names})}


def run_all(jobs: dict[Any, tuple[KunlunConfig, int, str]], record: Callable[[Any, dict[str, Any]], None],
            workers: int) -> None:
    """`run_one(*job)` for every job, `record(key, result)` as each finishes: in this process, or in `workers`
    spawned ones (a forked child would inherit torch's thread pools), rows then landing in completion order."""
    from kunlun.model.train import use_cpu_threads

    if workers == 1:
        use_cpu_threads()
        for key, job in jobs.items():
            record(key, run_one(*job))
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=use_cpu_threads, initargs=(workers,))
    with pool:
        running = {pool.submit(run_one, *job): key for key, job in jobs.items()}
        for future in as_completed(running):
            record(running[future], future.result())


# -- statistics ------------------------------------------------------------------------------------------------------

def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis, tied values given their average rank."""
    flat = np.asarray(x, dtype=float).reshape(-1, np.shape(x)[-1])
    out = np.empty_like(flat)
    for i, row in enumerate(flat):
        r = np.empty(len(row))
        r[np.argsort(row, kind="stable")] = np.arange(1, len(row) + 1)
        _, inverse, counts = np.unique(row, return_inverse=True, return_counts=True)
        out[i] = np.bincount(inverse, weights=r)[inverse] / counts[inverse]
    return out.reshape(np.shape(x))


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation along the last axis (NaN where either side is constant)."""
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean(axis=-1, keepdims=True)
    rb -= rb.mean(axis=-1, keepdims=True)
    den = np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(-1) / np.where(den > 0, den, 1), np.nan)


def spread(x: np.ndarray) -> dict[str, Any]:
    """x: (configs, seeds) NEs of one split. `seed_sd`: one config's spread over seeds (pooled); `config_sd`: the
    spread of the config means; `between_share`: the share of one run's NE variance that is the config's, the seed
    noise left in the means taken out (the intraclass correlation: how far one seed can rank configs)."""
    means = x.mean(axis=1)
    config_var = float(np.var(means, ddof=1))
    out: dict[str, Any] = {"config_sd": math.sqrt(config_var), "ne_range": [float(means.min()), float(means.max())]}
    if x.shape[1] > 1:
        sds = np.std(x, axis=1, ddof=1)
        seed_var = float(np.mean(sds ** 2))
        true_var = max(config_var - seed_var / x.shape[1], 0.0)
        out.update(seed_sd=math.sqrt(seed_var), seed_sd_range=[float(sds.min()), float(sds.max())],
                   config_over_seed=math.sqrt(config_var / seed_var) if seed_var > 0 else math.inf,
                   between_share=true_var / (true_var + seed_var) if true_var + seed_var > 0 else math.nan)
    return out


def picks(inner: np.ndarray, top: int) -> dict[str, list[int]]:
    """The config index each rule picks from the inner NEs (configs, seeds); rules that use one seed pick once per
    seed (the seed a search would have trained)."""
    n, s = inner.shape
    mean = inner.mean(axis=1)
    bound = mean + (t95(s - 1) * inner.std(axis=1, ddof=1) / math.sqrt(s) if s > 1 else 0.0)
    reeval = []
    for j in range(s):
        best = np.argsort(inner[:, j], kind="stable")[:top]
        reeval.append(int(best[np.argmin(mean[best])]))
    return {"single_seed": [int(np.argmin(inner[:, j])) for j in range(s)], "mean": [int(np.argmin(mean))],
            "bound": [int(np.argmin(bound))], "reeval_top": reeval}


def summarise(rows: list[dict[str, Any]], seeds: list[int], top: int = 3, boot: int = 2000,
              references: tuple[str, ...] = (), rng_seed: int = 0) -> dict[str, Any]:
    def table(ids: list[str]) -> dict[str, np.ndarray]:
        return {split: np.array([[ne[(c, s, split)] for s in seeds] for c in ids], dtype=float) for split in SPLITS}

    ne = {(r["config"], int(r["seed"]), r["split"]): float(r["ne"]) for r in rows}
    ids = sorted({r["config"] for r in rows} - set(references))
    done = [c for c in ids if all((c, s, sp) in ne for s in seeds for sp in SPLITS)]
    out: dict[str, Any] = {"configs": len(done), "configs_incomplete": len(ids) - len(done), "seeds": seeds}
    if len(done) < 3:
        out["note"] = "fewer than 3 configs with every seed on both splits: no statistics yet"
        return out
    t = table(done)
    inner, ev = t["inner"], t["eval"]
    n, s = inner.shape
    rng = np.random.default_rng(rng_seed)
    ci, si = rng.integers(n, size=(boot, n)), rng.integers(s, size=(boot, n, s))
    se = rng.integers(s, size=(boot, n, s))
    boot_inner = np.take_along_axis(inner[ci], si, axis=2).mean(axis=2)
    boot_eval = np.take_along_axis(ev[ci], se, axis=2).mean(axis=2)
    rho = spearman(boot_inner, boot_eval)
    out["spearman"] = {"rho": float(spearman(inner.mean(1), ev.mean(1))),
                       "ci95": [float(np.nanpercentile(rho, 2.5)), float(np.nanpercentile(rho, 97.5))],
                       "bootstrap": boot}
    out["spearman_single_seed"] = float(np.mean(spearman(inner.T, ev.T)))
    out["spread"] = {split: spread(t[split]) for split in SPLITS}
    eval_mean = ev.mean(axis=1)
    oracle = float(eval_mean.min())
    regret: dict[str, Any] = {}
    for rule, chosen in picks(inner, top).items():
        regret[rule] = {"regret": float(np.mean([eval_mean[i] - oracle for i in chosen])),
                        "eval_ne": float(np.mean(eval_mean[chosen])), "picked": [done[i] for i in chosen]}
    regret["random"] = {"regret": float(eval_mean.mean() - oracle), "eval_ne": float(eval_mean.mean())}
    out["regret"] = regret
    out["oracle"] = {"config": done[int(np.argmin(eval_mean))], "eval_ne": oracle}
    out["top"] = top
    out["per_config"] = {c: {"inner_ne": float(inner[i].mean()), "eval_ne": float(eval_mean[i]),
                             "inner_sd": float(inner[i].std(ddof=1)) if s > 1 else None,
                             "eval_sd": float(ev[i].std(ddof=1)) if s > 1 else None} for i, c in enumerate(done)}
    refs = [r for r in references if all((r, sd, sp) in ne for sd in seeds for sp in SPLITS)]
    if refs:
        rt = table(refs)
        out["references"] = {r: {"inner_ne": float(rt["inner"][i].mean()), "eval_ne": float(rt["eval"][i].mean()),
                                 "eval_ne_seeds": rt["eval"][i].tolist(),
                                 "picks_beat_it": {rule: float(v["eval_ne"]) < float(rt["eval"][i].mean())
                                                   for rule, v in regret.items() if rule != "random"}}
                             for i, r in enumerate(refs)}
    return out


# -- command ---------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("space", help="space YAML or space preset")
    p.add_argument("--data", help="synthetic | movielens:PATH | taobao:PATH (default: the space's)")
    p.add_argument("--budget", help="per training example (default: the space's)")
    p.add_argument("--examples", type=int, help="training examples per run (default: the space's)")
    p.add_argument("--configs", type=int, default=16, help="configs sampled from the space (default 16)")
    p.add_argument("--seeds", type=int, default=3, help="initialisation seeds per config and split (default 3)")
    p.add_argument("--top", type=int, default=3, help="configs re-evaluated by the reeval_top rule (default 3)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the config sample (default 0)")
    p.add_argument("--reference", action="append", default=[], metavar="CONFIG",
                   help="a hand-made config (preset or YAML) trained the same way, to compare against (repeatable)")
    p.add_argument("--workers", type=int, default=1,
                   help="runs trained at once, one process each, with the cores shared out (default 1)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--out", type=Path, required=True, help="folder for runs.csv, configs/ and summary.json")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _main(args)
    except ConfigError as e:
        print(f"selection: {e}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    from tqdm import tqdm


    for flag, value, low in (("--configs", args.configs, 3), ("--seeds", args.seeds, 1), ("--top", args.top, 1),
                             ("--workers", args.workers, 1), ("--examples", args.examples or 1, 1),
                             ("--bootstrap", args.bootstrap, 1)):
        if value < low:
            raise ConfigError(flag, f"must be >= {low}, got {value}")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError("--out", f"{args.out} is a file (allowed: a folder)")
    overrides = {k: v for k, v in (("data", args.data), ("budget", args.budget), ("examples", args.examples))
                 if v is not None}
    space = SearchSpace.load(args.space, **overrides)
    configs = sample_configs(space, args.configs, args.sample_seed)
    configs += [(r, reference_config(space, r)) for r in args.reference]
    hashes = {cid: config_hash(c) for cid, c in configs}
    runs_csv = args.out / "runs.csv"
    done = read_runs(runs_csv, hashes)
    seeds = [space.spec.seed + i for i in range(args.seeds)]
    (args.out / "configs").mkdir(parents=True, exist_ok=True)
    for cid, c in configs:
        c.to_yaml(args.out / "configs" / f"{Path(cid).stem}.yaml")
    if not runs_csv.is_file():
        runs_csv.write_text(",".join(COLUMNS) + "\n")
    # config-major: the statistics need every seed of a config on both splits, so an early stop keeps whole configs
    todo = [(cid, c, seed, split) for cid, c in configs for seed in seeds for split in SPLITS
            if (cid, seed, split) not in done]
    bar = tqdm(total=len(configs) * len(seeds) * len(SPLITS), initial=len(done), desc="runs", unit="run",
               file=sys.stderr, disable=args.no_progress, dynamic_ncols=True)

    def record(cid: str, seed: int, split: str, result: dict[str, Any]) -> None:
        row = {"config": cid, "seed": seed, "split": split, **result, "config_hash": hashes[cid]}
        with runs_csv.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=COLUMNS).writerow(row)
        bar.update()

    run_all({(cid, seed, split): (c, seed, split) for cid, c, seed, split in todo},
            lambda key, result: record(*key, result), args.workers)
    bar.close()
    rows = list(read_runs(runs_csv, hashes).values())
    summary = {"space": space.spec.name, "data": space.base.train.data, "budget": space.spec.budget.amount,
               "examples": space.base.train.examples, "epochs": space.base.train.epochs,
               "sample_seed": args.sample_seed,
               **summarise(rows, seeds, args.top, args.bootstrap, tuple(args.reference))}
    text = json.dumps(finite(summary), indent=2)
    (args.out / "summary.json").write_text(text + "\n")
    print(text)
    print(_headline(summary), file=sys.stderr)
    return 0



def _headline(s: dict[str, Any]) -> str:
    if "spearman" not in s:
        return f"selection: {s.get('note', '')}"
    sp, r = s["spearman"], s["regret"]
    inner = s["spread"]["inner"]
    seed_sd = f"seed sd {inner['seed_sd']:.4f} vs " if "seed_sd" in inner else ""
    return (f"selection: {s['configs']} configs x {len(s['seeds'])} seeds: Spearman {sp['rho']:.2f} "
            f"[{sp['ci95'][0]:.2f}, {sp['ci95'][1]:.2f}]; inner {seed_sd}config sd {inner['config_sd']:.4f}; "
            "eval regret " + ", ".join(f"{k} {v['regret']:.4f}" for k, v in r.items()))


if __name__ == "__main__":
    sys.exit(main())
