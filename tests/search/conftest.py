"""Search test fixtures: a tiny space (fast trials) and one Ray session shared by the ordinary Ray tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TINY = """\
name: tiny
budget: {kind: flops, value: 2.0e6, tolerance: 0.02}
base: kunlun-small
data: synthetic
seed: 0
examples: 256
fixed:
  train: {batch_size: 128, data_examples: 3000, eval_batch_size: 1024}
params:
  family: [kunlun, interformer]
  seq_share: {low: 0.5, high: 0.8}
  num_layers: [2]
  schedule: {named: [alternate, none]}
  window: {choices: [null, 4], tie: stream}
  kv_len: [8, 16]
  seeds: [8]
  summary_tokens: [2]
  heads: [2]
  experts: [1]
  fm_rank: [4]
solver: {width_multiple: 8, head_dim_multiple: 2, min_width: 8, max_width: 256}
"""


@pytest.fixture(scope="session")
def tiny_space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("space") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for every ordinary Ray test (ray.init costs seconds)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch):
    """Fault injection for the reliability tests (search/faults.py, KUNLUN_FAULTS; inert unless set):
    `faults("crash@2", "nan@3")` injects those faults into trials 2 and 3 of the searches this test runs, in-process or
    started by `search_process`. Heartbeats every 1 s, a trial stale after 3 s without one (KUNLUN_HEARTBEAT)."""
    monkeypatch.setenv("KUNLUN_HEARTBEAT", "1,3")
    monkeypatch.delenv("KUNLUN_FAULTS", raising=False)
    monkeypatch.delenv("KUNLUN_TRIAL_MEMORY", raising=False)

    def inject(*specs: str) -> None:
        monkeypatch.setenv("KUNLUN_FAULTS", ",".join(specs))

    return inject


@pytest.fixture
def search_process(tmp_path: Path):
    """`search_process(*argv)` starts `kunlun search *argv` in a process of its own (a session leader, with this
    test's environment, stdout and stderr into a file: `p.output()` reads them); whatever of it is still running at
    teardown is killed (its process group)."""
    import contextlib
    import signal
    import subprocess
    import sys

    started: list[subprocess.Popen] = []

    def start(*argv: str) -> subprocess.Popen:
        log = tmp_path / f"search-{len(started)}.log"
        with log.open("w") as f:
            p = subprocess.Popen([sys.executable, "-m", "kunlun.search.cli", "search", *map(str, argv),
                                  "--no-progress"], env={**os.environ, "RAY_AUTH_MODE": "disabled"},
                                 start_new_session=True, stdout=f, stderr=subprocess.STDOUT, text=True)
        p.output = log.read_text
        started.append(p)
        return p

    yield start
    for p in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


@pytest.fixture
def hand_study():
    """`hand_study(folder, feasible=True)`: a study folder made by hand (no training): two trials, NE 0.97 at
    2 us and 1.02 (worse than the base rate) at 1 us, COMPLETE (or FAIL with feasible=False)."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from kunlun.model.config import KunlunConfig
    from kunlun.search.store import StudyInfo, storage_url

    def make(out: Path, feasible: bool = True) -> Path:
        out.mkdir(parents=True)
        url = storage_url(None, out)
        StudyInfo(name="s", storage=url, space="demo", budget=4e6, budget_kind="flops", families=["kunlun"],
                  objectives=["ne", "b200_us_per_example"], seed=0, trials=2, data="synthetic").write(out)
        study = optuna.create_study(study_name="s", storage=url, directions=["minimize"] * 2)
        dist = {"x": FloatDistribution(0, 1)}
        config = KunlunConfig.preset("kunlun-small").to_yaml()
        for ne, us in [(0.97, 2.0), (1.02, 1.0)]:
            attrs = {"ne": ne, "auc": 0.7, "train_flops_per_example": 4e6, "b200_us_per_example": us,
                     "predicted_mfu": 0.25, "seq_share": 0.5, "family": "kunlun", "compskip": "none",
                     "windows": '{"click": null, "impression": 4}', "config_yaml": config}
            if feasible:
                study.add_trial(create_trial(values=[ne, us], params={"x": 0.5}, distributions=dist,
                                             user_attrs=attrs))
            else:
                study.add_trial(create_trial(state=TrialState.FAIL, params={"x": 0.5}, distributions=dist,
                                             user_attrs=attrs))
        return out

    return make
