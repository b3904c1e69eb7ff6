"""What every worker needs to rebuild a search (picklable: it travels to worker processes and Ray actors)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kunlun.space.space import SearchSpace


@dataclass
class SearchContext:
    space: str  # preset name or YAML path
    overrides: dict[str, Any]  # data, budget, examples, seed
    out: Path
    storage: str
    study_name: str
    trials: int  # COMPLETE trials to reach (feasible or infeasible)
    objectives: list[str]
    sampler: str = "auto"
    seed: int = 0
    price: str = "predicted"  # "measured": trials also record their measured time per example (search/trial.py)

    def load_space(self) -> SearchSpace:
        with warnings.catch_warnings():  # the search process said them when it loaded the space first
            warnings.simplefilter("ignore")
            return SearchSpace.load(self.space, **self.overrides)

    @property
    def directions(self) -> list[str]:
        return ["minimize"] * len(self.objectives)

    def trial_folder(self, number: int) -> Path:
        return self.out / "trials" / str(number)
