"""GDPA in Triton: the CUDA implementation of the gdpa op (and, under TRITON_INTERPRET=1, a slow CPU one).

Flash-attention style: scores live in registers one (query block, key block) tile at a time, so nothing of
size Tq x Tk reaches memory, forward or backward.
- forward: one program per (example, head, query block) loops over the key blocks that block may see;
- backward dk, dv: one program per (example, head, key block) loops over the query blocks that see it;
- backward dq: like the forward, recomputing the scores. A separate pass instead of atomics into dq keeps the
  result deterministic and lets the autotuner rerun any kernel (every kernel overwrites its outputs).
With a window the loops start and stop at the first and last block that intersects |i - j| <= window, so
blocks outside the band are never loaded; masks only trim the band's ragged edges. Without a window the other
activations need no score mask at all: rows past a length load as zeros (q, k, v and dO), act(0) = 0, so they
add nothing, and a mask would cost more per score than the activation.
Softmax keeps a running max and sum (online softmax). The op saves only q, k, v (op.py), so the backward
first reruns the forward kernel in PREP mode to get each row's logsumexp and delta = rowsum(dO * O) (fp32,
rows x H): one extra forward instead of an extra op output. Shared q (HSP seeds) writes dq per example into
an fp32 buffer that torch sums over the batch: parallel over examples, where a per-seed reduction in the
kernel would serialise the whole batch on a handful of programs.

A `Variant` runs the same tiles in another way; every variant computes the same result within the dtype's
rounding (tests/kernels check each against the reference). `KUNLUN_GDPA_VARIANT` (a spec, `Variant.parse`)
switches the calls that do not name one, so a whole model can run a variant; benchmarks/sweep_gdpa.py times them.
- order `blocks` (the default): the block index varies fastest, so the query (key) blocks of one (example, head)
  run side by side and re-read its K and V (q and dO) from L2. `bh`, the former grid, numbers programs by
  (example, head) first: one pair's blocks run B*H programs apart, and at B*H = 4096 its K and V have left L2 by
  then, so every query block reads them from HBM again. `per_bh`: one program per (example, head) loops over its
  blocks.
- `static_tk`: dense K/V's Tk as a compile-time constant (a constant trip count; no key masks when the key block
  divides Tk).
- `half_tanh`: in fp16/bf16, the forward's silu, gelu and gelu_tanh through tanh.approx on packed halves (two
  tanh per special-function op instead of one); exact gelu is then computed in its tanh form (4.7e-4 from erf at
  most, below the output's rounding). The backward keeps its fp32 forms. No effect in fp32.
- tiles `fwd` (query kernel: forward, softmax prep), `dq`, `dkdv`: fixed (BLOCK_M, BLOCK_N, warps, stages)
  instead of autotuning; None autotunes.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from kunlun.kernels.backend import triton_interpreting

_ACT_CODES = {"silu": 0, "gelu": 1, "gelu_tanh": 2, "relu": 3, "identity": 4, "softmax": 5}
SOFTMAX = tl.constexpr(5)  # a global a kernel can read
_ORDERS = {"bh": 0, "blocks": 1, "per_bh": 2}
VARIANT_ENV = "KUNLUN_GDPA_VARIANT"

Tile = tuple[int, int, int, int]  # BLOCK_M (queries), BLOCK_N (keys), warps, pipeline stages


@dataclasses.dataclass(frozen=True)
class Variant:
    """How the kernels run (module docstring). `str(v)` is its spec, which `Variant.parse` reads back."""

    order: str = "blocks"
    static_tk: bool = False
    half_tanh: bool = False
    fwd: Tile | None = None
    dq: Tile | None = None
    dkdv: Tile | None = None

    def __post_init__(self):
        if self.order not in _ORDERS:
            raise ValueError(f"order must be one of {tuple(_ORDERS)}, got {self.order!r}")
        for name in ("fwd", "dq", "dkdv"):
            tile = getattr(self, name)
            if tile is not None and (len(tile) != 4 or any(int(x) < 1 for x in tile)
                                     or any(x & (x - 1) for x in tile[:3])):
                raise ValueError(f"{name} tile must be (BLOCK_M, BLOCK_N, warps, stages), blocks and warps "
                                 f"powers of two, got {tile}")

    def __str__(self) -> str:
        tokens = [self.order] + [flag for flag in ("static_tk", "half_tanh") if getattr(self, flag)]
        tokens += [f"{name}={'x'.join(map(str, t))}" for name in ("fwd", "dq", "dkdv")
                   if (t := getattr(self, name)) is not None]
        return "+".join(tokens)

    @classmethod
    def parse(cls, spec: str) -> Variant:
        """`blocks`, `bh+fwd=128x64x8x3+dkdv=64x128x8x2`, `per_bh+static_tk+half_tanh`, ...: an order, flags and
        tiles joined by '+', in any order; omitted parts take their defaults."""
        fields: dict = {}
        for token in filter(None, spec.strip().split("+")):
            name, _, value = token.partition("=")
            if token in _ORDERS:
                fields["order"] = token
            elif token in ("static_tk", "half_tanh"):
                fields[token] = True
            elif name in ("fwd", "dq", "dkdv") and value:
                try:
                    fields[name] = tuple(int(x) for x in value.split("x"))
                except ValueError:
                    raise ValueError(f"bad tile {token!r} in variant {spec!r}: want "
                                     "BLOCK_MxBLOCK_NxWARPSxSTAGES") from None
            else:
                raise ValueError(f"bad token {token!r} in variant {spec!r}: allowed are an order "
                                 f"{tuple(_ORDERS)}, static_tk, half_tanh, fwd=/dq=/dkdv=MxNxWARPSxSTAGES")
        return cls(**fields)


DEFAULT = Variant()


@functools.cache
def _parsed(spec: str) -> Variant:
    try:
        return Variant.parse(spec)
    except ValueError as e:
        raise ValueError(f"{VARIANT_ENV}: {e}") from None


def current_variant() -> Variant:
    """The variant of calls that name none: KUNLUN_GDPA_VARIANT when set, else DEFAULT."""
    spec = os.environ.get(VARIANT_ENV, "")
    return _parsed(spec) if spec.strip() else DEFAULT


@triton.jit
def _tanh(x, FAST: tl.constexpr, HALF: tl.constexpr):
    """tanh of fp32 x, computed in fp32 (HALF 0), fp16 (1) or bf16 (2). FAST: the tanh.approx instruction, on
    packed pairs in fp16/bf16 (the instruction's error, ~2^-11 relative in fp32, is below bf16's rounding);
    otherwise through exp, which the interpreter runs (it has no inline PTX and no libdevice tanh), rounded in
    and out to the same precision, so interpreter tests see the half-precision error the GPU makes."""
    if HALF == 1:
        xh = x.to(tl.float16)
    elif HALF == 2:
        xh = x.to(tl.bfloat16)
    else:
        xh = x
    if FAST:
        if HALF == 1:
            y = tl.inline_asm_elementwise("tanh.approx.f16x2 $0, $1;", "=r,r", [xh], dtype=tl.float16,
                                          is_pure=True, pack=2)
        elif HALF == 2:
            y = tl.inline_asm_elementwise("tanh.approx.bf16x2 $0, $1;", "=r,r", [xh], dtype=tl.bfloat16,
                                          is_pure=True, pack=2)
        else:
            y = tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [xh], dtype=tl.float32,
                                          is_pure=True, pack=1)
    else:
        # exp overflows to inf for large arguments, giving 1, and underflows to 0, giving -1: no NaN.
        y = (1.0 - 2.0 / (1.0 + tl.exp(2.0 * xh.to(tl.float32)))).to(xh.dtype)
    return y.to(tl.float32)


@triton.jit
def _sigmoid(x, FAST: tl.constexpr, HALF: tl.constexpr):
    # exp and a reciprocal are two special-function ops per score; tanh.approx is one (half of one on packed
    # halves), and with two matmuls of Dh=64 per score the special-function units, not the tensor cores, would
    # cap silu near 50% of peak.
    if FAST or HALF != 0:
        y = 0.5 + 0.5 * _tanh(0.5 * x, FAST, HALF)
    else:
        y = 1.0 / (1.0 + tl.exp(-x))
    return y


@triton.jit
def _act(x, ACT: tl.constexpr, FAST: tl.constexpr, HALF: tl.constexpr):
    if ACT == 0:
        y = x * _sigmoid(x, FAST, HALF)
    elif ACT == 1 and HALF == 0:
        y = 0.5 * x * (1.0 + tl.erf(x * 0.7071067811865476))
    elif ACT == 1 or ACT == 2:
        # gelu_tanh, and exact gelu in tanh form under HALF: x * sigmoid(2u) = 0.5 x (1 + tanh(u)).
        u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        y = x * _sigmoid(2.0 * u, FAST, HALF)
    elif ACT == 3:
        y = tl.maximum(x, 0.0)
    else:
        y = x
    return y


@triton.jit
def _act_grad(x, ACT: tl.constexpr, FAST: tl.constexpr):
    if ACT == 0:
        s = _sigmoid(x, FAST, 0)
        g = s * (1.0 + x * (1.0 - s))
    elif ACT == 1:
        g = 0.5 * (1.0 + tl.erf(x * 0.7071067811865476)) + x * tl.exp(-0.5 * x * x) * 0.3989422804014327
    elif ACT == 2:
        u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        t = 2.0 * _sigmoid(2.0 * u, FAST, 0) - 1.0
        g = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 0.134145 * x * x)
    elif ACT == 3:
        g = tl.where(x > 0.0, 1.0, 0.0)
    else:
        g = tl.full(x.shape, 1.0, tl.float32)
    return g


@triton.jit
def _span(offsets, b, fixed_len, JAGGED: tl.constexpr):
    """First row and length of example b: from the offsets, or (b * fixed_len, fixed_len) when dense."""
    if JAGGED:
        start = tl.load(offsets + b)
        length = tl.load(offsets + b + 1) - start
    else:
        start = b.to(tl.int64) * fixed_len
        length = (start * 0 + fixed_len).to(tl.int64)
    return start, length


@triton.jit
def _kv_span(kv_offsets, b, TK, JAGGED_KV: tl.constexpr, STATIC_TK: tl.constexpr):
    """_span of the keys; with STATIC_TK (dense K/V only) the length is that compile-time constant."""
    if STATIC_TK > 0:
        start = b.to(tl.int64) * STATIC_TK
        length = STATIC_TK
    else:
        start, length = _span(kv_offsets, b, TK, JAGGED_KV)
    return start, length


@triton.jit
def _schedule(H, n_blocks, ORDER: tl.constexpr):
    """(example, head, block) of this program for the grid of `_Call.grid`; per_bh's block is 0 (it loops)."""
    if ORDER == 0:
        bh = tl.program_id(0)
        block = tl.program_id(1)
    elif ORDER == 1:
        pid = tl.program_id(0)
        bh = pid // n_blocks
        block = pid % n_blocks
    else:
        bh = tl.program_id(0)
        block = 0
    return bh // H, bh % H, block


@triton.jit
def _rows(start, offs, row_stride, h, D: tl.constexpr, offs_d):
    """Element offsets of a (rows, BLOCK_D) tile of a (rows, H, D) tensor, in int64: sum T * H * D may pass
    2^31."""
    return (start + offs).to(tl.int64)[:, None] * row_stride + h * D + offs_d[None, :]


@triton.jit
def _band(lo_row, hi_row, length, window, BLOCK: tl.constexpr, HAS_WINDOW: tl.constexpr):
    """Loop bounds over the other side's rows for rows [lo_row, hi_row): all of them, or the window's band,
    started on a block boundary."""
    lo = lo_row * 0
    hi = length
    if HAS_WINDOW:
        lo = tl.maximum(lo_row - window, 0) // BLOCK * BLOCK
        hi = tl.minimum(hi_row + window, length)
    return lo, hi


@triton.jit
def _query_block(Q, K, V, OUT, DO, LSE, DELTA, m0, q_start, o_start, q_len, kv_start, kv_len, h, H, scale,
                 window, D: tl.constexpr, BLOCK_D: tl.constexpr, ACT: tl.constexpr, HAS_WINDOW: tl.constexpr,
                 MODE: tl.constexpr, DOT_PRECISION: tl.constexpr, FAST: tl.constexpr, HALF_TANH: tl.constexpr,
                 EVEN_KV: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """One query block [m0, m0 + BLOCK_M) of one (example, head) over its key band (_query_kernel's modes)."""
    row_stride = H * D
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_mask = offs_m < q_len
    tile_mask = m_mask[:, None] & (offs_d < D)[None, :]
    q = tl.load(Q + _rows(q_start, offs_m, row_stride, h, D, offs_d), mask=tile_mask, other=0.0)
    # Scaling q once saves a multiply per score; dq below is still scaled at the end.
    q_scaled = (q * scale).to(q.dtype)
    if MODE != 0:
        do = tl.load(DO + _rows(o_start, offs_m, row_stride, h, D, offs_d), mask=tile_mask, other=0.0)
    if MODE == 2 and ACT == SOFTMAX:
        stat = (o_start + offs_m).to(tl.int64) * H + h
        lse = tl.load(LSE + stat, mask=m_mask, other=0.0)
        delta = tl.load(DELTA + stat, mask=m_mask, other=0.0)

    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    m_i = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    lo, hi = _band(m0, m0 + BLOCK_M, kv_len, window, BLOCK_N, HAS_WINDOW)
    for n0 in range(lo, hi, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        kv_ptrs = _rows(kv_start, offs_n, row_stride, h, D, offs_d)
        if EVEN_KV:
            k = tl.load(K + kv_ptrs)
            v = tl.load(V + kv_ptrs)
        else:
            kv_tile = (offs_n < kv_len)[:, None] & (offs_d < D)[None, :]
            k = tl.load(K + kv_ptrs, mask=kv_tile, other=0.0)
            v = tl.load(V + kv_ptrs, mask=kv_tile, other=0.0)
        s = tl.dot(q_scaled, tl.trans(k), input_precision=DOT_PRECISION)
        allowed = m_mask[:, None] & (offs_n < kv_len)[None, :]
        if HAS_WINDOW:
            allowed = allowed & (tl.abs(offs_m[:, None] - offs_n[None, :]) <= window)
        if MODE == 2:
            dp = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)
            if ACT == SOFTMAX:
                p = tl.where(allowed, tl.exp(s - lse[:, None]), 0.0)
                ds = p * (dp - delta[:, None])
            else:
                ds = dp * _act_grad(s, ACT, FAST)
                if HAS_WINDOW:
                    ds = tl.where(allowed, ds, 0.0)
            acc += tl.dot(ds.to(k.dtype), k, input_precision=DOT_PRECISION)
        else:
            if ACT == SOFTMAX:
                s = tl.where(allowed, s, float("-inf"))
                m_new = tl.maximum(m_i, tl.max(s, 1))
                # A row with no allowed key yet has max -inf; subtracting 0 instead keeps exp() at 0, not NaN.
                m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
                alpha = tl.exp(m_i - m_safe)
                p = tl.exp(s - m_safe[:, None])
                l_i = l_i * alpha + tl.sum(p, 1)
                acc = acc * alpha[:, None]
                m_i = m_new
            else:
                p = _act(s, ACT, FAST, HALF_TANH)
                if HAS_WINDOW:
                    p = tl.where(allowed, p, 0.0)
            acc += tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)

    if MODE == 2:
        acc = acc * scale
    elif ACT == SOFTMAX:
        acc = acc / tl.where(l_i > 0.0, l_i, 1.0)[:, None]
    if MODE == 1:
        stat = (o_start + offs_m).to(tl.int64) * H + h
        lse = m_i + tl.log(tl.where(l_i > 0.0, l_i, 1.0))
        tl.store(LSE + stat, tl.where(l_i > 0.0, lse, 0.0), mask=m_mask)
        tl.store(DELTA + stat, tl.sum(do.to(tl.float32) * acc, 1), mask=m_mask)
    else:
        tl.store(OUT + _rows(o_start, offs_m, row_stride, h, D, offs_d), acc.to(OUT.dtype.element_ty),
                 mask=tile_mask)


@triton.jit
def _query_kernel(Q, K, V, OUT, DO, LSE, DELTA, q_offsets, kv_offsets, TQ, TK, H, scale, window,
                  Q_BUCKET, KV_BUCKET,
                  D: tl.constexpr, BLOCK_D: tl.constexpr, ACT: tl.constexpr, JAGGED_Q: tl.constexpr,
                  JAGGED_KV: tl.constexpr, HAS_WINDOW: tl.constexpr, MODE: tl.constexpr,
                  DOT_PRECISION: tl.constexpr, FAST: tl.constexpr, ORDER: tl.constexpr,
                  STATIC_TK: tl.constexpr, HALF_TANH: tl.constexpr, EVEN_KV: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Per query block, over its key band. MODE 0: the forward (writes OUT). MODE 1: softmax backward prep
    (writes LSE and DELTA from DO). MODE 2: dq (reads DO, and LSE, DELTA for softmax; writes OUT = dq)."""
    b, h, block = _schedule(H, tl.cdiv(TQ, BLOCK_M), ORDER)
    q_start, q_len = _span(q_offsets, b, TQ, JAGGED_Q)
    o_start = q_start
    if not JAGGED_Q:
        q_start = q_start * 0  # shared q: every example reads the same rows, and writes its own
    kv_start, kv_len = _kv_span(kv_offsets, b, TK, JAGGED_KV, STATIC_TK)
    if ORDER == 2:
        for m0 in range(0, q_len, BLOCK_M):
            _query_block(Q, K, V, OUT, DO, LSE, DELTA, m0, q_start, o_start, q_len, kv_start, kv_len, h, H, scale,
                         window, D, BLOCK_D, ACT, HAS_WINDOW, MODE, DOT_PRECISION, FAST, HALF_TANH, EVEN_KV,
                         BLOCK_M, BLOCK_N)
    else:
        m0 = block * BLOCK_M
        if m0 < q_len:
            _query_block(Q, K, V, OUT, DO, LSE, DELTA, m0, q_start, o_start, q_len, kv_start, kv_len, h, H, scale,
                         window, D, BLOCK_D, ACT, HAS_WINDOW, MODE, DOT_PRECISION, FAST, HALF_TANH, EVEN_KV,
                         BLOCK_M, BLOCK_N)


@triton.jit
def _key_block(Q, K, V, DO, LSE, DELTA, DK, DV, n0, q_start, o_start, q_len, kv_start, kv_len, h, H, scale,
               window, D: tl.constexpr, BLOCK_D: tl.constexpr, ACT: tl.constexpr, HAS_WINDOW: tl.constexpr,
               DOT_PRECISION: tl.constexpr, FAST: tl.constexpr, EVEN_KV: tl.constexpr, BLOCK_M: tl.constexpr,
               BLOCK_N: tl.constexpr):
    """dk and dv of one key block [n0, n0 + BLOCK_N) of one (example, head), over the query band that sees it;
    tiles are kept transposed (keys x queries) so that dv = p^T dO and dk = ds^T q need no transpose of p or
    ds."""
    row_stride = H * D
    offs_n = n0 + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    n_mask = offs_n < kv_len
    kv_tile = n_mask[:, None] & (offs_d < D)[None, :]
    kv_ptrs = _rows(kv_start, offs_n, row_stride, h, D, offs_d)
    if EVEN_KV:
        k = tl.load(K + kv_ptrs)
        v = tl.load(V + kv_ptrs)
    else:
        k = tl.load(K + kv_ptrs, mask=kv_tile, other=0.0)
        v = tl.load(V + kv_ptrs, mask=kv_tile, other=0.0)
    k_scaled = (k * scale).to(k.dtype)

    dk = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    dv = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    lo, hi = _band(n0, n0 + BLOCK_N, q_len, window, BLOCK_M, HAS_WINDOW)
    for m0 in range(lo, hi, BLOCK_M):
        offs_m = m0 + tl.arange(0, BLOCK_M)
        m_mask = offs_m < q_len
        q_tile = m_mask[:, None] & (offs_d < D)[None, :]
        q = tl.load(Q + _rows(q_start, offs_m, row_stride, h, D, offs_d), mask=q_tile, other=0.0)
        do = tl.load(DO + _rows(o_start, offs_m, row_stride, h, D, offs_d), mask=q_tile, other=0.0)
        s_t = tl.dot(k_scaled, tl.trans(q), input_precision=DOT_PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)
        allowed = n_mask[:, None] & m_mask[None, :]
        if HAS_WINDOW:
            allowed = allowed & (tl.abs(offs_n[:, None] - offs_m[None, :]) <= window)
        if ACT == SOFTMAX:
            stat = (o_start + offs_m).to(tl.int64) * H + h
            lse = tl.load(LSE + stat, mask=m_mask, other=0.0)
            delta = tl.load(DELTA + stat, mask=m_mask, other=0.0)
            p_t = tl.where(allowed, tl.exp(s_t - lse[None, :]), 0.0)
            ds_t = p_t * (dp_t - delta[None, :])
        else:
            p_t = _act(s_t, ACT, FAST, 0)
            ds_t = dp_t * _act_grad(s_t, ACT, FAST)
            if HAS_WINDOW:
                p_t = tl.where(allowed, p_t, 0.0)
                ds_t = tl.where(allowed, ds_t, 0.0)
        dv += tl.dot(p_t.to(do.dtype), do, input_precision=DOT_PRECISION)
        dk += tl.dot(ds_t.to(q.dtype), q, input_precision=DOT_PRECISION)

    if EVEN_KV:
        tl.store(DK + kv_ptrs, (dk * scale).to(DK.dtype.element_ty))
        tl.store(DV + kv_ptrs, dv.to(DV.dtype.element_ty))
    else:
        tl.store(DK + kv_ptrs, (dk * scale).to(DK.dtype.element_ty), mask=kv_tile)
        tl.store(DV + kv_ptrs, dv.to(DV.dtype.element_ty), mask=kv_tile)


@triton.jit
def _dkdv_kernel(Q, K, V, DO, LSE, DELTA, DK, DV, q_offsets, kv_offsets, TQ, TK, H, scale, window,
                 Q_BUCKET, KV_BUCKET,
                 D: tl.constexpr, BLOCK_D: tl.constexpr, ACT: tl.constexpr, JAGGED_Q: tl.constexpr,
                 JAGGED_KV: tl.constexpr, HAS_WINDOW: tl.constexpr, DOT_PRECISION: tl.constexpr,
                 FAST: tl.constexpr, ORDER: tl.constexpr, STATIC_TK: tl.constexpr, EVEN_KV: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Per key block, over the query band that sees it (_key_block)."""
    b, h, block = _schedule(H, tl.cdiv(TK, BLOCK_N), ORDER)
    kv_start, kv_len = _kv_span(kv_offsets, b, TK, JAGGED_KV, STATIC_TK)
    q_start, q_len = _span(q_offsets, b, TQ, JAGGED_Q)
    o_start = q_start
    if not JAGGED_Q:
        q_start = q_start * 0
    if ORDER == 2:
        for n0 in range(0, kv_len, BLOCK_N):
            _key_block(Q, K, V, DO, LSE, DELTA, DK, DV, n0, q_start, o_start, q_len, kv_start, kv_len, h, H,
                       scale, window, D, BLOCK_D, ACT, HAS_WINDOW, DOT_PRECISION, FAST, EVEN_KV, BLOCK_M, BLOCK_N)
    else:
        n0 = block * BLOCK_N
        if n0 < kv_len:
            _key_block(Q, K, V, DO, LSE, DELTA, DK, DV, n0, q_start, o_start, q_len, kv_start, kv_len, h, H,
                       scale, window, D, BLOCK_D, ACT, HAS_WINDOW, DOT_PRECISION, FAST, EVEN_KV, BLOCK_M, BLOCK_N)


def _even_kv(args: dict) -> bool:
    # No key masks when Tk is a compile-time multiple of the key block and the head dim fills its block.
    return args["STATIC_TK"] > 0 and args["STATIC_TK"] % args["BLOCK_N"] == 0 and args["BLOCK_D"] == args["D"]


_query_heuristic = triton.heuristics({"EVEN_KV": _even_kv})(_query_kernel)
_dkdv_heuristic = triton.heuristics({"EVEN_KV": _even_kv})(_dkdv_kernel)

# Tensor dtypes join the key by themselves; MODE must too (the three query passes differ in cost).
_KEY = ["Q_BUCKET", "KV_BUCKET", "D", "ACT", "JAGGED_Q", "JAGGED_KV", "HAS_WINDOW", "ORDER", "STATIC_TK"]
# The interpreter runs one tile (autotuning there fails and would be meaningless); 32-row blocks let small
# test shapes cross block boundaries.
INTERPRETER_TILE: Tile = (32, 32, 4, 1)


def _configs(shapes: list[Tile]) -> list[triton.Config]:
    if triton_interpreting():
        shapes = [INTERPRETER_TILE]
    # A model has a few dozen kernel keys (stream x module x pass), each compiling and timing every config on
    # first use: minutes. KUNLUN_GDPA_AUTOTUNE=off takes the first config of each list instead.
    elif os.environ.get("KUNLUN_GDPA_AUTOTUNE", "on") == "off":
        shapes = shapes[:1]
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s) for m, n, w, s in shapes]


# (BLOCK_M, BLOCK_N, warps, stages): queries x keys per tile. The query pass wants tall query blocks (the q
# tile and accumulator stay in registers); the dk/dv pass wants tall key blocks.
_query = triton.autotune(_configs([(128, 64, 4, 3), (128, 64, 8, 3), (64, 64, 4, 3), (128, 128, 8, 2),
                                   (64, 128, 4, 2), (128, 32, 4, 3), (128, 128, 8, 3), (128, 64, 4, 4),
                                   (256, 64, 8, 3)]), key=[*_KEY, "MODE", "HALF_TANH"])(_query_heuristic)
_dkdv = triton.autotune(_configs([(64, 64, 4, 3), (64, 128, 8, 2), (32, 128, 4, 2), (32, 64, 4, 3),
                                  (128, 128, 8, 2), (64, 128, 4, 3)]), key=_KEY)(_dkdv_heuristic)


def _launch(autotuned, fixed, tile: Tile | None, grid, *args, **meta) -> None:
    """Run the autotuned kernel, or the fixed one with `tile`."""
    if tile is None:
        autotuned[grid](*args, **meta)
    else:
        m, n, warps, stages = tile
        fixed[grid](*args, **meta, BLOCK_M=m, BLOCK_N=n, num_warps=warps, num_stages=stages)


def _bucket(n: int) -> int:
    """Autotune key of a length: the next power of two, so jagged batches of similar shape share a tuning."""
    return 16 if n <= 16 else 1 << (int(n) - 1).bit_length()


class _Call:
    """Launch arguments shared by the kernels of one gdpa call."""

    def __init__(self, q, k, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale,
                 variant: Variant):
        self.variant = variant
        self.jagged_q = q_offsets is not None
        self.jagged_kv = kv_offsets is not None
        if self.jagged_q:
            self.batch = q_offsets.numel() - 1
        else:
            self.batch = kv_offsets.numel() - 1 if self.jagged_kv else k.shape[0]
        self.tq = max_q_len if self.jagged_q else q.shape[0]
        self.tk = max_kv_len if self.jagged_kv else k.shape[1]
        self.heads, self.dh = q.shape[-2], q.shape[-1]
        self.out_rows = q.shape[0] if self.jagged_q else self.batch * self.tq
        self.empty = self.batch == 0 or self.tq == 0 or self.heads == 0
        # Unused pointer slots get any tensor of the right device.
        self.q_offsets = q_offsets if self.jagged_q else q
        self.kv_offsets = kv_offsets if self.jagged_kv else q
        # Half-precision tanh only where the inputs are already that precise (the forward, fp16 and bf16).
        half_tanh = {torch.float16: 1, torch.bfloat16: 2}.get(q.dtype, 0) if variant.half_tanh else 0
        self.meta = dict(
            Q_BUCKET=_bucket(self.tq), KV_BUCKET=_bucket(self.tk), D=self.dh,
            BLOCK_D=max(16, triton.next_power_of_2(self.dh)), ACT=_ACT_CODES[activation],
            JAGGED_Q=self.jagged_q, JAGGED_KV=self.jagged_kv, HAS_WINDOW=window is not None,
            # fp32 inputs get fp32 products (tf32 would be a silent precision drop); fp16/bf16 ignore it.
            DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
            FAST=not triton_interpreting(), ORDER=_ORDERS[variant.order],
            STATIC_TK=self.tk if variant.static_tk and not self.jagged_kv else 0,
        )
        self.forward_meta = dict(self.meta, HALF_TANH=half_tanh)
        self.args = (self.q_offsets, self.kv_offsets, self.tq, self.tk, self.heads, float(scale),
                     0 if window is None else int(window))

    def grid(self, length: int, block: str):
        """Programs for blocks of `block` rows over `length` (queries or keys), in the variant's order."""
        bh, order = self.batch * self.heads, self.variant.order
        if order == "bh":
            return lambda meta: (bh, triton.cdiv(length, meta[block]))
        if order == "blocks":
            return lambda meta: (bh * triton.cdiv(length, meta[block]),)
        return (bh,)

    def query_pass(self, tile: Tile | None, *tensors, mode: int) -> None:
        meta = self.forward_meta if mode == 0 else dict(self.meta, HALF_TANH=0)
        _launch(_query, _query_heuristic, tile, self.grid(self.tq, "BLOCK_M"), *tensors, *self.args, **meta,
                MODE=mode)


def _check_contiguous(*outputs: Tensor) -> None:
    # The kernels address outputs as dense (rows, H, Dh).
    if not all(x.is_contiguous() for x in outputs):
        raise ValueError("gdpa triton outputs must be contiguous")


def _prepare(q, k, v):
    # One dtype for the tensor-core products; the reference upcasts the same way.
    return q.contiguous(), k.to(q.dtype).contiguous(), v.to(q.dtype).contiguous()


def gdpa_forward(q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale,
                 out: Tensor | None = None, variant: Variant | None = None) -> Tensor:
    """Same contract as reference.gdpa_forward; `out` (optional) receives the result in place; `variant`
    (default: current_variant()) chooses how the kernels run."""
    variant = current_variant() if variant is None else variant
    call = _Call(q, k, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale, variant)
    if out is None:
        out = q.new_empty(q.shape if call.jagged_q else (call.batch, *q.shape))
    _check_contiguous(out)
    if call.empty or out.numel() == 0:
        return out
    q, k, v = _prepare(q, k, v)
    call.query_pass(variant.fwd, q, k, v, out, q, q, q, mode=0)
    return out


def gdpa_backward(grad_out, q, k, v, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale,
                  grads: tuple[Tensor, Tensor, Tensor] | None = None,
                  variant: Variant | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Same contract as reference.gdpa_backward; `grads` (optional): (dq, dk, dv) to write in place; `variant`
    as in gdpa_forward."""
    variant = current_variant() if variant is None else variant
    call = _Call(q, k, q_offsets, kv_offsets, max_q_len, max_kv_len, activation, window, scale, variant)
    if grads is None:
        grads = tuple(x.new_empty(x.shape) for x in (q, k, v))
    _check_contiguous(*grads)
    dq, dk, dv = grads
    if call.empty:
        for g in (dq, dk, dv):
            g.zero_()
        return dq, dk, dv
    k_dtype, v_dtype = dk.dtype, dv.dtype
    q, k, v = _prepare(q, k, v)
    do = grad_out.to(q.dtype).contiguous()
    dk_out = dk if k_dtype == q.dtype else torch.empty_like(k)
    dv_out = dv if v_dtype == q.dtype else torch.empty_like(v)
    lse = delta = q  # placeholders: only the softmax kernels read them
    if activation == "softmax":
        lse = q.new_empty((call.out_rows, call.heads), dtype=torch.float32)
        delta = torch.empty_like(lse)
        call.query_pass(variant.fwd, q, k, v, q, do, lse, delta, mode=1)
    if k.shape[0] and call.tk:
        _launch(_dkdv, _dkdv_heuristic, variant.dkdv, call.grid(call.tk, "BLOCK_N"), q, k, v, do, lse, delta,
                dk_out, dv_out, *call.args, **call.meta)
    # Shared q: one dq per example, summed below (see the module docstring).
    dq_rows = dq if call.jagged_q else q.new_empty((call.batch, *q.shape), dtype=torch.float32)
    call.query_pass(variant.dq, q, k, v, dq_rows, do, lse, delta, mode=2)
    if not call.jagged_q:
        dq.copy_(dq_rows.sum(dim=0))
    if dk_out is not dk:
        dk.copy_(dk_out)
    if dv_out is not dv:
        dv.copy_(dv_out)
    return dq, dk, dv
