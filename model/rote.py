"""ROTE: rotary temporal encoding of self-attention queries and keys.

KUNLUN.md 3.7 leaves the details open; our choices: dt = request time - event time (>= 0), tau = log(1 + dt /
t_scale); a `time_fraction` of the rotary frequency pairs rotate by tau (frequencies 1 .. 1/100), the rest by the
event's position in its sequence (RoPE frequencies, base 10,000). Rotations make <q_i, k_j> depend on tau_i - tau_j
and i - j only. ROTE is applied in SWA only: GDPA-PFFN keys are generated weights, not events.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from kunlun.model.config import RoteConfig


def rote_angles(config: RoteConfig, head_dim: int, dt: Tensor, position: Tensor) -> Tensor:
    """(sum T,) time gaps in seconds and positions -> (sum T, head_dim // 2) angles."""
    pairs = head_dim // 2
    n_time = round(config.time_fraction * pairs)
    tau = torch.log1p(dt.clamp(min=0).to(torch.float32) / config.t_scale)
    time_freq = torch.logspace(0, -2, n_time, device=dt.device) if n_time else dt.new_zeros(0, dtype=torch.float32)
    pos_freq = torch.exp(-math.log(10000.0) * torch.arange(pairs - n_time, device=dt.device) / max(pairs - n_time, 1))
    return torch.cat([tau[:, None] * time_freq, position.to(torch.float32)[:, None] * pos_freq], dim=-1)


def apply_rotary(x: Tensor, angles: Tensor) -> Tensor:
    """x (sum T, H, Dh), angles (sum T, Dh // 2): rotate consecutive halves (x1, x2) by the angles."""
    half = angles.shape[-1]
    x1, x2, rest = x[..., :half], x[..., half:2 * half], x[..., 2 * half:]
    cos, sin = torch.cos(angles)[:, None].to(x.dtype), torch.sin(angles)[:, None].to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], dim=-1)
