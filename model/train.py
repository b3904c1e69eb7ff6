"""The training loop: `fit(model, train_batches, eval_batches, eval_every, on_eval)`.

AdamW for dense parameters; the embedding tables (`model.sparse_parameters()`) get their own learning rate
(`TrainConfig.sparse_lr`) and optimiser (`sparse_optimizer`: AdamW without weight decay, or Adagrad, whose
per-row accumulators suit rarely seen ids); no weight decay on embeddings, which would shrink rows that
have no gradient. Gradient clipping on all parameters; a non-finite loss stops training with `NonFiniteLossError`.
Metrics are computed over the whole evaluation split (`kunlun.model.metrics`).

On CUDA: bf16 autocast, fused AdamW, and no host-device synchronisation in the step: the loss is read every
`CUDA_LOSS_EVERY` steps (and at the last), so the host queues steps ahead of the GPU; a non-finite loss is caught at
the next read. The steps of the second half of training are timed between two synchronisations, evaluations left out
(`FitResult.timed_seconds`): the first half holds the Triton compilations and autotuning."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from kunlun.model.batch import Batch
from kunlun.model.config import TrainConfig
from kunlun.model.metrics import evaluate

CUDA_LOSS_EVERY = 32  # steps between reads of the loss on CUDA (each read waits for the GPU)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (a failed trial, not a bad input)."""

    def __init__(self, examples: int, loss: float):
        self.examples = examples
        self.loss = loss
        super().__init__(f"non-finite training loss {loss} after {examples} examples")


@dataclass
class EvalPoint:
    examples: int  # training examples processed when evaluated
    metrics: dict  # `kunlun.model.metrics.evaluate` output


@dataclass
class FitResult:
    metrics: dict  # final evaluation: ne, auc, logloss, calibration, per_task
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (examples, ne, auc)
    examples: int = 0
    seconds: float = 0.0  # wall time of the whole fit, evaluations included
    train_seconds: float = 0.0  # training steps only, batch loading included
    timed_examples: int = 0  # the steady-state window: training examples of the second half
    timed_seconds: float = 0.0  # their steps' wall time, device-synchronised at both ends, evaluations excluded

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.train_seconds if self.train_seconds > 0 else 0.0

    @property
    def timed_us_per_example(self) -> float | None:
        return 1e6 * self.timed_seconds / self.timed_examples if self.timed_examples else None


def use_cpu_threads(processes: int = 1) -> None:
    """Set torch's intra-op threads for one of `processes` training processes on this machine: the cores shared
    out, one kept for the batch-assembly threads. torch's default (every core in every process) oversubscribes, and
    waiting intra-op threads spin: with two search workers on two cores, a MovieLens trial at 3.2 MFLOPs/example
    and 60k examples took 298 s; with one thread each, trials at the same budget took about 63 s."""
    torch.set_num_threads(max(1, ((os.cpu_count() or 2) - 1) // processes))


def make_optimizers(model: nn.Module, train: TrainConfig,
                    device: torch.device | None = None) -> list[torch.optim.Optimizer]:
    """On CUDA the AdamW updates are fused (one kernel per parameter group instead of several per tensor)."""
    sparse = list(model.sparse_parameters()) if hasattr(model, "sparse_parameters") else []
    dense = list(model.dense_parameters()) if hasattr(model, "dense_parameters") else list(model.parameters())
    fused = {"fused": True} if device is not None and device.type == "cuda" else {}
    opts: list[torch.optim.Optimizer] = [
        torch.optim.AdamW(dense, lr=train.lr, weight_decay=train.weight_decay, **fused)]
    if sparse:
        if train.sparse_optimizer == "adagrad":
            opts.append(torch.optim.Adagrad(sparse, lr=train.sparse_lr))
        else:
            opts.append(torch.optim.AdamW(sparse, lr=train.sparse_lr, weight_decay=0.0, **fused))
    return opts


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable[Batch],
            device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid predictions and labels over all batches, each (N, num_tasks)."""
    was_training = model.training
    model.eval()
    preds, labels = [], []
    with _autocast(device):
        for batch in batches:
            preds.append(torch.sigmoid(model(batch.to(device)).float()).cpu().numpy())
            labels.append(batch.labels.cpu().numpy())  # batches may already live on the device
    model.train(was_training)
    return np.concatenate(preds), np.concatenate(labels)


class LearningRate:
    """Per-step learning rates by examples seen: constant; a cosine decay to `min_lr_ratio` of each group's rate at
    `total` examples; or wsd, that cosine squeezed into the last `decay_fraction` of `total`. Measured on the inner
    splits: past about one epoch a constant rate overfits; under one epoch, a cosine decays before the history
    features are learned (TrainConfig.lr_schedule)."""

    def __init__(self, optimizers: list[torch.optim.Optimizer], train: TrainConfig, total: int):
        self.groups = [(g, g["lr"]) for opt in optimizers for g in opt.param_groups]
        self.train, self.total = train, max(int(total), 1)

    def set(self, examples: int) -> None:
        if self.train.lr_schedule == "constant":
            return
        progress = min(examples / self.total, 1.0)
        if self.train.lr_schedule == "wsd":
            start = 1 - self.train.decay_fraction
            progress = max(progress - start, 0.0) / self.train.decay_fraction
        floor = self.train.min_lr_ratio
        factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        for group, base in self.groups:
            group["lr"] = base * factor


def fit(
    model: nn.Module,
    train_batches: Iterable[Batch],
    eval_batches: Iterable[Batch],
    eval_every: int = 0,
    on_eval: Callable[[EvalPoint], None] | None = None,
    *,
    train: TrainConfig | None = None,
    tasks: list[str] | None = None,
    train_flops_per_example: float | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> FitResult:
    """Train on `train_batches` (one pass over the iterable), evaluating on `eval_batches` (re-iterated at
    each evaluation) every `eval_every` training examples (0: only at the end) and at the end; `on_eval`
    sees every evaluation (it may raise, e.g. to prune a trial). `train_flops_per_example` (from
    `count_flops`) turns examples/s into achieved TFLOP/s on the progress bar. Batches already on `device` are used
    as they are (`Batch.to` is then free)."""
    config = getattr(model, "config", None)  # a KunlunModel's; plain modules pass `train` and `tasks`
    train = train or getattr(config, "train", None) or TrainConfig()
    tasks = tasks or (list(config.schema.tasks) if config is not None else ["label"])
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(train.seed)
    model.to(device).train()
    optimizers = make_optimizers(model, train, device)
    params = [p for p in model.parameters() if p.requires_grad]
    curve: list[tuple[int, float, float]] = []
    total = getattr(train_batches, "examples", None)
    bar = tqdm(total=total, unit="ex", file=sys.stderr, disable=not progress, dynamic_ncols=True, leave=False)

    def run_eval(examples: int) -> dict:
        batches = tqdm(eval_batches, desc="evaluating", unit="batch", file=sys.stderr, disable=not progress,
                       dynamic_ncols=True, leave=False)  # evaluation takes a while too: it gets its own bar
        metrics = evaluate(*predict(model, batches, device), tasks)
        curve.append((examples, metrics["ne"], metrics["auc"]))
        if on_eval is not None:
            on_eval(EvalPoint(examples, metrics))
        return metrics

    schedule = LearningRate(optimizers, train, total or train.examples)
    start = time.perf_counter()
    eval_seconds = 0.0
    examples, next_eval = 0, eval_every or math.inf
    timed_from, timed_start, timed_examples, timed_eval = (total or train.examples) // 2, None, 0, 0.0
    read_every = CUDA_LOSS_EVERY if device.type == "cuda" else 1
    metrics: dict | None = None
    value = math.nan
    for step, batch in enumerate(train_batches):
        if timed_start is None and examples >= timed_from:
            _synchronize(device)
            timed_start, timed_examples = time.perf_counter(), examples
        batch = batch.to(device)
        with _autocast(device):
            loss = model.loss(batch)
        read = step % read_every == 0
        if read:
            value = float(loss.detach())  # on CUDA a synchronisation: not every step
            if not math.isfinite(value):
                bar.close()
                raise NonFiniteLossError(examples, value)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, train.clip_norm)
        schedule.set(examples)
        for opt in optimizers:
            opt.step()
        examples += batch.size
        bar.update(batch.size)
        rate = bar.format_dict.get("rate") or 0.0
        postfix = {"loss": f"{value:.4f}", "ex/s": f"{rate:,.0f}"}
        if train_flops_per_example:
            postfix["TFLOP/s"] = f"{rate * train_flops_per_example / 1e12:.4f}"
        bar.set_postfix(postfix, refresh=False)
        if examples >= next_eval:
            _synchronize(device)  # the queued training steps are not the evaluation's time
            t0 = time.perf_counter()
            metrics = run_eval(examples)
            eval_seconds += time.perf_counter() - t0
            timed_eval += time.perf_counter() - t0 if timed_start is not None else 0.0
            next_eval += eval_every
    if examples and not read and not math.isfinite(value := float(loss.detach())):  # steps since the last read
        bar.close()
        raise NonFiniteLossError(examples, value)
    _synchronize(device)
    end = time.perf_counter()
    train_seconds = end - start - eval_seconds
    timed = (examples - timed_examples, end - timed_start - timed_eval) if timed_start is not None else (0, 0.0)
    bar.close()
    if metrics is None or curve[-1][0] != examples:
        metrics = run_eval(examples)
    return FitResult(metrics, curve, examples, time.perf_counter() - start, train_seconds, *timed)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
