"""The Triton GDPA kernels against the reference: forward and every gradient, for every layout, activation
and window.

Without CUDA these run under TRITON_INTERPRET=1 (tests/conftest.py), where bf16 products are wrong, so CPU
runs test fp32 and fp16 and the bf16 tests need a GPU. Outputs start as NaN so a row the kernel forgets
shows up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from kunlun.kernels import gdpa
from kunlun.kernels.backend import resolve
from kunlun.kernels.gdpa import ACTIVATIONS, reference, triton_impl

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# Relative error (Frobenius) allowed per dtype: fp32 products are exact up to summation order; fp16 and bf16
# round p and ds to 11 and 8 bits before the second product.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 3e-2}
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# Interpreter blocks are 32 rows: lengths 31, 33 and 70 straddle one and two block boundaries.
SELF_LENS = [0, 1, 33, 70, 31]
LAYOUTS = {
    "self": (SELF_LENS, SELF_LENS, {}),
    "cross": ([40, 0, 7], [3, 66, 33], {}),
    "dense_kv": ([0, 1, 45, 4], None, {"dense_tk": 37}),
    "shared_q": (None, [0, 35, 1, 6], {"shared_tq": 34}),
    "shared_q_dense_kv": (None, None, {"shared_tq": 5, "dense_tk": 40, "batch": 3}),
}


def _rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    # The floor 1.0 keeps gradients that are zero in theory (softmax over one key) from dividing by ~0.
    return ((got.double() - want.double()).norm() / max(want.double().norm().item(), 1.0)).item()


def _max_len(offsets: torch.Tensor | None, dense_len: int) -> int:
    if offsets is None:
        return dense_len
    return int((offsets[1:] - offsets[:-1]).max()) if offsets.numel() > 1 else 0


def _compare(case: dict, activation: str, window: int | None, dtype: torch.dtype, scale=0.25,
             variant: triton_impl.Variant | None = None) -> None:
    q, k, v, qo, ko = case["q"], case["k"], case["v"], case["q_offsets"], case["kv_offsets"]
    mq, mk = _max_len(qo, q.shape[0]), _max_len(ko, k.shape[1] if ko is None else 0)
    args = (q, k, v, qo, ko, mq, mk, activation, window, scale)
    want = reference.gdpa_forward(*args)
    out = torch.full(want.shape, float("nan"), dtype=want.dtype, device=want.device)
    got = triton_impl.gdpa_forward(*args, out=out, variant=variant)
    assert got is out and got.dtype == dtype
    assert _rel_err(got, want) <= TOLERANCE[dtype], "forward"

    grad_out = torch.randn(want.shape, generator=torch.Generator().manual_seed(5)).to(want)
    wants = reference.gdpa_backward(grad_out, *args)
    grads = tuple(torch.full(x.shape, float("nan"), dtype=x.dtype, device=x.device) for x in (q, k, v))
    gots = triton_impl.gdpa_backward(grad_out, *args, grads=grads, variant=variant)
    for name, g, w in zip(("dq", "dk", "dv"), gots, wants):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert _rel_err(g, w) <= TOLERANCE[dtype], name


@pytest.mark.parametrize("window", [None, 3])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation(gdpa_case, activation, window):
    case = gdpa_case(SELF_LENS, SELF_LENS, dtype=torch.float32, device=DEVICE)
    _compare(case, activation, window, torch.float32)


@pytest.mark.parametrize("window", [0, 1, 100])
@pytest.mark.parametrize("activation", ["silu", "softmax"])
def test_windows(gdpa_case, activation, window):
    _compare(gdpa_case(SELF_LENS, SELF_LENS, dtype=torch.float32, device=DEVICE, seed=1), activation, window,
             torch.float32)


@pytest.mark.parametrize("window", [None, 2])
@pytest.mark.parametrize("activation", ["gelu_tanh", "softmax"])
@pytest.mark.parametrize("layout", ["cross", "dense_kv", "shared_q", "shared_q_dense_kv"])
def test_layouts(gdpa_case, layout, activation, window):
    q_lens, kv_lens, extra = LAYOUTS[layout]
    case = gdpa_case(q_lens, kv_lens, dtype=torch.float32, device=DEVICE, seed=2, **extra)
    _compare(case, activation, window, torch.float32)


def test_head_dim_not_a_power_of_two(gdpa_case):
    case = gdpa_case([5, 40], [9, 37], heads=3, head_dim=24, dtype=torch.float32, device=DEVICE)
    _compare(case, "gelu", None, torch.float32)


@pytest.mark.parametrize("activation,window", [("gelu", 1), ("silu", None), ("softmax", None)])
def test_fp16(gdpa_case, activation, window):
    _compare(gdpa_case(SELF_LENS, SELF_LENS, dtype=torch.float16, device=DEVICE, seed=4), activation, window,
             torch.float16)


@pytest.mark.parametrize("q_lens,kv_lens", [([], []), ([0, 0], [0, 0]), ([3, 0], [0, 0]), ([0, 2], [4, 0])])
def test_empty_batches_and_sequences(gdpa_case, q_lens, kv_lens):
    for activation in ("silu", "softmax"):
        case = gdpa_case(q_lens, kv_lens, dtype=torch.float32, device=DEVICE)
        _compare(case, activation, None, torch.float32)


def test_shared_q_without_keys_or_examples(gdpa_case):
    case = gdpa_case(None, [], shared_tq=4, dtype=torch.float32, device=DEVICE)
    _compare(case, "silu", None, torch.float32)
    _compare(gdpa_case(None, None, shared_tq=4, dense_tk=0, batch=2, dtype=torch.float32, device=DEVICE),
             "softmax", None, torch.float32)


# Fixed tiles smaller than the lengths below, so every variant crosses query and key block boundaries; 16 and
# 32 divide a dense Tk of 32 (no key masks under static_tk) but not 37.
TILES = {"fwd": (32, 16, 4, 1), "dq": (16, 32, 4, 1), "dkdv": (16, 32, 4, 1)}
Variant = triton_impl.Variant


@pytest.mark.parametrize("variant,layout,dense_tk,activation,window", [
    (Variant("bh", **TILES), "dense_kv", 37, "silu", None),
    (Variant("bh", **TILES), "self", 0, "softmax", 3),
    (Variant("per_bh", **TILES), "self", 0, "gelu_tanh", 3),
    (Variant("per_bh", static_tk=True, **TILES), "dense_kv", 37, "softmax", 2),
    (Variant("per_bh", static_tk=True, **TILES), "shared_q_dense_kv", 32, "relu", None),
    (Variant("blocks", static_tk=True, **TILES), "dense_kv", 32, "gelu", None),
    (Variant("blocks", static_tk=True), "dense_kv", 32, "softmax", None),
])
def test_variants(gdpa_case, variant, layout, dense_tk, activation, window):
    q_lens, kv_lens, extra = LAYOUTS[layout]
    if dense_tk:
        extra = {**extra, "dense_tk": dense_tk}
    case = gdpa_case(q_lens, kv_lens, dtype=torch.float32, device=DEVICE, seed=7, **extra)
    _compare(case, activation, window, torch.float32, variant=Variant.parse(str(variant)))


@pytest.mark.parametrize("activation", ["silu", "gelu", "gelu_tanh"])
def test_half_tanh_fp16(gdpa_case, activation):
    variant = Variant("blocks", static_tk=True, half_tanh=True, **TILES)
    case = gdpa_case([0, 1, 45, 4], None, dense_tk=32, dtype=torch.float16, device=DEVICE, seed=8)
    _compare(case, activation, None, torch.float16, variant=variant)
    # The check above must see the half-precision path: its forward differs from the fp32 tanh's.
    args = (case["q"], case["k"], case["v"], case["q_offsets"], None, 45, 32, activation, None, 0.25)
    fp32_tanh = triton_impl.gdpa_forward(*args, variant=Variant("blocks", **TILES))
    assert not torch.equal(triton_impl.gdpa_forward(*args, variant=variant), fp32_tanh)


def test_variant_specs_and_environment(monkeypatch):
    v = Variant("per_bh", static_tk=True, half_tanh=True, fwd=(128, 64, 8, 3), dkdv=(64, 128, 8, 2))
    assert str(v) == "per_bh+static_tk+half_tanh+fwd=128x64x8x3+dkdv=64x128x8x2"
    assert Variant.parse(str(v)) == v and Variant.parse("") == triton_impl.DEFAULT
    for bad in ("diagonal", "fwd=128x64", "fwd=100x64x8x3", "fwd=axbxcxd", "dq"):
        with pytest.raises(ValueError):
            Variant.parse(bad)
    monkeypatch.setenv(triton_impl.VARIANT_ENV, "bh+dq=16x16x4x1")
    assert triton_impl.current_variant() == Variant("bh", dq=(16, 16, 4, 1))
    monkeypatch.setenv(triton_impl.VARIANT_ENV, "bh+warp")
    with pytest.raises(ValueError, match=triton_impl.VARIANT_ENV):
        triton_impl.current_variant()
    monkeypatch.delenv(triton_impl.VARIANT_ENV)
    assert triton_impl.current_variant() == triton_impl.DEFAULT


def test_the_op_runs_the_environment_variant(gdpa_case, monkeypatch):
    """gdpa(...) keeps its contract and runs the variant KUNLUN_GDPA_VARIANT names."""
    tiles = []
    original = triton_impl._launch
    monkeypatch.setattr(triton_impl, "_launch", lambda *a, **kw: tiles.append(a[2]) or original(*a, **kw))
    monkeypatch.setenv(triton_impl.VARIANT_ENV, "per_bh+fwd=16x16x4x1")
    case = gdpa_case([3, 20], None, dense_tk=18, dtype=torch.float32, device=DEVICE, seed=9)
    got = gdpa(case["q"], case["k"], case["v"], q_offsets=case["q_offsets"], activation="relu", backend="triton")
    want = reference.gdpa_forward(case["q"], case["k"], case["v"], case["q_offsets"], None, 20, 18, "relu", None,
                                  16 ** -0.5)
    assert tiles == [(16, 16, 4, 1)]
    assert _rel_err(got, want) <= TOLERANCE[torch.float32]


@pytest.mark.skipif(torch.cuda.is_available(), reason="relies on the interpreter's 32-row blocks")
@pytest.mark.parametrize("activation", ["silu", "softmax"])
def test_window_skips_key_blocks_outside_the_band(gdpa_case, activation):
    # 32 queries with window 3 see keys 0..34, i.e. key blocks 0 and 1. Keys 64.. are NaN: a kernel that loaded
    # their blocks and only masked the scores would still multiply 0 by NaN values and return NaN.
    case = gdpa_case([32], [128], dtype=torch.float32, device=DEVICE)
    q, k, v, qo, ko = case["q"], case["k"], case["v"], case["q_offsets"], case["kv_offsets"]
    args = (qo, ko, 32, 128, activation, 3, 0.25)
    want = reference.gdpa_forward(q, k, v, *args)
    grad_out = torch.randn_like(want)
    wants = reference.gdpa_backward(grad_out, q, k, v, *args)
    k[64:], v[64:] = float("nan"), float("nan")
    assert _rel_err(triton_impl.gdpa_forward(q, k, v, *args), want) <= TOLERANCE[torch.float32]
    dq, dk, dv = triton_impl.gdpa_backward(grad_out, q, k, v, *args)
    assert _rel_err(dq, wants[0]) <= TOLERANCE[torch.float32]
    assert _rel_err(dk, wants[1]) <= TOLERANCE[torch.float32]
    assert _rel_err(dv, wants[2]) <= TOLERANCE[torch.float32]


@pytest.mark.parametrize("layout", ["self", "shared_q"])
def test_op_autograd_runs_the_kernel(gdpa_case, layout):
    q_lens, kv_lens, extra = LAYOUTS[layout]
    case = gdpa_case(q_lens, kv_lens, dtype=torch.float32, device=DEVICE, seed=6, **extra)
    results = {}
    for backend in ("triton", "reference"):
        inputs = [case[n].detach().clone().requires_grad_() for n in "qkv"]
        out = gdpa(*inputs, q_offsets=case["q_offsets"], kv_offsets=case["kv_offsets"], activation="silu",
                   window=4, backend=backend)
        out.backward(torch.ones_like(out))
        results[backend] = [out, *(x.grad for x in inputs)]
    for got, want in zip(results["triton"], results["reference"]):
        assert _rel_err(got, want) <= TOLERANCE[torch.float32]


def test_kernels_compile_for_hopper():
    """The interpreter accepts code the GPU compiler rejects (non-constexpr globals, loop bound types), so
    compile a spread of kernel variants ahead of time for sm_90 with the bundled ptxas; no GPU needed."""
    script = textwrap.dedent("""
        import triton
        from triton.backends.compiler import GPUTarget
        from kunlun.kernels.gdpa import triton_impl as ti

        TYPES = {"q_offsets": "*i64", "kv_offsets": "*i64", "LSE": "*fp32", "DELTA": "*fp32", "scale": "fp32",
                 "TQ": "i32", "TK": "i32", "H": "i32", "window": "i32", "Q_BUCKET": "i32", "KV_BUCKET": "i32"}
        # kernel, MODE, ACT, JAGGED_Q, JAGGED_KV, HAS_WINDOW, ORDER, STATIC_TK (with EVEN_KV), HALF_TANH
        Q, KV = ti._query_kernel, ti._dkdv_kernel
        VARIANTS = [
            (Q, 0, 1, True, False, False, 0, 0, 0), (Q, 0, 5, True, True, True, 1, 0, 0),
            (Q, 1, 5, False, True, False, 1, 0, 0), (Q, 2, 2, True, True, True, 2, 0, 0),
            (Q, 0, 0, True, False, False, 1, 256, 2), (Q, 0, 1, True, False, False, 2, 200, 1),
            (Q, 0, 2, True, False, False, 1, 256, 2), (Q, 2, 3, True, False, False, 2, 256, 0),
            (KV, None, 0, False, False, False, 0, 0, 0), (KV, None, 5, True, True, True, 1, 0, 0),
            (KV, None, 3, True, False, False, 2, 256, 0), (KV, None, 0, True, False, False, 1, 200, 0)]
        for kernel, mode, act, jagged_q, jagged_kv, window, order, static_tk, half in VARIANTS:
            const = dict(D=64, BLOCK_D=64, ACT=act, JAGGED_Q=jagged_q, JAGGED_KV=jagged_kv, HAS_WINDOW=window,
                         DOT_PRECISION="tf32", FAST=True, ORDER=order, STATIC_TK=static_tk,
                         EVEN_KV=static_tk > 0 and static_tk % 64 == 0, BLOCK_M=64, BLOCK_N=64)
            if mode is not None:
                const.update(MODE=mode, HALF_TANH=half)
            sig = {a: "constexpr" if a in const else TYPES.get(a, "*bf16") for a in kernel.arg_names}
            src = triton.compiler.ASTSource(kernel, sig, constexprs=const)
            triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4, "num_stages": 2})
        """)
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=300)
    if "ptxas" in proc.stderr and "No such file" in proc.stderr:
        pytest.skip("no ptxas in this Triton install")
    assert proc.returncode == 0, proc.stderr[-4000:]


@gpu
@needs_cuda
@pytest.mark.parametrize("window", [None, 64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_bf16_on_gpu(gdpa_case, activation, window):
    lens = [0, 1, 127, 300, 1024, 513]
    case = gdpa_case(lens, lens, heads=4, head_dim=64, dtype=torch.bfloat16, device="cuda")
    _compare(case, activation, window, torch.bfloat16)


@gpu
@needs_cuda
@pytest.mark.parametrize("layout", ["dense_kv", "shared_q"])
def test_bf16_layouts_on_gpu(gdpa_case, layout):
    q_lens, kv_lens, extra = LAYOUTS[layout]
    case = gdpa_case(q_lens, kv_lens, heads=4, head_dim=128, dtype=torch.bfloat16, device="cuda", **extra)
    _compare(case, "gelu", None, torch.bfloat16)


def test_auto_backend_is_the_reference_on_cpu():
    assert resolve("auto", torch.zeros(1)) == "reference"


@gpu
@needs_cuda
def test_auto_backend_picks_triton_and_compiles_without_graph_breaks(gdpa_case, monkeypatch):
    case = gdpa_case([5, 200], [5, 200], heads=4, head_dim=64, dtype=torch.bfloat16, device="cuda")
    kwargs = {"q_offsets": case["q_offsets"], "kv_offsets": case["kv_offsets"], "max_q_len": 200,
              "max_kv_len": 200, "activation": "gelu", "window": 16}
    calls = []
    original = triton_impl.gdpa_forward

    def spy(*args, **kw):
        calls.append(1)
        return original(*args, **kw)

    monkeypatch.setattr(triton_impl, "gdpa_forward", spy)
    gdpa(case["q"], case["k"], case["v"], **kwargs)
    assert calls, "backend='auto' on CUDA must run the Triton implementation"
    monkeypatch.undo()

    inputs = [case[n].detach().clone().requires_grad_() for n in "qkv"]
    out = torch.compile(lambda q, k, v: gdpa(q, k, v, **kwargs), fullgraph=True)(*inputs)
    out.float().sum().backward()
    assert all(x.grad is not None for x in inputs)
