"""Turning a trial Outcome into Optuna's record of it (shared by the local and the Ray backend)."""

from __future__ import annotations

from typing import Any

from kunlun.search.trial import Outcome

CONSTRAINT = "budget"  # > 0: the allocation cannot land on the budget


def record_attrs(trial: Any, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def tell(study: Any, trial: Any, outcome: Outcome) -> None:
    from optuna.trial import TrialState

    record_attrs(trial, outcome.attrs)
    if outcome.state in ("complete", "infeasible"):
        trial.set_constraint(CONSTRAINT, 1.0 if outcome.state == "infeasible" else 0.0)
        study.tell(trial, outcome.values)
    elif outcome.state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
