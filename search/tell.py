"""Turning a trial Outcome into Optuna's record of it (shared by the local and the Ray backend)."""

from __future__ import annotations

import sys
from typing import Any

from kunlun.search.trial import Outcome

CONSTRAINT_KEY = "constraints"  # one constraint, the budget: > 0 when the allocation cannot land on it


def record_attrs(trial: Any, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def tell(study: Any, trial: Any, outcome: Outcome) -> bool:
    """False when the trial was no longer RUNNING: failed as interrupted while it ran (its heartbeat missed the grace
    period: a stalled process, a lost storage connection); its retry is queued, this result is dropped."""
    import optuna
    from optuna.trial import TrialState

    try:
        record_attrs(trial, outcome.attrs)
        if outcome.state in ("complete", "infeasible"):
            # Optuna's list form (system attr "constraints"): samplers read it as Trial.set_constraint's, and
            # optuna-dashboard reads only this form (feasible / infeasible markers)
            study._storage.set_trial_system_attr(trial._trial_id, CONSTRAINT_KEY,
                                                 [1.0 if outcome.state == "infeasible" else 0.0])
            study.tell(trial, outcome.values, skip_if_finished=True)
        elif outcome.state == "pruned":
            study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    except optuna.exceptions.UpdateFinishedTrialError:
        print(f"kunlun search: trial {trial.number} was failed as interrupted while it ran (no heartbeat within the "
              "grace period); its result is dropped, its retry is queued", file=sys.stderr)
        return False
    return True
