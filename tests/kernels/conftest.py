"""GDPA test inputs: one factory for every layout the contract allows."""

from __future__ import annotations

import pytest
import torch


def _offsets(lengths: list[int], device) -> torch.Tensor:
    return torch.tensor([0, *lengths], dtype=torch.int64, device=device).cumsum(0)


def make_case(q_lens: list[int] | None, kv_lens: list[int] | None, *, shared_tq: int = 0, dense_tk: int = 0,
              batch: int | None = None, heads: int = 2, head_dim: int = 16, dtype=torch.float64, device="cpu",
              seed: int = 0) -> dict:
    """Random q, k, v and offsets. `q_lens=None`: q shared by the batch (shared_tq rows); `kv_lens=None`:
    dense k/v with dense_tk keys. The batch size comes from whichever side is jagged, else from `batch`."""
    g = torch.Generator().manual_seed(seed)
    b = len(q_lens) if q_lens is not None else (len(kv_lens) if kv_lens is not None else batch)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)

    case = {}
    if q_lens is None:
        case["q"], case["q_offsets"] = rand(shared_tq, heads, head_dim), None
    else:
        case["q"], case["q_offsets"] = rand(sum(q_lens), heads, head_dim), _offsets(q_lens, device)
    if kv_lens is None:
        case["k"], case["v"], case["kv_offsets"] = rand(b, dense_tk, heads, head_dim), rand(
            b, dense_tk, heads, head_dim), None
    else:
        n = sum(kv_lens)
        case["k"], case["v"] = rand(n, heads, head_dim), rand(n, heads, head_dim)
        case["kv_offsets"] = _offsets(kv_lens, device)
    return case


@pytest.fixture
def gdpa_case():
    return make_case
