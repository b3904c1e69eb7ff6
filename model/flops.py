"""FLOP bookkeeping: per-op records, the per-batch statistics they are computed from, and the report.

The rules (DESIGN.md, "FLOP accounting") are those FlopCounterMode applies to what autograd executes:
a matmul's backward is 2x its forward when its input needs a gradient and 1x when only the weight does;
embedding lookups and elementwise ops count 0; gdpa forward = 4 * Dh * H * allowed pairs, backward 2.5x.
Every count is linear in the number of examples, the number of tokens and the number of allowed pairs, so
the report for a workload is the exact expectation over its length histograms.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import torch

from kunlun.kernels.gdpa import allowed_pairs, self_attention_pairs
from kunlun.kernels.gdpa.flops import BACKWARD_FACTOR, forward_flops, transcendentals

BYTES = 2  # bf16 activations and weights, the training dtype the cost model prices


@dataclass
class OpRecord:
    key: str  # module key (DESIGN.md scheme)
    kind: str  # linear | bmm | gdpa
    forward: float
    backward: float
    bytes: float  # bytes read and written by the forward op
    transcendentals: float = 0.0
    shape: tuple[float, ...] = ()  # (M, K, N) for matmuls; (pairs, H, Dh) for gdpa
    out_elements: float = 0.0
    stream: str | None = None  # the stream whose module ran it (the sequence branch); None: the context branch

    @property
    def training(self) -> float:
        return self.forward + self.backward


def matmul(key: str, m: float, k: float, n: float, *, input_grad: bool = True, kind: str = "linear") -> OpRecord:
    """(m, k) @ (k, n); for a bmm fold the batch into m. Backward: weight grad always, input grad if needed."""
    fwd = 2.0 * m * k * n
    return OpRecord(key, kind, fwd, fwd * (2 if input_grad else 1), BYTES * (m * k + k * n + m * n),
                    shape=(m, k, n), out_elements=m * n)


def gdpa_op(key: str, pairs: float, q_rows: float, kv_rows: float, heads: int, head_dim: int,
            activation: str) -> OpRecord:
    fwd = forward_flops(pairs, heads, head_dim)
    elements = (2 * q_rows + 2 * kv_rows) * heads * head_dim  # q, out, k, v
    return OpRecord(key, "gdpa", fwd, BACKWARD_FACTOR * fwd, BYTES * elements,
                    transcendentals(pairs, heads, activation), shape=(pairs, heads, head_dim),
                    out_elements=q_rows * heads * head_dim)


@dataclass
class StreamStats:
    """Sufficient statistics of one stream's lengths: from a batch (exact) or a histogram (expectation)."""

    examples: float
    tokens: float
    lengths: torch.Tensor | None = None  # per example, for a batch
    histogram: list[tuple[int, float]] | None = None  # (length, probability), for a workload

    @classmethod
    def from_lengths(cls, lengths: torch.Tensor, max_len: int) -> StreamStats:
        lengths = lengths.clamp(max=max_len).to(torch.int64).cpu()
        return cls(float(lengths.numel()), float(lengths.sum()), lengths=lengths)

    @classmethod
    def from_histogram(cls, histogram: list[tuple[int, float]], examples: float, max_len: int) -> StreamStats:
        clipped: dict[int, float] = defaultdict(float)
        for n, p in histogram:
            clipped[min(n, max_len)] += p
        hist = sorted(clipped.items())
        return cls(examples, examples * sum(n * p for n, p in hist), histogram=hist)

    def self_pairs(self, window: int | None) -> float:
        """Allowed (i, j) pairs of self-attention with half-window `window`, summed over examples."""
        if self.lengths is not None:
            return float(allowed_pairs(self.lengths, self.lengths, window).sum())
        return self.examples * sum(p * self_attention_pairs(n, window) for n, p in self.histogram)


@dataclass
class FlopReport:
    forward: float
    backward: float
    training: float
    examples: float
    fwd_flops_per_example: float
    train_flops_per_example: float
    sequence: float  # training FLOPs of the sequence branch (batch total)
    context: float
    seq_share: float
    params_dense: int
    params_sparse: int
    activation_bytes_per_example: float
    params: dict[str, dict[str, int]] = field(default_factory=dict)  # key -> {"dense": n, "sparse": n}
    ops: list[OpRecord] = field(default_factory=list)
    streams: tuple[str, ...] = ()

    @classmethod
    def from_ops(cls, ops: list[OpRecord], examples: float, params: dict[str, dict[str, int]],
                 streams: tuple[str, ...]) -> FlopReport:
        fwd = sum(o.forward for o in ops)
        bwd = sum(o.backward for o in ops)
        seq = sum(o.training for o in ops if o.stream is not None)
        per = max(examples, 1e-12)
        return cls(
            forward=fwd, backward=bwd, training=fwd + bwd, examples=examples,
            fwd_flops_per_example=fwd / per, train_flops_per_example=(fwd + bwd) / per,
            sequence=seq, context=fwd + bwd - seq, seq_share=seq / (fwd + bwd) if fwd + bwd else 0.0,
            params_dense=sum(p["dense"] for p in params.values()),
            params_sparse=sum(p["sparse"] for p in params.values()),
            activation_bytes_per_example=BYTES * sum(o.out_elements for o in ops) / per,
            params=params, ops=ops, streams=streams,
        )

    def by_module(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for o in self.ops:
            row = out.setdefault(o.key, {"forward": 0.0, "backward": 0.0, "training": 0.0})
            row["forward"] += o.forward
            row["backward"] += o.backward
            row["training"] += o.training
        return out

    def to_dict(self, with_ops: bool = True) -> dict:
        out = asdict(self)
        out["streams"] = list(self.streams)
        out["by_module"] = self.by_module()
        out["per_example"] = {
            "forward": self.fwd_flops_per_example, "training": self.train_flops_per_example,
            "sequence": self.sequence / max(self.examples, 1e-12), "context": self.context / max(self.examples, 1e-12),
        }
        if with_ops:
            # `kunlun flops --json` prints the records as they were before they carried their stream
            out["ops"] = [{**asdict(o), "shape": list(o.shape)} for o in self.ops]
            for op in out["ops"]:
                del op["stream"]
        else:
            out.pop("ops")
        return out

