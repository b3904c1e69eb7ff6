"""Sampler and pruner defaults: TPE for one objective, NSGA-II for several; Hyperband on intermediate NE when
single-objective (Optuna's pruners compare one value per step)."""

from __future__ import annotations

import warnings
from typing import Any

from kunlun.model.yamlio import ConfigError

SAMPLERS = ("auto", "tpe", "nsga2", "random", "gp")


def make_sampler(name: str, objectives: int, seed: int | None) -> Any:
    import optuna

    if name not in SAMPLERS:
        raise ConfigError("--sampler", f"{name!r} is not a sampler (allowed: {', '.join(SAMPLERS)})")
    if name == "auto":
        name = "tpe" if objectives == 1 else "nsga2"
    if name == "tpe":
        # few startup trials: demo studies are short, and infeasible trials teach the sampler too; multivariate
        # with groups because the space is conditional (per-layer schedules, per-stream knobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True, group=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(objectives: int, rungs: int) -> Any:
    import optuna

    if objectives > 1:
        return optuna.pruners.NopPruner()
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=rungs, reduction_factor=3)
