"""`kunlun pareto --reeval K`: retrain a front config with K initialisation seeds (same data and evaluation
set: the study seed fixes them) and report mean NE with a 95% Student-t confidence interval."""

from __future__ import annotations

import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

# two-sided 95% Student-t quantiles by degrees of freedom; beyond 30 the normal 1.96 is close enough
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        15: 2.131, 20: 2.086, 30: 2.042}


def t95(dof: int) -> float:
    return next((_T95[k] for k in sorted(_T95) if k >= dof), 1.96)


def reevaluate(config_yaml: str, k: int) -> dict[str, Any]:
    from kunlun.model.config import KunlunConfig
    from kunlun.model.yamlio import load_yaml_text
    from kunlun.search.trial import train_config

    base = KunlunConfig.from_dict(load_yaml_text(config_yaml))
    seeds = [base.train.seed + 1 + i for i in range(k)]
    nes = []
    for seed in seeds:
        config = base.copy()
        config.train.seed = seed
        with tempfile.TemporaryDirectory() as tmp:
            nes.append(train_config(config, Path(tmp))["ne"])
    mean = statistics.fmean(nes)
    half = t95(k - 1) * statistics.stdev(nes) / math.sqrt(k) if k > 1 else math.nan
    return {"ne_mean": mean, "ne_ci": [mean - half, mean + half], "seeds": seeds}
