"""Mixture of Wukong Experts (`L{l}.interaction`): global interaction over [X ; stream summaries].

Wukong layer (arXiv 2403.02545): X' = LN([FMB(X) ; LCB(X)] + residual(X)), with the optimized FM
F = X (X^T Y), Y (n, k) learned, an MLP over LN(flatten(F)) giving n_F tokens, and the linear compression
LCB = W_L X giving n_L tokens; the residual is a learned token map when the token count changes.
Open choices (KUNLUN.md 3.6/6.9): token i of the input goes to expert i mod M (a fixed partition mixing context
and sequence tokens); expert m emits the context tokens j with j mod M == m, so the M outputs concatenate back to
n_ctx tokens, X of the next layer; each expert has `layers` Wukong layers; n_F = ceil(n_out / 2), n_L the rest.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from kunlun.model.config import InteractionConfig
from kunlun.model.flops import OpRecord, matmul


def partition(n: int, experts: int) -> list[list[int]]:
    return [list(range(m, n, experts)) for m in range(experts)]


class WukongLayer(nn.Module):
    def __init__(self, n_in: int, n_out: int, d: int, rank: int, hidden: int):
        super().__init__()
        self.n_f = math.ceil(n_out / 2)
        self.n_l = n_out - self.n_f
        self.d = d
        self.y = nn.Parameter(torch.randn(n_in, rank) / n_in**0.5)
        self.fm_norm = nn.LayerNorm(n_in * rank)
        self.mlp = nn.Sequential(nn.Linear(n_in * rank, hidden), nn.ReLU(), nn.Linear(hidden, self.n_f * d))
        self.lcb = nn.Parameter(torch.randn(n_in, self.n_l) / n_in**0.5) if self.n_l else None
        self.residual = nn.Parameter(torch.randn(n_in, n_out) / n_in**0.5) if n_in != n_out else None
        self.norm = nn.LayerNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]  # x: (B, n_in, d)
        xt = x.transpose(1, 2)  # (B, d, n_in)
        fm = torch.bmm(x, torch.matmul(xt, self.y))  # (B, n_in, k)
        parts = [self.mlp(self.fm_norm(fm.flatten(1))).view(b, self.n_f, self.d)]
        if self.lcb is not None:
            parts.append(torch.matmul(xt, self.lcb).transpose(1, 2))  # (B, n_L, d)
        res = x if self.residual is None else torch.matmul(xt, self.residual).transpose(1, 2)
        return self.norm(torch.cat(parts, dim=1) + res)  # (B, n_out, d)

    @staticmethod
    def flops(key: str, examples: float, n_in: int, n_out: int, d: int, rank: int, hidden: int) -> list[OpRecord]:
        b = examples
        n_f = math.ceil(n_out / 2)
        n_l = n_out - n_f
        ops = [matmul(key, b * d, n_in, rank), matmul(key, b * n_in, d, rank, kind="bmm"),
               matmul(key, b, n_in * rank, hidden), matmul(key, b, hidden, n_f * d)]
        if n_l:
            ops.append(matmul(key, b * d, n_in, n_l))
        if n_in != n_out:
            ops.append(matmul(key, b * d, n_in, n_out))
        return ops

    @staticmethod
    def params(n_in: int, n_out: int, d: int, rank: int, hidden: int) -> int:
        n_f = math.ceil(n_out / 2)
        n = n_in * rank + 2 * n_in * rank + (n_in * rank + 1) * hidden + (hidden + 1) * n_f * d
        n += n_in * (n_out - n_f) + (n_in * n_out if n_in != n_out else 0) + 2 * d
        return n


class WukongExperts(nn.Module):
    def __init__(self, n_in: int, n_out: int, d: int, cfg: InteractionConfig):
        super().__init__()
        self.inputs = partition(n_in, cfg.experts)
        self.outputs = partition(n_out, cfg.experts)
        self.register_buffer("order", torch.tensor([j for out in self.outputs for j in out]).argsort(),
                             persistent=False)
        self.experts = nn.ModuleList(
            nn.Sequential(*(WukongLayer(len(i) if layer == 0 else len(o), len(o), d, cfg.fm_rank, cfg.mlp_hidden)
                            for layer in range(cfg.layers)))
            for i, o in zip(self.inputs, self.outputs)
        )

    def forward(self, x: Tensor) -> Tensor:  # (B, n_in, d) -> (B, n_out, d)
        outs = [expert(x[:, idx]) for expert, idx in zip(self.experts, self.inputs)]
        return torch.cat(outs, dim=1)[:, self.order]

    @staticmethod
    def _shapes(n_in: int, n_out: int, cfg: InteractionConfig) -> list[tuple[int, int]]:
        shapes = []
        for i, o in zip(partition(n_in, cfg.experts), partition(n_out, cfg.experts)):
            shapes += [(len(i) if layer == 0 else len(o), len(o)) for layer in range(cfg.layers)]
        return shapes

    @staticmethod
    def flops(key: str, examples: float, n_in: int, n_out: int, d: int, cfg: InteractionConfig) -> list[OpRecord]:
        return [op for a, b in WukongExperts._shapes(n_in, n_out, cfg)
                for op in WukongLayer.flops(key, examples, a, b, d, cfg.fm_rank, cfg.mlp_hidden)]

    @staticmethod
    def params(n_in: int, n_out: int, d: int, cfg: InteractionConfig) -> int:
        return sum(WukongLayer.params(a, b, d, cfg.fm_rank, cfg.mlp_hidden)
                   for a, b in WukongExperts._shapes(n_in, n_out, cfg))
