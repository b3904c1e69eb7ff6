"""GDPA in plain PyTorch: the specification, and the CPU implementation.

For each example b, head h, query i: out_i = sum_j act(scale * <q_i, k_j>) v_j over the allowed keys (same example;
with a window, |i - j| <= window). Softmax normalises over the allowed keys; the other activations do not. A query
with no allowed key outputs 0.

Layouts: q jagged (sum Tq, H, Dh) with q_offsets, or shared (Tq, H, Dh); k/v jagged with kv_offsets, or dense
(B, Tk, H, Dh). This implementation pads to the batch maximum and runs batched matmuls with masks, in fp32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)


def activation_fn(name: str, x: Tensor) -> Tensor:
    if name == "silu":
        return torch.nn.functional.silu(x)
    if name == "gelu":
        return torch.nn.functional.gelu(x)
    if name == "gelu_tanh":
        return torch.nn.functional.gelu(x, approximate="tanh")
    if name == "relu":
        return torch.relu(x)
    if name == "identity":
        return x
    raise ValueError(f"unknown activation {name!r}")


def activation_backward(name: str, grad: Tensor, x: Tensor) -> Tensor:
    """grad * act'(x), with torch's fused backward kernels where they exist."""
    if name == "silu":
        return torch.ops.aten.silu_backward(grad, x)
    if name in ("gelu", "gelu_tanh"):
        return torch.ops.aten.gelu_backward(grad, x, approximate="tanh" if name == "gelu_tanh" else "none")
    if name == "relu":
        return grad * (x > 0)
    if name == "identity":
        return grad
    raise ValueError(f"unknown activation {name!r}")


def _positions(offsets: Tensor) -> tuple[Tensor, Tensor]:
    """Example index and position of every jagged row."""
    lengths = offsets[1:] - offsets[:-1]
    batch = torch.repeat_interleave(torch.arange(lengths.numel(), device=offsets.device), lengths)
    pos = torch.arange(batch.numel(), device=offsets.device) - offsets[batch]
    return batch, pos


def _pad(x: Tensor, offsets: Tensor, max_len: int) -> Tensor:
    """(sum T, H, Dh) -> (B, H, max_len, Dh), zeros past each length."""
    batch, pos = _positions(offsets)
    out = x.new_zeros(offsets.numel() - 1, x.shape[1], max_len, x.shape[2])
    out[batch, :, pos] = x
    return out


def _unpad(x: Tensor, offsets: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (sum T, H, Dh)."""
    batch, pos = _positions(offsets)
    return x[batch, :, pos]


class _Layout:
    """Padded views of q, k, v and the allowed-pair mask for one call."""

    def __init__(self, q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, window, activation):
        self.shared_q = q_offsets is None
        self.jagged_kv = kv_offsets is not None
        b = kv_offsets.numel() - 1 if self.jagged_kv else k.shape[0]
        if not self.shared_q:
            b = q_offsets.numel() - 1
        f32 = self.dtype = torch.promote_types(q.dtype, torch.float32)  # fp32 at least; fp64 stays fp64
        if self.shared_q:
            tq = q.shape[0]
            self.q = q.to(f32).transpose(0, 1).unsqueeze(0).expand(b, -1, -1, -1)  # (B, H, Tq, Dh)
            q_lens = torch.full((b,), tq, device=q.device, dtype=torch.int64)
        else:
            tq = max_q_len
            self.q = _pad(q.to(f32), q_offsets, tq)
            q_lens = q_offsets[1:] - q_offsets[:-1]
        if self.jagged_kv:
            tk = max_kv_len
            self.k = _pad(k.to(f32), kv_offsets, tk)
            self.v = _pad(v.to(f32), kv_offsets, tk)
            kv_lens = kv_offsets[1:] - kv_offsets[:-1]
        else:
            tk = k.shape[1]
            self.k = k.to(f32).transpose(1, 2)
            self.v = v.to(f32).transpose(1, 2)
            kv_lens = torch.full((b,), tk, device=k.device, dtype=torch.int64)
        # Padded rows of q, k and v are zero and act(0) = 0 for every activation but softmax, so padding needs no
        # mask there: scores, probabilities and their gradients vanish on their own. Softmax and windows need one.
        i = torch.arange(tq, device=q.device)
        j = torch.arange(tk, device=q.device)
        mask = None
        if window is not None:
            mask = ((i[:, None] - j[None, :]).abs() <= window)[None, None]  # (1, 1, Tq, Tk)
        if activation == "softmax":
            valid = (i[None, :, None] < q_lens[:, None, None]) & (j[None, None, :] < kv_lens[:, None, None])
            mask = valid[:, None] if mask is None else mask & valid[:, None]  # (B, 1, Tq, Tk)
        self.mask = mask


def _scores(lay: _Layout, scale: float) -> Tensor:
    return torch.matmul(lay.q, lay.k.transpose(-1, -2)) * scale  # (B, H, Tq, Tk)


def _probabilities(s: Tensor, mask: Tensor | None, activation: str, dim: int = -1) -> Tensor:
    if activation == "softmax":
        p = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=dim)
        return torch.nan_to_num(p, nan=0.0)  # rows with no allowed key
    p = activation_fn(activation, s)
    return p if mask is None else p * mask


def _score_grad(s: Tensor, p: Tensor, dp: Tensor, mask: Tensor | None, activation: str, scale: float,
                dim: int = -1) -> Tensor:
    if activation == "softmax":
        return p * (dp - (dp * p).sum(dim=dim, keepdim=True)) * scale
    if mask is not None:
        dp = dp * mask
    return activation_backward(activation, dp, s) * scale


class _Band:
    """Self-attention with a narrow window on the jagged layout, one diagonal at a time.

    Padding to the batch maximum wastes work on long-tailed lengths, and a window of w visits only 2w+1 keys per
    query: here every row gathers the key `o` positions away for o in [-w, w] (clamped, masked when it leaves the
    example), so work and memory scale with sum(T) * (2w+1), not B * max(T)^2.
    """

    def __init__(self, offsets: Tensor, n: int, window: int):
        lengths = offsets[1:] - offsets[:-1]
        batch = torch.repeat_interleave(torch.arange(lengths.numel(), device=offsets.device), lengths)
        pos = torch.arange(n, device=offsets.device) - offsets[batch]
        shifts = torch.arange(-window, window + 1, device=offsets.device)
        key_pos = pos[:, None] + shifts[None, :]  # (N, W)
        self.mask = ((key_pos >= 0) & (key_pos < lengths[batch][:, None]))[:, :, None]  # (N, W, 1)
        self.index = (torch.arange(n, device=offsets.device)[:, None] + shifts[None, :]).clamp(0, max(n - 1, 0))

    # One diagonal at a time keeps every temporary at (N, H, Dh), which stays in cache: gathering all 2w+1 at once
    # measured slower on CPU.
    def dot(self, a: Tensor, keys: Tensor) -> Tensor:
        """(N, H, Dh) x key rows -> (N, W, H)."""
        return torch.stack([(a * keys[self.index[:, o]]).sum(-1) for o in range(self.index.shape[1])], dim=1)

    def combine(self, p: Tensor, rows: Tensor) -> Tensor:
        """sum_o p[:, o] * rows[index[:, o]] -> (N, H, Dh)."""
        out = torch.zeros_like(rows)
        for o in range(self.index.shape[1]):
            out += p[:, o, :, None] * rows[self.index[:, o]]
        return out

    def scatter(self, p: Tensor, x: Tensor) -> Tensor:
        """Gradient of combine() w.r.t. its rows: row j receives p[i, o] * x[i] wherever index[i, o] == j."""
        out = torch.zeros_like(x)
        for o in range(self.index.shape[1]):
            out.index_add_(0, self.index[:, o], p[:, o, :, None] * x)
        return out


def _use_band(q_offsets, kv_offsets, max_len: int, n: int, window: int | None) -> bool:
    if window is None or q_offsets is None or kv_offsets is None or n == 0:
        return False
    if q_offsets is not kv_offsets and not torch.equal(q_offsets, kv_offsets):
        return False
    return 2 * (2 * window + 1) * n <= (q_offsets.numel() - 1) * max_len * max_len


def _jagged_out(x: Tensor, lay: _Layout, q_offsets: Tensor | None) -> Tensor:
    if lay.shared_q:
        return x.transpose(1, 2)  # (B, Tq, H, Dh)
    return _unpad(x, q_offsets)


def gdpa_forward(q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale) -> Tensor:
    if _use_band(q_offsets, kv_offsets, max_q_len, q.shape[0], window):
        dtype = torch.promote_types(q.dtype, torch.float32)
        band = _Band(q_offsets, q.shape[0], window)
        p = _probabilities(band.dot(q.to(dtype), k.to(dtype)) * scale, band.mask, activation, dim=1)
        return band.combine(p, v.to(dtype)).to(q.dtype)
    lay = _Layout(q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, window, activation)
    p = _probabilities(_scores(lay, scale), lay.mask, activation)
    out = torch.matmul(p, lay.v)  # (B, H, Tq, Dh)
    return _jagged_out(out, lay, q_offsets).to(q.dtype)


def _band_backward(grad_out, q, k, v, offsets, activation, window, scale):
    dtype = torch.promote_types(q.dtype, torch.float32)
    q32, k32, v32, do = (x.to(dtype) for x in (q, k, v, grad_out))
    band = _Band(offsets, q.shape[0], window)
    s = band.dot(q32, k32) * scale  # (N, W, H)
    p = _probabilities(s, band.mask, activation, dim=1)
    ds = _score_grad(s, p, band.dot(do, v32), band.mask, activation, scale, dim=1)
    dq = band.combine(ds, k32)
    dk = band.scatter(ds, q32)
    dv = band.scatter(p, do)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


def gdpa_backward(grad_out, q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale):
    if _use_band(q_offsets, kv_offsets, max_q_len, q.shape[0], window):
        return _band_backward(grad_out, q, k, v, q_offsets, activation, window, scale)
    lay = _Layout(q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, window, activation)
    if lay.shared_q:
        do = grad_out.to(lay.dtype).transpose(1, 2)  # (B, H, Tq, Dh)
    else:
        do = _pad(grad_out.to(lay.dtype), q_offsets, max_q_len)
    s = _scores(lay, scale)  # (B, H, Tq, Tk)
    p = _probabilities(s, lay.mask, activation)
    ds = _score_grad(s, p, torch.matmul(do, lay.v.transpose(-1, -2)), lay.mask, activation, scale)
    dv = torch.matmul(p.transpose(-1, -2), do)
    dq = torch.matmul(ds, lay.k)
    dk = torch.matmul(ds.transpose(-1, -2), lay.q)
    if lay.shared_q:
        dq = dq.sum(dim=0).transpose(0, 1)  # (Tq, H, Dh)
    else:
        dq = _unpad(dq, q_offsets)
    if lay.jagged_kv:
        dk, dv = _unpad(dk, kv_offsets), _unpad(dv, kv_offsets)
    else:
        dk, dv = dk.transpose(1, 2), dv.transpose(1, 2)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


def gdpa_naive(q, k, v, q_offsets=None, kv_offsets=None, activation="silu", window=None, scale=None) -> Tensor:
    """A per-example, per-query loop: the slow, obviously-correct statement of the contract (tests only)."""
    dh = q.shape[-1]
    scale = 1.0 / math.sqrt(dh) if scale is None else scale
    b = q_offsets.numel() - 1 if q_offsets is not None else (
        kv_offsets.numel() - 1 if kv_offsets is not None else k.shape[0])
    outs = []
    for e in range(b):
        qe = q if q_offsets is None else q[q_offsets[e]:q_offsets[e + 1]]
        ke = k[kv_offsets[e]:kv_offsets[e + 1]] if kv_offsets is not None else k[e]
        ve = v[kv_offsets[e]:kv_offsets[e + 1]] if kv_offsets is not None else v[e]
        rows = []
        for i in range(qe.shape[0]):
            keys = [j for j in range(ke.shape[0]) if window is None or abs(i - j) <= window]
            if not keys:
                rows.append(torch.zeros_like(qe[i]))
                continue
            s = torch.einsum("hd,jhd->hj", qe[i], ke[keys]) * scale
            p = torch.softmax(s, dim=-1) if activation == "softmax" else activation_fn(activation, s)
            rows.append(torch.einsum("hj,jhd->hd", p, ve[keys]))
        outs.append(torch.stack(rows) if rows else qe.new_zeros(0, *qe.shape[1:]))
    if q_offsets is None:
        return torch.stack(outs) if outs else q.new_zeros(0, *q.shape)
    return torch.cat(outs) if outs else q.new_zeros(0, *q.shape[1:])
