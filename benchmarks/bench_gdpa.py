"""GDPA kernel benchmark: the Triton kernel against the reference, the torch.compile'd reference and, for
softmax self-attention, flex-attention and SDPA with the same window; forward, backward and both, in bf16.

Shapes (DESIGN.md, KUNLUN.md 3.1, 3.3): the PFFN (B=1024 jagged sequences, mean 800 and max 1024 tokens,
H=4, Dh=64, 256 generated keys per example), windowed self-attention (T in {256, 1024, 4096}, w in {32, 128,
none}, Dh in {64, 128}, 64Ki tokens per batch, width 256) and HSP seed attention (32 seeds shared by the
batch over the jagged sequences). TFLOP/s use the op's FLOP formula (exact allowed pairs; backward = 2.5x),
whatever the provider computes; pct_peak is of the datasheet bf16 dense peak, pct_ceiling of the measured
cuBLAS bf16 GEMM (bench_matmul.py; measured first when the CSV has no row for this GPU).

    python benchmarks/bench_gdpa.py [--csv PATH] [--ops pffn,swa,hsp] [--providers triton,reference,...]
    TRITON_INTERPRET=1 python benchmarks/bench_gdpa.py --quick --device cpu --csv /tmp/k.csv   # smoke run
"""

from __future__ import annotations

import argparse
import functools
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_matmul  # noqa: E402
import rows  # noqa: E402
import timing  # noqa: E402

from kunlun.kernels import gdpa  # noqa: E402
from kunlun.kernels.gdpa import reference  # noqa: E402
from kunlun.kernels.gdpa.flops import BACKWARD_FACTOR, allowed_pairs, forward_flops  # noqa: E402

OPS = ("pffn", "swa", "hsp")
PROVIDERS = ("triton", "reference", "compile", "flex", "sdpa")
MODES = ("fwd", "bwd", "fwd+bwd")
FLOP_FACTOR = {"fwd": 1.0, "bwd": BACKWARD_FACTOR, "fwd+bwd": 1.0 + BACKWARD_FACTOR}


@dataclass
class Case:
    op: str
    activation: str
    window: int | None
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    q_offsets: torch.Tensor | None
    kv_offsets: torch.Tensor | None
    max_q_len: int
    max_kv_len: int
    examples: int
    shape: str

    @property
    def variant(self) -> str:
        return f"{self.op}-{self.activation}" + ("" if self.window is None else f"-w{self.window}")

    def forward_flops(self) -> float:
        b = self.examples
        q_lens = (self.q_offsets[1:] - self.q_offsets[:-1]).cpu() if self.q_offsets is not None else \
            torch.full((b,), self.q.shape[0])
        kv_lens = (self.kv_offsets[1:] - self.kv_offsets[:-1]).cpu() if self.kv_offsets is not None else \
            torch.full((b,), self.k.shape[1])
        pairs = float(allowed_pairs(q_lens, kv_lens, self.window).sum())
        return forward_flops(pairs, self.q.shape[-2], self.q.shape[-1])

    def kwargs(self) -> dict:
        return {"q_offsets": self.q_offsets, "kv_offsets": self.kv_offsets, "max_q_len": self.max_q_len,
                "max_kv_len": self.max_kv_len, "activation": self.activation, "window": self.window}


def _lengths(batch: int, mean: int, longest: int, gen: torch.Generator) -> torch.Tensor:
    """Uniform on [2 * mean - longest, longest]: the stated mean and maximum."""
    return torch.randint(2 * mean - longest, longest + 1, (batch,), generator=gen)


def _offsets(lengths: torch.Tensor, device: str) -> torch.Tensor:
    return torch.cat([lengths.new_zeros(1), lengths.cumsum(0)]).to(device)


def _rand(gen: torch.Generator, device: str, dtype: torch.dtype, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)


def pffn_case(activation, batch, mean, longest, n_kv, heads, dh, device, dtype, gen) -> Case:
    lens = _lengths(batch, mean, longest, gen)
    q = _rand(gen, device, dtype, int(lens.sum()), heads, dh)
    k, v = (_rand(gen, device, dtype, batch, n_kv, heads, dh) for _ in range(2))
    return Case("pffn", activation, None, q, k, v, _offsets(lens, device), None, int(lens.max()), n_kv, batch,
                f"B={batch} Tq={mean}/{longest} Tk={n_kv} H={heads} Dh={dh}")


def swa_case(activation, window, batch, length, heads, dh, device, dtype, gen) -> Case:
    lens = torch.full((batch,), length)
    q, k, v = (_rand(gen, device, dtype, batch * length, heads, dh) for _ in range(3))
    offsets = _offsets(lens, device)
    return Case("swa", activation, window, q, k, v, offsets, offsets, length, length, batch,
                f"B={batch} T={length} H={heads} Dh={dh}")


def hsp_case(activation, batch, seeds, mean, longest, heads, dh, device, dtype, gen) -> Case:
    lens = _lengths(batch, mean, longest, gen)
    q = _rand(gen, device, dtype, seeds, heads, dh)
    k, v = (_rand(gen, device, dtype, int(lens.sum()), heads, dh) for _ in range(2))
    return Case("hsp", activation, None, q, k, v, None, _offsets(lens, device), seeds, int(lens.max()), batch,
                f"B={batch} Tq={seeds} shared Tk={mean}/{longest} H={heads} Dh={dh}")


def cases(ops, device: str, dtype: torch.dtype, quick: bool):
    gen = torch.Generator().manual_seed(0)
    if "pffn" in ops:
        for act in ("gelu",) if quick else ("relu", "identity", "silu", "gelu"):
            yield pffn_case(act, *((2, 24, 40, 16, 2, 16) if quick else (1024, 800, 1024, 256, 4, 64)),
                            device, dtype, gen)
    if "swa" in ops:
        grid = [(48, 8, 16), (48, None, 16)] if quick else [
            (t, w, dh) for t in (256, 1024, 4096) for w in (32, 128, None) for dh in (64, 128)]
        for length, window, dh in grid:
            batch = 2 if quick else 65536 // length
            heads = 2 if quick else 256 // dh
            for act in ("silu", "softmax"):
                yield swa_case(act, window, batch, length, heads, dh, device, dtype, gen)
    if "hsp" in ops:
        for act in ("softmax",) if quick else ("silu", "softmax"):
            yield hsp_case(act, *((2, 4, 24, 40, 2, 16) if quick else (1024, 32, 800, 1024, 4, 64)), device,
                           dtype, gen)


@functools.cache
def _compiled_reference():
    return torch.compile(reference.gdpa_forward, dynamic=False)


@functools.cache
def _compiled_flex():
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def _padded(case: Case, x: torch.Tensor) -> torch.Tensor:
    """(B * T, H, Dh) of equal-length sequences -> (B, H, T, Dh), the layout flex and SDPA take."""
    return x.view(case.examples, case.max_q_len, *x.shape[1:]).transpose(1, 2)


def provider_fn(case: Case, provider: str) -> Callable[..., torch.Tensor] | None:
    """A function of (q, k, v) for this provider, or None where it does not apply."""
    scale = case.q.shape[-1] ** -0.5
    if provider in ("triton", "reference"):
        return lambda q, k, v: gdpa(q, k, v, **case.kwargs(), backend=provider)
    if provider == "compile":
        fn = _compiled_reference()
        return lambda q, k, v: fn(q, k, v, case.q_offsets, case.kv_offsets, case.max_q_len, case.max_kv_len,
                                  case.activation, case.window, scale)
    if case.op != "swa" or case.activation != "softmax":
        return None
    t, w = case.max_q_len, case.window
    if provider == "flex":
        from torch.nn.attention.flex_attention import create_block_mask

        block_mask = None if w is None else create_block_mask(
            lambda b, h, i, j: (i - j).abs() <= w, None, None, t, t, device=case.q.device)
        flex = _compiled_flex()
        return lambda q, k, v: flex(q, k, v, block_mask=block_mask, scale=scale)
    i = torch.arange(t, device=case.q.device)
    mask = None if w is None else (i[:, None] - i[None, :]).abs() <= w
    return lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                                              scale=scale)


def measure(case: Case, provider: str, mode: str, device: str, quick: bool) -> tuple[float, float | None] | None:
    fn = provider_fn(case, provider)
    if fn is None:
        return None
    inputs = [case.q, case.k, case.v]
    if provider in ("flex", "sdpa"):
        inputs = [_padded(case, x).contiguous() for x in inputs]
    if mode == "fwd":
        timing.reset_peak_memory(device)
        with torch.no_grad():
            ms = timing.measure_ms(lambda: fn(*inputs), device, quick=quick)
        return ms, timing.peak_memory_gb(device)
    inputs = [x.detach().clone().requires_grad_() for x in inputs]
    timing.reset_peak_memory(device)
    if mode == "fwd+bwd":
        grad = torch.randn_like(fn(*inputs))
        ms = timing.measure_ms(lambda: fn(*inputs).backward(grad), device, grad_to_none=inputs, quick=quick)
    else:
        out = fn(*inputs)
        grad = torch.randn_like(out)
        ms = timing.measure_ms(lambda: out.backward(grad, retain_graph=True), device, grad_to_none=inputs,
                               quick=quick)
    return ms, timing.peak_memory_gb(device)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=rows.DEFAULT_DIR / "kernels.csv")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one repetition: a smoke run")
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--providers", default=None, help=f"subset of {PROVIDERS} (default: all; on CPU "
                        "triton and reference)")
    parser.add_argument("--modes", default=",".join(MODES))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    ops, modes = args.ops.split(","), args.modes.split(",")
    # Compiling on CPU needs a C++ toolchain and flex/SDPA rows are for the GPU: the CPU path is a smoke test.
    providers = args.providers.split(",") if args.providers else (
        list(PROVIDERS) if args.device == "cuda" else ["triton", "reference"])
    # bf16 products are wrong in the Triton interpreter, so the CPU smoke run uses fp32.
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    dtype_name = {torch.bfloat16: "bf16", torch.float32: "fp32"}[dtype]
    env = rows.environment()
    peak = bench_matmul.peak_tflops(args.device, dtype)
    ceiling = None
    if args.device == "cuda":
        ceiling = bench_matmul.ceiling_tflops(args.csv, env["gpu_name"], dtype_name)
        if ceiling is None:
            ceiling = max(float(r["tflops"]) for r in bench_matmul.run(args.csv, args.device, args.quick, dtype))
    failures = 0
    for case in cases(ops, args.device, dtype, args.quick):
        flops = case.forward_flops()
        for mode in modes:
            for provider in providers:
                try:
                    result = measure(case, provider, mode, args.device, args.quick)
                except Exception:  # one failing provider (out of memory, compile error) must not stop the run
                    failures += 1
                    print(f"FAILED {case.variant} {case.shape} {mode} {provider}:\n{traceback.format_exc()}")
                    if args.device == "cuda":
                        torch.cuda.empty_cache()
                    continue
                if result is None:
                    continue
                ms, mem = result
                tflops = FLOP_FACTOR[mode] * flops / ms / 1e9
                row = rows.make_row(
                    env, bench="kernels", name="gdpa", variant=case.variant, mode=mode, provider=provider,
                    shape=case.shape, dtype=dtype_name, ms=ms, tflops=tflops, peak_tflops=peak,
                    pct_peak=None if peak is None else 100 * tflops / peak,
                    pct_ceiling=None if ceiling is None else 100 * tflops / ceiling, peak_mem_gb=mem,
                    examples_per_second=case.examples / (ms / 1e3))
                rows.append_rows(args.csv, [row])
                print(f"{case.variant:>18} {case.shape:>40} {mode:>7} {provider:>9} {ms:10.3f} ms "
                      f"{tflops:8.2f} TFLOP/s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
