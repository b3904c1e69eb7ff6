"""GDPA personalized FFN (`L{l}.{stream}.pffn`): S + W_o * (1/n_kv) * GDPA(LN(S), K, V).

Each example gets its own two-layer FFN act(S W_1) W_2 with W_1 = K^T and W_2 = V generated from the context
(KUNLUN.md 3.1), run as attention with an elementwise activation. Choices for KUNLUN.md's open questions 2-3:
queries are the pre-normed tokens themselves (no Q projection: the FFN equivalence has Q = S), an output
projection mixes heads, the kernel's scale is 1/sqrt(Dh) inside the activation, and the model divides by n_kv
after it (HSTU's post-activation 1/N with N = the key length).
"""

from __future__ import annotations

from torch import Tensor, nn

from kunlun.kernels import gdpa
from kunlun.model.config import StreamConfig
from kunlun.model.flops import OpRecord, StreamStats, gdpa_op, matmul


class PersonalizedFFN(nn.Module):
    def __init__(self, stream: StreamConfig):
        super().__init__()
        self.heads, self.n_kv, self.activation = stream.heads, stream.kv_len, stream.pffn_activation
        self.norm = nn.LayerNorm(stream.d)
        self.out = nn.Linear(stream.d, stream.d)

    def forward(self, s: Tensor, offsets: Tensor, max_len: int, k: Tensor, v: Tensor) -> Tensor:
        t, d = s.shape  # (sum T, d_e)
        q = self.norm(s).view(t, self.heads, d // self.heads)
        o = gdpa(q, k, v, q_offsets=offsets, max_q_len=max_len, activation=self.activation)  # (sum T, H, Dh)
        if self.activation != "softmax":
            o = o / self.n_kv
        return s + self.out(o.reshape(t, d))

    @staticmethod
    def flops(key: str, stream: StreamConfig, stats: StreamStats) -> list[OpRecord]:
        pairs = stats.tokens * stream.kv_len
        return [
            gdpa_op(key, pairs, stats.tokens, stats.examples * stream.kv_len, stream.heads, stream.head_dim,
                    stream.pffn_activation),
            matmul(key, stats.tokens, stream.d, stream.d),
        ]

    @staticmethod
    def params(stream: StreamConfig) -> int:
        return 2 * stream.d + (stream.d + 1) * stream.d
