"""The search's progress bar (stderr): COMPLETE trials out of --trials, with the best NE so far."""

from __future__ import annotations

import math
import sys
from typing import Any

from kunlun.search.store import trial_status


class Progress:
    def __init__(self, total: int, enabled: bool = True):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="trials", unit="trial", file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True)

    def update(self, study: Any) -> None:
        trials = study.get_trials(deepcopy=False)
        status = [trial_status(t) for t in trials]
        done = sum(s in ("complete", "infeasible") for s in status)
        nes = [t.user_attrs.get("ne") for t, s in zip(trials, status) if s == "complete"]
        nes = [v for v in nes if v is not None and math.isfinite(v)]
        self.bar.n = done
        self.bar.set_postfix(best_ne=f"{min(nes):.4f}" if nes else "-", infeasible=status.count("infeasible"),
                             pruned=status.count("pruned"), failed=status.count("fail"), refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
