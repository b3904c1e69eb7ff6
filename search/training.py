"""The one way to train and evaluate a config: trials, re-evaluation, scaling's seed repeats, `kunlun train` and the
benchmarks all call `train_and_evaluate`.

The caller opens the data (`training_data`: the cached dataset of `config.train`) and decides the schema: a trial's
config already holds its space's, `kunlun train` and the benchmarks adopt the split's own (`with_schema`) first.
On CUDA the batches are gathered on the device (data/device_data.py; `KUNLUN_DEVICE_DATA=auto|on|off`, auto: on CUDA).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

DEVICE_DATA_ENV = "KUNLUN_DEVICE_DATA"


def device_data_choice() -> str:
    """KUNLUN_DEVICE_DATA: auto (the default), on or off."""
    choice = os.environ.get(DEVICE_DATA_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "on", "off"):
        from kunlun.model.yamlio import ConfigError

        raise ConfigError(DEVICE_DATA_ENV, f"{choice!r} is not one of auto, on, off")
    return choice


def device_data(device: Any) -> bool:
    """Whether training on `device` gathers its batches there (auto: on CUDA)."""
    choice = device_data_choice()
    return choice == "on" or (choice == "auto" and device.type == "cuda")


def training_data(config: Any) -> Any:
    """The dataset `config.train` names (data, seed, examples, split), opened once per process."""
    from kunlun.space.data import check_data_path, open_cached

    t = config.train
    check_data_path(t.data)  # every time: a cached dataset's files may be gone since
    return open_cached(t.data, t.data_seed, t.data_examples, t.split)


def train_and_evaluate(config: Any, data: Any, on_eval: Callable[[Any], None] | None = None, *,
                       every: int | None = None, progress: bool = False,
                       prepare: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Build the model of `config` (already holding `data`'s schema), train it per `config.train` and evaluate it on
    `data`'s evaluation split every `every` examples (default `train.eval_every`; 0: at the end only) and at the end.
    `on_eval` sees each evaluation (`EvalPoint`; it may raise, e.g. to prune a trial); `prepare` sees the model before
    training (the injected NaN fault). Returns `kunlun train --json`'s keys, then `timed_us_per_example` and
    `device` (where it trained: a CUDA name or "cpu")."""
    import torch

    from kunlun.data.loader import EvalLoader, TrainLoader
    from kunlun.model.count import count_flops
    from kunlun.model.kunlun import KunlunModel
    from kunlun.model.train import fit

    train = config.train
    torch.manual_seed(train.seed)
    model = KunlunModel(config)
    if prepare is not None:
        prepare(model)
    max_lens = {name: config.model.stream(name).max_len for name in config.stream_names}
    loader = TrainLoader(data, max_lens, train.batch_size, train.examples_for(len(data.train_index)), seed=train.seed)
    evaluation = EvalLoader(data, max_lens, train.eval_batch_size)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device_data(device):
        from kunlun.data.device_data import on_device

        loader, evaluation = on_device(loader, evaluation, device)
    flops = count_flops(config, config.workload).train_flops_per_example
    every = train.eval_every if every is None else every
    result = fit(model, loader, evaluation, every, on_eval, train=train, train_flops_per_example=flops,
                 device=device, progress=progress)
    return {
        **{k: result.metrics[k] for k in ("ne", "auc", "logloss", "calibration")},
        "examples": result.examples,
        "epochs": result.examples / len(data.train_index),
        "seconds": result.seconds,
        "train_seconds": result.train_seconds,
        "eval_seconds": result.seconds - result.train_seconds,  # every evaluation, the final one included
        "examples_per_second": result.examples_per_second,
        "per_task": result.metrics["per_task"],
        "train_flops_per_example": flops,
        "curve": [list(point) for point in result.curve],
        "timed_us_per_example": result.timed_us_per_example,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }


def check_finite(report: dict[str, Any]) -> None:
    """A search's rule: a NaN or infinite NE, AUC or logloss fails the run (`kunlun train` prints them instead)."""
    if not all(math.isfinite(report[k]) for k in ("ne", "auc", "logloss")):
        raise FloatingPointError(f"non-finite evaluation metrics: NE {report['ne']}, AUC {report['auc']}")
