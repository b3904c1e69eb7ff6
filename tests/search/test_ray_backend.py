"""The ray backend: Tune runs trials, Optuna (same storage) records them."""

import os
import subprocess
import sys

import pytest
from optuna.trial import TrialState

from kunlun.search.cli import main
from kunlun.search.store import load_study

pytestmark = pytest.mark.ray


def _complete(out):
    return [t for t in load_study(out).get_trials() if t.state == TrialState.COMPLETE]


@pytest.mark.slow
def test_ray_search_end_to_end(ray_session, tiny_space, tmp_path):
    out = tmp_path / "study"
    assert main(["search", str(tiny_space), "--backend", "ray", "--trials", "2", "--out", str(out),
                 "--no-progress"]) == 0
    assert len(_complete(out)) == 2
    assert (out / "trials.csv").is_file() and (out / "ray").is_dir()
    for t in _complete(out):
        assert "ne" in t.user_attrs and "config_yaml" in t.user_attrs


def _searcher(tiny_space, tmp_path, trials=3):
    import optuna

    from kunlun.search.context import SearchContext
    from kunlun.search.progress import Progress
    from kunlun.search.ray_backend import _searcher_class
    from kunlun.search.store import storage_url

    out = tmp_path / "s"
    out.mkdir()
    ctx = SearchContext(space=str(tiny_space), overrides={}, out=out, storage=storage_url(None, out),
                        study_name="s", trials=trials, objectives=["ne"])
    optuna.create_study(study_name="s", storage=ctx.storage)
    return _searcher_class()(ctx, Progress(trials, enabled=False)), out


def test_early_stopped_trials_are_pruned_and_failures_fail(tiny_space, tmp_path):
    searcher, out = _searcher(tiny_space, tmp_path)
    for trial_id in ("a", "b", "c"):
        assert isinstance(searcher.suggest(trial_id), dict)
    assert searcher.suggest("d") is None  # three slots are taken: wait for one to free
    searcher.on_trial_result("a", {"ne": 0.9, "training_iteration": 1})
    searcher.on_trial_complete("a", {"ne": 0.9, "training_iteration": 1})  # no final report: ASHA stopped it
    searcher.on_trial_complete("b", None, error=True)
    searcher.on_trial_complete("c", {"ne": 0.8, "final": True, "state": "complete",
                                     "attrs_json": '{"ne": 0.8, "family": "kunlun"}'})
    trials = searcher._ot_study.get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[2].user_attrs["family"] == "kunlun"
    assert (out / "trials.csv").is_file()


@pytest.mark.slow
def test_ray_search_on_a_two_node_cluster(tiny_space, tmp_path):
    """Two simulated nodes, a separate driver; trial 0's Ray worker is killed (SIGKILL, injected): Tune re-runs the
    same Optuna trial and the study completes."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        out = tmp_path / "study"
        # a separate driver, as on a real cluster: the package travels to the nodes in runtime_env
        r = subprocess.run([sys.executable, "-m", "kunlun.search.cli", "search", str(tiny_space), "--backend", "ray",
                            "--address", cluster.address, "--trials", "2", "--out", str(out), "--no-progress"],
                           capture_output=True, text=True, timeout=400,
                           env={**os.environ, "RAY_AUTH_MODE": "disabled", "KUNLUN_FAULTS": "crash@0"})
        assert r.returncode == 0, r.stderr[-3000:]
        assert len(_complete(out)) == 2
        assert (out / "trials" / "0" / "fault-crash").is_file()  # the worker did die mid-trial
        assert 0 in [t.number for t in _complete(out)]  # ...and the same trial finished on a re-run
    finally:
        cluster.shutdown()
