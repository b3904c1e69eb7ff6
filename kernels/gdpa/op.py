"""The gdpa custom-op pair (forward, backward), its autograd, its FLOP formulas and the `gdpa` dispatcher.

Both directions are registered ops so that FlopCounterMode counts each once, with the formulas of `flops.py`,
instead of counting a backward written in plain torch ops as dense matmuls. `impl` chooses the implementation
inside the op (`reference` or `triton`); autograd and FLOP counting are the same for both.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from kunlun.kernels.backend import resolve
from kunlun.kernels.gdpa import reference
from kunlun.kernels.gdpa.flops import BACKWARD_FACTOR, allowed_pairs, forward_flops

Activation = Literal["silu", "gelu", "gelu_tanh", "relu", "identity", "softmax"]  # the config's type, too
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
_NO_WINDOW = -1


def _impl(name: str):
    if name == "triton":
        from kunlun.kernels.gdpa import triton_impl

        return triton_impl
    return reference


@torch.library.custom_op("kunlun::gdpa_fwd", mutates_args=())
def gdpa_fwd(q: Tensor, k: Tensor, v: Tensor, q_offsets: Tensor | None, kv_offsets: Tensor | None,
             max_q_len: int, max_kv_len: int, activation: str, window: int, scale: float, impl: str) -> Tensor:
    w = None if window == _NO_WINDOW else window
    return _impl(impl).gdpa_forward(q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, w, scale)


@gdpa_fwd.register_fake
def _(q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale, impl):
    if q_offsets is not None:
        return torch.empty_like(q)
    b = kv_offsets.shape[0] - 1 if kv_offsets is not None else k.shape[0]
    return q.new_empty(b, *q.shape)


@torch.library.custom_op("kunlun::gdpa_bwd", mutates_args=())
def gdpa_bwd(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, q_offsets: Tensor | None,
             kv_offsets: Tensor | None, max_q_len: int, max_kv_len: int, activation: str, window: int,
             scale: float, impl: str) -> tuple[Tensor, Tensor, Tensor]:
    w = None if window == _NO_WINDOW else window
    return _impl(impl).gdpa_backward(grad_out, q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation,
                                     w, scale)


@gdpa_bwd.register_fake
def _(grad_out, q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale, impl):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx, inputs, output):
    q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale, impl = inputs
    ctx.save_for_backward(q, k, v, q_offsets, kv_offsets)
    ctx.args = (max_q_len, max_kv_len, activation, window, scale, impl)


def _backward(ctx, grad_out):
    q, k, v, q_offsets, kv_offsets = ctx.saved_tensors
    dq, dk, dv = gdpa_bwd(grad_out.contiguous(), q, k, v, q_offsets, kv_offsets, *ctx.args)
    return dq, dk, dv, None, None, None, None, None, None, None, None


gdpa_fwd.register_autograd(_backward, setup_context=_setup_context)


def pairs_from_args(q: Tensor, k: Tensor, q_offsets: Tensor | None, kv_offsets: Tensor | None,
                    window: int) -> float:
    if q_offsets is not None:
        q_lens = (q_offsets[1:] - q_offsets[:-1]).cpu()
        b = q_lens.numel()
    else:
        b = kv_offsets.numel() - 1 if kv_offsets is not None else k.shape[0]
        q_lens = torch.full((b,), q.shape[0], dtype=torch.int64)
    if kv_offsets is not None:
        kv_lens = (kv_offsets[1:] - kv_offsets[:-1]).cpu()
    else:
        kv_lens = torch.full((b,), k.shape[1], dtype=torch.int64)
    w = None if window == _NO_WINDOW else window
    return float(allowed_pairs(q_lens, kv_lens, w).sum())


@register_flop_formula(torch.ops.kunlun.gdpa_fwd, get_raw=True)
def _gdpa_fwd_flops(q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale, impl,
                    *args, out_val=None, **kwargs) -> int:
    heads, dh = q.shape[-2], q.shape[-1]
    return int(round(forward_flops(pairs_from_args(q, k, q_offsets, kv_offsets, window), heads, dh)))


@register_flop_formula(torch.ops.kunlun.gdpa_bwd, get_raw=True)
def _gdpa_bwd_flops(grad_out, q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale,
                    impl, *args, out_val=None, **kwargs) -> int:
    heads, dh = q.shape[-2], q.shape[-1]
    return int(round(BACKWARD_FACTOR * forward_flops(pairs_from_args(q, k, q_offsets, kv_offsets, window), heads,
                                                     dh)))


def _max_len(offsets: Tensor) -> int:
    return int((offsets[1:] - offsets[:-1]).max()) if offsets.numel() > 1 else 0


def gdpa(q: Tensor, k: Tensor, v: Tensor, *, q_offsets: Tensor | None = None, kv_offsets: Tensor | None = None,
         max_q_len: int | None = None, max_kv_len: int | None = None, activation: str = "silu",
         window: int | None = None, scale: float | None = None, backend: str = "auto") -> Tensor:
    """Generalized dot-product attention (DESIGN.md, "GDPA kernel contract").

    q: (sum Tq, H, Dh) jagged with `q_offsets`, or (Tq, H, Dh) shared by the batch. k, v: (sum Tk, H, Dh) jagged
    with `kv_offsets`, or dense (B, Tk, H, Dh). Returns q's layout, or (B, Tq, H, Dh) for shared q.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if window is not None and window < 0:
        raise ValueError(f"window must be >= 0 or None, got {window}")
    if q.dim() != 3 or k.shape != v.shape or k.dim() != (3 if kv_offsets is not None else 4):
        raise ValueError(f"bad shapes q={tuple(q.shape)} k={tuple(k.shape)} v={tuple(v.shape)} "
                         f"(jagged kv: {kv_offsets is not None})")
    if q.shape[-2:] != k.shape[-2:]:
        raise ValueError(f"q and k disagree on (H, Dh): {tuple(q.shape[-2:])} vs {tuple(k.shape[-2:])}")
    if q_offsets is None and kv_offsets is None and k.dim() != 4:
        raise ValueError("shared q needs jagged (kv_offsets) or dense k/v")
    if max_q_len is None:
        max_q_len = _max_len(q_offsets) if q_offsets is not None else q.shape[0]
    if max_kv_len is None:
        max_kv_len = _max_len(kv_offsets) if kv_offsets is not None else k.shape[1]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    impl = resolve(backend, q)
    return gdpa_fwd(q, k, v, q_offsets, kv_offsets, int(max_q_len), int(max_kv_len), activation,
                    _NO_WINDOW if window is None else int(window), scale, impl)
