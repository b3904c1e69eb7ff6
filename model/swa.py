"""Windowed self-attention in a stream (`L{l}.{stream}.swa`): S + W_o * GDPA(ROTE(q), ROTE(k), v; |i-j| <= w).

Non-causal, bidirectional (KUNLUN.md 3.3). Default activation: GDPA's elementwise activation, with softmax as the
ablation switch (and the InterFormer baseline's choice). Without softmax the output is divided by the number of
keys the query may see (a per-row 1/N), so the scale does not grow with the window.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kunlun.kernels import gdpa
from kunlun.model.config import RoteConfig, StreamConfig
from kunlun.model.flops import OpRecord, StreamStats, gdpa_op, matmul
from kunlun.model.rote import apply_rotary, rote_angles


def keys_per_row(position: Tensor, length: Tensor, window: int | None) -> Tensor:
    """Number of allowed keys of each query row (position i in a sequence of this length)."""
    if window is None:
        return length
    hi = torch.minimum(position + window, length - 1)
    lo = torch.clamp(position - window, min=0)
    return hi - lo + 1


class WindowedSelfAttention(nn.Module):
    def __init__(self, stream: StreamConfig, window: int | None, rote: RoteConfig):
        super().__init__()
        self.heads, self.window, self.activation, self.rote = stream.heads, window, stream.swa_activation, rote
        self.norm = nn.LayerNorm(stream.d)
        self.qkv = nn.Linear(stream.d, 3 * stream.d)
        self.out = nn.Linear(stream.d, stream.d)

    def forward(self, s: Tensor, offsets: Tensor, max_len: int, dt: Tensor, position: Tensor,
                length: Tensor) -> Tensor:
        t, d = s.shape  # (sum T, d_e)
        q, k, v = self.qkv(self.norm(s)).view(t, 3, self.heads, d // self.heads).unbind(1)
        if self.rote.enabled:
            angles = rote_angles(self.rote, d // self.heads, dt, position)
            q, k = apply_rotary(q, angles), apply_rotary(k, angles)
        o = gdpa(q, k, v, q_offsets=offsets, kv_offsets=offsets, max_q_len=max_len, max_kv_len=max_len,
                 activation=self.activation, window=self.window)  # (sum T, H, Dh)
        if self.activation != "softmax":
            o = o / keys_per_row(position, length, self.window).clamp(min=1)[:, None, None].to(o.dtype)
        return s + self.out(o.reshape(t, d))

    @staticmethod
    def flops(key: str, stream: StreamConfig, window: int | None, stats: StreamStats) -> list[OpRecord]:
        attn = gdpa_op(key, stats.self_pairs(window), stats.tokens, stats.tokens, stream.heads, stream.head_dim,
                       stream.swa_activation)
        return [matmul(key, stats.tokens, stream.d, 3 * stream.d), attn, matmul(key, stats.tokens, stream.d, stream.d)]

    @staticmethod
    def params(stream: StreamConfig) -> int:
        return 2 * stream.d + (stream.d + 1) * 4 * stream.d
