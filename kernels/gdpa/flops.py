"""FLOP formulas of GDPA: exact allowed (query, key) pairs, read from the lengths (DESIGN.md, FLOP accounting).

forward = 4 * Dh * H * pairs (two matmuls, activation not counted); backward = 2.5 x forward, torch's SDPA
convention (dq, dk, dv and the recomputed scores), stated as such rather than derived from our kernel.
`executed_backward_factor` is what our Triton backward runs instead, for benchmarks to report next to it.
"""

from __future__ import annotations

import torch

BACKWARD_FACTOR = 2.5


def allowed_pairs(q_lens: torch.Tensor, kv_lens: torch.Tensor, window: int | None) -> torch.Tensor:
    """Per example: #(i, j) with i < Tq, j < Tk and, with a window, |i - j| <= window. Float64, shape (B,)."""
    n = q_lens.to(torch.float64)
    m = kv_lens.to(torch.float64)
    if window is None:
        return n * m
    w = int(window)
    longest = int(torch.maximum(n, m).max()) if n.numel() else 0
    if w >= longest:
        return n * m
    # Sum over diagonals d = j - i in [-w, w]: #i with 0 <= i < n and 0 <= i + d < m.
    d = torch.arange(-w, w + 1, dtype=torch.float64)
    lo = torch.clamp(-d, min=0)[None, :]  # (1, 2w+1)
    hi = torch.minimum(n[:, None], m[:, None] - d[None, :])
    return torch.clamp(hi - lo, min=0).sum(dim=1)


def self_attention_pairs(length: float | int, window: int | None) -> float:
    """Pairs of a length-T sequence attending to itself: T^2, or T(2w+1) - w(w+1) with a window w < T."""
    t = float(length)
    if window is None or window >= t - 1:
        return t * t
    return t * (2 * window + 1) - window * (window + 1)


def executed_backward_factor(activation: str) -> float:
    """Tile GEMMs per allowed pair of the Triton backward, over the forward's two: the dk/dv pass recomputes the
    scores and dp and runs dv and dk (4), the dq pass recomputes both again and runs dq (3): 3.5x. Softmax first
    reruns the forward for its logsumexp (2 more): 4.5x."""
    return (7 + (2 if activation == "softmax" else 0)) / 2


def forward_flops(pairs: float, heads: int, head_dim: int) -> float:
    return 4.0 * head_dim * heads * float(pairs)


def transcendentals(pairs: float, heads: int, activation: str) -> float:
    """Special-function evaluations (exp, erf, tanh, sigmoid): one per pair and head, none for relu/identity."""
    return 0.0 if activation in ("relu", "identity") else float(pairs) * heads
