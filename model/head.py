"""Multi-task head (`head`): its own gated summary of the final context tokens, concatenated with the last
summary of every stream, then one MLP per task giving a logit (KUNLUN.md 6.11: Kunlun's head is undocumented;
this is InterFormer's head, sigmoid(MLP([X_sum ; S_sum])), with one MLP per task)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kunlun.model.config import KunlunConfig
from kunlun.model.context import GatedSummary
from kunlun.model.flops import OpRecord, matmul

KEY = "head"


def head_input_width(config: KunlunConfig) -> int:
    m = config.model
    return (m.head.summary_tokens + sum(m.stream(n).summary_tokens for n in config.sequence_streams)) * m.d_model


class Head(nn.Module):
    def __init__(self, config: KunlunConfig):
        super().__init__()
        m = config.model
        self.summary = GatedSummary(config.num_context_tokens, m.head.summary_tokens, m.d_model)
        width = head_input_width(config)
        self.tasks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, m.head.hidden), nn.ReLU(), nn.Linear(m.head.hidden, 1))
            for _ in range(config.num_tasks)
        )

    def forward(self, x: Tensor, summaries: list[Tensor]) -> Tensor:
        z = torch.cat([self.summary(x).flatten(1)] + [h.flatten(1) for h in summaries], dim=1)
        return torch.cat([task(z) for task in self.tasks], dim=1)  # (B, num_tasks) logits

    @staticmethod
    def flops(config: KunlunConfig, examples: float) -> list[OpRecord]:
        m = config.model
        ops = GatedSummary.flops(KEY, examples, config.num_context_tokens, m.head.summary_tokens, m.d_model)
        for _ in range(config.num_tasks):
            ops += [matmul(KEY, examples, head_input_width(config), m.head.hidden),
                    matmul(KEY, examples, m.head.hidden, 1)]
        return ops

    @staticmethod
    def params(config: KunlunConfig) -> int:
        m = config.model
        per_task = (head_input_width(config) + 1) * m.head.hidden + m.head.hidden + 1
        summary = GatedSummary.params(config.num_context_tokens, m.head.summary_tokens, m.d_model)
        return summary + per_task * config.num_tasks
