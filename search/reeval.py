"""Multi-seed re-evaluation: retrain a trial's config with other initialisation seeds (same data, split and
evaluation set: the study seed fixes them).

`kunlun pareto --reeval K` reports a front config's mean NE over K new seeds with a 95% Student-t confidence
interval. `kunlun export --pick best-ne --reeval K --top T` retrains the T best trials with K new seeds each and picks
by the mean over the K + 1 seeds (the trial's own included) or by the upper end of its 95% interval (`--by bound`,
pessimistic): one seed's NE ranks noise where the seed spread is as large as the differences between configs.
`kunlun scaling` retrains each budget's best trial with the seeds after its own (`repeat_seeds`).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

# two-sided 95% Student-t quantiles by degrees of freedom; beyond 30 the normal 1.96 is close enough
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        15: 2.131, 20: 2.086, 30: 2.042}
RULES = ("mean", "bound")


def t95(dof: int) -> float:
    return next((_T95[k] for k in sorted(_T95) if k >= dof), 1.96)


def seed_ne(config_yaml: str, seed: int) -> float:
    """NE of the config retrained with initialisation seed `seed`, on the split its `train` section names."""
    from kunlun.model.config import KunlunConfig
    from kunlun.model.train import use_cpu_threads
    from kunlun.model.yamlio import load_yaml_text
    from kunlun.search.training import check_finite, train_and_evaluate, training_data

    # as `kunlun train` does: torch's default threads spin against any other training process on the cores (the
    # MovieLens export's 6 re-evaluation runs took 2,981 s beside another pipeline, its 16 trials 2,094 s)
    use_cpu_threads()
    config = KunlunConfig.from_dict(load_yaml_text(config_yaml))
    config.train.seed = seed
    report = train_and_evaluate(config, training_data(config), every=0)
    check_finite(report)
    return float(report["ne"])


def mean_ci(nes: list[float]) -> tuple[float, float]:
    """(mean, half-width of its 95% Student-t interval; NaN for one value)."""
    mean = statistics.fmean(nes)
    return mean, t95(len(nes) - 1) * statistics.stdev(nes) / math.sqrt(len(nes)) if len(nes) > 1 else math.nan


def reevaluate(config_yaml: str, k: int) -> dict[str, Any]:
    """`kunlun pareto --reeval K`: the seeds after the config's own, K of them."""
    from kunlun.model.config import KunlunConfig
    from kunlun.model.yamlio import load_yaml_text

    base_seed = KunlunConfig.from_dict(load_yaml_text(config_yaml)).train.seed
    seeds = [base_seed + 1 + i for i in range(k)]
    nes = [seed_ne(config_yaml, s) for s in seeds]
    mean, half = mean_ci(nes)
    return {"ne_mean": mean, "ne_ci": [mean - half, mean + half], "seeds": seeds, "seed_nes": nes}


def pooled_sd(groups: list[list[float]]) -> float:
    """One config's NE spread over seeds, pooled over configs (each config's own mean removed); NaN without a
    repeat."""
    dof = sum(len(g) - 1 for g in groups)
    ss = sum((x - statistics.fmean(g)) ** 2 for g in groups if len(g) > 1 for x in g)
    return math.sqrt(ss / dof) if dof > 0 else math.nan


def score(nes: dict[int, float], rule: str) -> float:
    """What a pick minimises: the mean NE over the seeds, or the upper end of its 95% interval."""
    mean, half = mean_ci(list(nes.values()))
    return mean if rule == "mean" or len(nes) < 2 else mean + half


def reeval_trial(trial: Any, k: int, cache: Path, on_run: Callable[[], None] | None = None) -> dict[int, float]:
    """seed -> NE for a finished trial's own seed and the K after it. Each new NE is saved in `cache` (a JSON file
    per trial) as soon as it is known, so an interrupted export loses at most one training; the cache is ignored
    when it belongs to another config (a study recreated under the same folder)."""
    config_yaml, own = trial.user_attrs["config_yaml"], int(trial.user_attrs["seed"])
    nes = {own: float(trial.user_attrs["ne"])}
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("config_yaml") == config_yaml:
            nes.update({int(s): float(v) for s, v in saved["nes"].items()})
    for seed in range(own + 1, own + 1 + k):
        if seed not in nes:
            nes[seed] = seed_ne(config_yaml, seed)
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(json.dumps({"config_yaml": config_yaml, "nes": nes}, indent=2))
            tmp.replace(cache)
        if on_run is not None:
            on_run()
    return {s: nes[s] for s in range(own, own + 1 + k)}


def repeat_seeds(point: dict[str, Any], config_yaml: str | None, seed: int | None, repeats: int,
                 cached: dict[int, float] | None = None, log: Any = None) -> dict[str, Any]:
    """`kunlun scaling`'s point of a budget's best trial with `seeds` and `ne_seeds` for `repeats` seeds: the trial's
    own (seed, NE) first, then seed+1, ...; NEs in `cached` (seed -> NE, from an earlier scaling.json) are reused,
    the others trained."""
    import numpy as np

    if seed is None or not config_yaml:
        if repeats > 1 and log:
            log(f"{point.get('study')} trial {point.get('trial')}: no config or seed recorded: one seed only")
        return {**point, "seeds": [seed] if seed is not None else [], "ne_seeds": [point["ne"]]}
    cached = dict(cached or {})
    if seed in cached and not math.isclose(cached[seed], point["ne"], rel_tol=1e-9, abs_tol=1e-12):
        cached = {}  # not the same trial (a study recreated under the same name): retrain
    cached[seed] = point["ne"]
    seeds = [seed + i for i in range(repeats)]
    for s in seeds:
        if s not in cached:
            cached[s] = seed_ne(config_yaml, s)
            if log:
                log(f"{point.get('study')} trial {point.get('trial')}: seed {s}: NE {cached[s]:.5f}")
    nes = [cached[s] for s in seeds]
    return {**point, "ne": float(np.mean(nes)), "seeds": seeds, "ne_seeds": nes}
