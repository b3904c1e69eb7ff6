"""The gpu-scaling space (issue 17) lands at both ends of its ladder (64x, up to 4G training FLOPs per example):
solver only, nothing trains."""

from __future__ import annotations

import json

import pytest

from kunlun.model.yamlio import ConfigError
from kunlun.search.cli import main
from kunlun.space.space import SearchSpace

LADDER = (6.25e7, 4e9)  # the ends of README's scaling run (--budgets 6.25e7,2.5e8,5e8,1e9,4e9)


def _data() -> list[str]:
    """The preset's own data where this branch has it; the plain synthetic workload (same schema) otherwise."""
    try:
        SearchSpace.load("gpu-scaling")
        return []
    except ConfigError as e:
        if "capacity" not in str(e):
            raise
        return ["--data", "synthetic"]


@pytest.mark.slow
@pytest.mark.parametrize("budget", LADDER)
def test_gpu_scaling_budgets_land(budget: float, capsys: pytest.CaptureFixture) -> None:
    assert main(["search", "gpu-scaling", *_data(), "--dry-run", "--budget", repr(budget), "--samples", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["feasible"] >= 5  # of 20 samples
    low, high = report["train_flops_per_example"]
    assert abs(low - budget) <= 0.02 * budget and abs(high - budget) <= 0.02 * budget
