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
