"""Per-stream history length (`params.max_len`) as a searchable parameter."""

import dataclasses

import pytest

from kunlun.model.count import count_flops
from kunlun.model.yamlio import ConfigError
from kunlun.space.solver import BudgetSolver
from kunlun.space.space import RandomTrial, SearchSpace

SPACE = {
    "name": "hist", "budget": {"kind": "flops", "value": 2.0e6, "tolerance": 0.02}, "base": "kunlun-small",
    "data": "synthetic", "fixed": {"train": {"data_examples": 3000}},
    "params": {"family": ["kunlun"], "seq_share": {"low": 0.6, "high": 0.6}, "num_layers": [2],
               "schedule": {"named": ["alternate"]}, "window": {"choices": [4]}, "kv_len": [8], "seeds": [8],
               "summary_tokens": [2], "heads": [2], "experts": [1], "fm_rank": [4], "max_len": [4, 64]},
    "solver": {"width_multiple": 8, "head_dim_multiple": 2, "min_width": 8, "max_width": 256},
}


def _space(**params):
    return SearchSpace.from_dict({**SPACE, "params": {**SPACE["params"], **params}})


def test_max_len_is_sampled_per_stream_and_reaches_the_config():
    space = _space()
    seen = set()
    for i in range(20):
        trial = RandomTrial(i)
        alloc = space.sample(trial)
        assert {f"max_len.{s}" for s in space.stream_names} <= set(trial.params)
        solution = BudgetSolver(space).solve(alloc)
        assert solution.feasible, solution.reason
        for name, s in alloc.streams.items():
            assert solution.config.model.stream(name).max_len == s.max_len
            seen.add(s.max_len)
    assert seen == {4, 64}


def test_each_history_length_lands_on_the_budget():
    """One solver for both lengths: a polynomial cached for one length would miss the budget with the other (the
    clipped length histogram changes the stream's FLOPs), so max_len is part of the allocation's structure."""
    space = _space()
    solver = BudgetSolver(space)
    alloc = space.sample(RandomTrial(0))
    widths = {}
    for n in (64, 4, 64):
        a = dataclasses.replace(alloc, streams={k: dataclasses.replace(s, max_len=n) for k, s in alloc.streams.items()})
        solution = solver.solve(a)
        assert solution.feasible, solution.reason
        flops = count_flops(solution.config, solution.config.workload).train_flops_per_example
        assert abs(flops - 2.0e6) <= 0.02 * 2.0e6
        widths[n] = solution.widths
    # the same FLOPs over fewer events buy wider streams
    assert all(widths[4][s] >= widths[64][s] for s in space.stream_names)
    assert any(widths[4][s] > widths[64][s] for s in space.stream_names)


def test_without_max_len_the_base_history_is_kept():
    space = SearchSpace.from_dict({**SPACE, "params": {k: v for k, v in SPACE["params"].items() if k != "max_len"}})
    trial = RandomTrial(0)
    solution = BudgetSolver(space).solve(space.sample(trial))
    assert not any(k.startswith("max_len") for k in trial.params)
    for name in space.stream_names:
        assert solution.config.model.stream(name).max_len == space.base.model.stream(name).max_len


@pytest.mark.parametrize("value, message", [([], "at least one choice"), ([0, 8], ">= 1"),
                                            ({"low": 0, "high": 8}, ">= 1")])
def test_bad_max_len_names_the_key(value, message):
    with pytest.raises(ConfigError) as e:
        _space(max_len=value)
    assert e.value.path == "params.max_len" and message in e.value.message
