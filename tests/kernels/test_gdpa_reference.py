"""The PyTorch reference against the per-query loop of the contract; FLOP accounting against brute force."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from kunlun.kernels import gdpa
from kunlun.kernels.gdpa import ACTIVATIONS, allowed_pairs, self_attention_pairs
from kunlun.kernels.gdpa.reference import gdpa_naive

# (q_lens, kv_lens, extra): jagged q unless q_lens is None (shared q); jagged k/v unless kv_lens is None.
LAYOUTS = {
    "self": ([0, 1, 5, 9, 3], [0, 1, 5, 9, 3], {}),
    "cross": ([4, 0, 7], [3, 6, 1], {}),
    "dense_kv": ([0, 1, 6, 4], None, {"dense_tk": 5}),
    "shared_q": (None, [0, 3, 1, 6], {"shared_tq": 4}),
    "shared_q_dense_kv": (None, None, {"shared_tq": 3, "dense_tk": 5, "batch": 3}),
    "empty_batch": ([], [], {}),
}
WINDOWS = [None, 0, 1, 3, 100]


def _args(case: dict) -> tuple:
    return case["q"], case["k"], case["v"]


def _kwargs(case: dict) -> dict:
    return {"q_offsets": case["q_offsets"], "kv_offsets": case["kv_offsets"]}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_matches_naive_loop(gdpa_case, layout, window, activation):
    q_lens, kv_lens, extra = LAYOUTS[layout]
    case = gdpa_case(q_lens, kv_lens, **extra)
    got = gdpa(*_args(case), **_kwargs(case), activation=activation, window=window, backend="reference")
    want = gdpa_naive(*_args(case), **_kwargs(case), activation=activation, window=window)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_scale_is_applied_inside_the_activation(gdpa_case):
    case = gdpa_case([3, 4], [3, 4], seed=1)
    got = gdpa(*_args(case), **_kwargs(case), activation="gelu", scale=0.3, backend="reference")
    want = gdpa_naive(*_args(case), **_kwargs(case), activation="gelu", scale=0.3)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def _grads(fn, case: dict) -> list[torch.Tensor]:
    inputs = [t.detach().clone().requires_grad_() for t in _args(case)]
    out = fn(*inputs)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=out.dtype)
    grads = torch.autograd.grad(out, inputs, grad_out, allow_unused=True) if out.grad_fn else [None] * 3
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("window", [None, 0, 2])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_match_naive_loop(gdpa_case, layout, window, activation):
    q_lens, kv_lens, extra = LAYOUTS[layout]
    case = gdpa_case(q_lens, kv_lens, seed=3, **extra)
    kw = {**_kwargs(case), "activation": activation, "window": window}
    got = _grads(lambda q, k, v: gdpa(q, k, v, **kw, backend="reference"), case)
    want = _grads(lambda q, k, v: gdpa_naive(q, k, v, **kw), case)
    for name, g, w in zip("qkv", got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-9, msg=lambda m, n=name: f"d{n}: {m}")


def test_custom_op_passes_torch_library_checks(gdpa_case):
    case = gdpa_case([2, 3], [2, 3])
    inputs = [t.requires_grad_() for t in _args(case)]
    args = (*inputs, case["q_offsets"], case["kv_offsets"], 3, 3, "silu", 1, 0.25, "reference")
    torch.library.opcheck(torch.ops.kunlun.gdpa_fwd.default, args)


def _brute_pairs(q_lens, kv_lens, window) -> int:
    return sum(1 for n, m in zip(q_lens, kv_lens) for i in range(n) for j in range(m)
               if window is None or abs(i - j) <= window)


@given(lengths=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=5),
       window=st.none() | st.integers(0, 15))
def test_allowed_pairs_matches_brute_force(lengths, window):
    q_lens = torch.tensor([n for n, _ in lengths], dtype=torch.int64)
    kv_lens = torch.tensor([m for _, m in lengths], dtype=torch.int64)
    got = allowed_pairs(q_lens, kv_lens, window)
    assert got.shape == (len(lengths),)
    assert got.sum().item() == _brute_pairs(q_lens.tolist(), kv_lens.tolist(), window)


@given(length=st.integers(0, 30), window=st.none() | st.integers(0, 40))
def test_self_attention_pairs_matches_brute_force(length, window):
    assert self_attention_pairs(length, window) == _brute_pairs([length], [length], window)


@pytest.mark.parametrize("layout", ["self", "cross", "dense_kv", "shared_q", "shared_q_dense_kv"])
@pytest.mark.parametrize("window", [None, 1, 3])
def test_flop_counter_counts_exact_pairs(gdpa_case, layout, window):
    q_lens, kv_lens, extra = LAYOUTS[layout]
    case = gdpa_case(q_lens, kv_lens, heads=3, head_dim=8, **extra)
    b = len(q_lens) if q_lens is not None else (len(kv_lens) if kv_lens is not None else extra["batch"])
    pairs = _brute_pairs(q_lens if q_lens is not None else [extra["shared_tq"]] * b,
                         kv_lens if kv_lens is not None else [extra["dense_tk"]] * b, window)
    inputs = [t.requires_grad_() for t in _args(case)]
    with FlopCounterMode(display=False) as counter:
        out = gdpa(*inputs, **_kwargs(case), window=window, backend="reference")
        out.sum().backward()
    counts = counter.get_flop_counts()["Global"]
    forward = 4 * 8 * 3 * pairs
    assert counts[torch.ops.kunlun.gdpa_fwd] == forward
    assert counts[torch.ops.kunlun.gdpa_bwd] == 2.5 * forward
    assert counter.get_total_flops() == 3.5 * forward  # no matmul of the reference leaks into the count
