"""GDPA kernel-variant sweep for one GPU lease: the measured roofline first, then the Triton kernel's variants
(kunlun.kernels.gdpa.triton_impl.Variant: launch order, static Tk, half-precision tanh, fixed tiles) on the
shapes of issue 16, every row appended to the CSV as soon as it is measured.

1. HBM copy bandwidth (device-to-device copy of 2 GiB, bytes read + written) and the bf16 matmul ceiling
   (bench_matmul.py): the measured roofline min(ceiling, FLOPs / minimum bytes x bandwidth).
2. PFFN (B=1024, Tq jagged mean 800 max 1024, Tk=256 dense, H=4, Dh=64): relu forward over orders, tiles,
   static Tk and per-(b, h) programs, greedily (each step keeps the fastest so far); silu and gelu_tanh forward
   with and without half_tanh; relu backward over dk/dv and dq tiles; relu forward + backward, baseline and best.
3. SWA (T=4096, w=128, softmax, 64Ki tokens, H=4, Dh=64): windowed against full attention, with the block-level
   ideal speed-up (key tiles visited) in the log, and flex-attention with the same window.
4. HSP (32 seeds shared, jagged keys as the PFFN's queries): softmax and silu, forward and forward + backward.
5. tritonbench's gdpa shape (--batch 1152 --max_seq_len 1000 --dim 128 --head 4 --kv_len 256 --sparsity 0.7;
   its head dim is dim / head = 32), then the same with Dh=128.

The baseline is the kernel before this sweep: (b, h)-major order and its autotuner's first tiles. No autotuning:
each variant names its tiles. Every variant's output (and gradients) is checked against the reference before it
is timed; a wrong one is reported and not timed. `--budget-s` stops cleanly before the next measurement once
spent, so the rows written so far stand. Columns: `tflops` are model FLOPs (backward 2.5x), `executed_tflops`
what the kernel runs (kunlun.kernels.gdpa.flops.executed_backward_factor), `pct_peak` of the datasheet,
`pct_ceiling` of the measured matmul ceiling, `pct_roofline` of the measured roofline; the copy row
(name=copy) gives the bandwidth as bytes (in `shape`) / ms.

    python benchmarks/sweep_gdpa.py --csv $OUT/kernels.csv --budget-s 330
    TRITON_INTERPRET=1 python benchmarks/sweep_gdpa.py --quick --device cpu --csv /tmp/k.csv   # smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
import traceback
from pathlib import Path

import torch
import triton

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gdpa  # noqa: E402
import bench_matmul  # noqa: E402
import rows  # noqa: E402
import timing  # noqa: E402

from kunlun.kernels.gdpa import reference, triton_impl  # noqa: E402
from kunlun.kernels.gdpa.flops import executed_backward_factor  # noqa: E402
from kunlun.kernels.gdpa.triton_impl import Variant  # noqa: E402

PARTS = ("pffn", "swa", "hsp", "tritonbench")
# Relative (Frobenius) error allowed against the reference, as in tests/kernels.
TOLERANCE = {torch.bfloat16: 3e-2, torch.float16: 5e-3, torch.float32: 1e-5}
_DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float32: "fp32"}


@dataclasses.dataclass(frozen=True)
class Tiles:
    """The tiles a sweep tries. BASE: the autotuner's first configs, the kernel's tiles before this sweep."""

    base: dict
    fwd: tuple
    dq: tuple
    dkdv: tuple


GPU_TILES = Tiles(
    base=dict(fwd=(128, 64, 4, 3), dq=(128, 64, 4, 3), dkdv=(64, 64, 4, 3)),
    fwd=((128, 64, 8, 3), (128, 128, 8, 2), (128, 128, 8, 3), (256, 64, 8, 3), (256, 128, 8, 2), (64, 64, 4, 3),
         (128, 256, 8, 1)),
    dq=((128, 64, 8, 3), (128, 128, 8, 2), (64, 64, 4, 3), (64, 128, 4, 2)),
    dkdv=((64, 128, 8, 2), (32, 128, 4, 2), (64, 128, 4, 3), (128, 128, 8, 2), (64, 64, 8, 3)))
# The interpreter's cost is per program: one small tile per kernel, enough to run every code path.
QUICK_TILES = Tiles(base=dict(fwd=(32, 16, 4, 1), dq=(32, 16, 4, 1), dkdv=(16, 32, 4, 1)), fwd=((16, 16, 4, 1),),
                    dq=((16, 16, 4, 1),), dkdv=((16, 16, 4, 1),))


class Budget:
    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.skipped = 0

    def left(self) -> bool:
        return time.monotonic() < self.deadline


@dataclasses.dataclass
class Roofline:
    ceiling_tflops: float  # measured matmul
    bandwidth: float  # measured copy, B/s

    def tflops(self, flops: float, nbytes: float) -> float:
        return min(self.ceiling_tflops, flops / nbytes * self.bandwidth / 1e12)


def copy_bandwidth(csv: Path, env: dict, device: str, quick: bool) -> float:
    """Device-to-device copy, bytes read + written per second; one row (name=copy)."""
    n = (1 << 20) if quick else (2 << 30)
    src = torch.empty(n, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    ms = timing.measure_ms(lambda: dst.copy_(src), device, quick=quick)
    moved = 2 * n
    rows.append_rows(csv, [rows.make_row(env, bench="kernels", name="copy", variant="device-to-device", mode="fwd",
                                         provider="torch", shape=f"bytes={moved}", dtype="uint8", ms=ms)])
    return moved / (ms / 1e3)


def out_numel(case: bench_gdpa.Case) -> int:
    return case.q.numel() if case.q_offsets is not None else case.examples * case.q.numel()


def min_bytes(case: bench_gdpa.Case, mode: str) -> float:
    """Bytes the op must move at least: forward reads q, k, v and writes out; backward reads q, k, v, dO and
    writes dq, dk, dv."""
    size = case.q.element_size()
    inputs = case.q.numel() + case.k.numel() + case.v.numel()
    fwd, bwd = (inputs + out_numel(case)) * size, (2 * inputs + out_numel(case)) * size
    return {"fwd": fwd, "bwd": bwd, "fwd+bwd": fwd + bwd}[mode]


def flop_factors(case: bench_gdpa.Case, mode: str) -> tuple[float, float]:
    """(model, executed) FLOPs of `mode` over the forward's."""
    executed = executed_backward_factor(case.activation)
    return bench_gdpa.FLOP_FACTOR[mode], {"fwd": 1.0, "bwd": executed, "fwd+bwd": 1.0 + executed}[mode]


def _rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.float() - want.float()).norm() / max(want.float().norm().item(), 1.0)).item()


class Runner:
    """Measures variants on one case and mode, checking each against the reference first."""

    def __init__(self, case: bench_gdpa.Case, mode: str, ctx: Sweep):
        self.case, self.mode, self.ctx = case, mode, ctx
        c = case
        self.args = (c.q, c.k, c.v, c.q_offsets, c.kv_offsets, c.max_q_len, c.max_kv_len, c.activation, c.window,
                     c.q.shape[-1] ** -0.5)
        self.out = c.q.new_empty(c.q.shape if c.q_offsets is not None else (c.examples, *c.q.shape))
        gen = torch.Generator(device=c.q.device).manual_seed(1)
        self.grad_out = torch.randn(self.out.shape, generator=gen, device=c.q.device, dtype=c.q.dtype)
        self.grads = tuple(torch.empty_like(x) for x in (c.q, c.k, c.v))
        self.want = None
        self.results: dict[Variant, float] = {}

    def _run(self, variant: Variant) -> list[torch.Tensor]:
        got = []
        if self.mode != "bwd":
            got.append(triton_impl.gdpa_forward(*self.args, out=self.out, variant=variant))
        if self.mode != "fwd":
            got.extend(triton_impl.gdpa_backward(self.grad_out, *self.args, grads=self.grads, variant=variant))
        return got

    def _reference(self) -> list[torch.Tensor]:
        if self.want is None:
            self.want = []
            if self.mode != "bwd":
                self.want.append(reference.gdpa_forward(*self.args))
            if self.mode != "fwd":
                self.want.extend(reference.gdpa_backward(self.grad_out, *self.args))
        return self.want

    def measure(self, variant: Variant) -> float | None:
        """ms of `variant` (also recorded in self.results and the CSV), or None: wrong, does not fit, or out of
        budget."""
        if variant in self.results:
            return self.results[variant]
        label = f"{self.case.variant} {variant}"
        if not self.ctx.budget.left():
            self.ctx.budget.skipped += 1
            return None
        try:
            for x in (self.out, *self.grads):
                x.fill_(float("nan"))
            errors = [_rel_err(g, w) for g, w in zip(self._run(variant), self._reference())]
            if not all(e <= TOLERANCE[self.case.q.dtype] for e in errors):  # NaN fails too
                self.ctx.failures += 1
                print(f"WRONG {label} {self.mode}: relative errors {', '.join(f'{e:.3g}' for e in errors)}", flush=True)
                return None
            timing.reset_peak_memory(self.ctx.device)
            ms = timing.measure_ms(lambda: self._run(variant), self.ctx.device, quick=self.ctx.quick)
        except triton.runtime.errors.OutOfResources as e:
            print(f"does not fit: {label} {self.mode}: {e}", flush=True)
            return None
        except Exception:  # a compile error or out of memory must not end the lease's run
            self.ctx.failures += 1
            print(f"FAILED {label} {self.mode}:\n{traceback.format_exc()}", flush=True)
            if self.ctx.device == "cuda":
                torch.cuda.empty_cache()
            return None
        self.results[variant] = ms
        self.ctx.write(self.case, self.mode, "triton", str(variant), ms, timing.peak_memory_gb(self.ctx.device))
        return ms

    def best(self) -> Variant | None:
        return min(self.results, key=self.results.get) if self.results else None


class Sweep:
    def __init__(self, args: argparse.Namespace):
        self.csv, self.device, self.quick = args.csv, args.device, args.quick
        self.budget = Budget(args.budget_s)
        self.failures = 0
        self.tiles = QUICK_TILES if args.quick else GPU_TILES
        self.baseline = Variant("bh", **self.tiles.base)
        # bf16 products are wrong in the Triton interpreter, so the CPU smoke run uses fp32.
        self.dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.env = rows.environment()
        self.peak = bench_matmul.peak_tflops(self.device, self.dtype)
        self.gen = torch.Generator().manual_seed(0)
        self.roofline: Roofline | None = None

    def measure_roofline(self) -> None:
        bandwidth = copy_bandwidth(self.csv, self.env, self.device, self.quick)
        matmul = bench_matmul.run(self.csv, self.device, self.quick, self.dtype)
        self.roofline = Roofline(max(float(r["tflops"]) for r in matmul), bandwidth)
        print(f"copy {bandwidth / 1e9:.1f} GB/s, matmul ceiling {self.roofline.ceiling_tflops:.1f} TFLOP/s, "
              f"ridge {self.roofline.ceiling_tflops * 1e12 / bandwidth:.0f} FLOP/B", flush=True)

    def write(self, case: bench_gdpa.Case, mode: str, provider: str, variant: str, ms: float,
              mem: float | None) -> None:
        model, executed = flop_factors(case, mode)
        flops = case.forward_flops()
        tflops = model * flops / ms / 1e9
        roof = self.roofline.tflops(model * flops, min_bytes(case, mode))
        row = rows.make_row(
            self.env, bench="kernels", name="gdpa", variant=f"{case.variant} {variant}".strip(), mode=mode,
            provider=provider, shape=case.shape, dtype=_DTYPE_NAMES[self.dtype], ms=ms, tflops=tflops,
            peak_tflops=self.peak, pct_peak=None if self.peak is None else 100 * tflops / self.peak,
            pct_ceiling=100 * tflops / self.roofline.ceiling_tflops, peak_mem_gb=mem,
            examples_per_second=case.examples / (ms / 1e3), pct_roofline=100 * tflops / roof,
            executed_tflops=executed * flops / ms / 1e9)
        rows.append_rows(self.csv, [row])
        peak = "" if self.peak is None else f"{100 * tflops / self.peak:5.1f}% peak "
        print(f"{case.variant:>16} {mode:>7} {provider:>6} {variant:<58} {ms:9.3f} ms {tflops:7.1f} TFLOP/s "
              f"{peak}{100 * tflops / roof:5.1f}% roofline", flush=True)

    # Shapes ------------------------------------------------------------------------------------------------
    def pffn(self, activation: str, tritonbench: bool = False, dh: int | None = None) -> bench_gdpa.Case:
        if self.quick:
            shape = (2, 24, 40, 16, 2, dh or 16)
        elif tritonbench:
            # tritonbench draws lengths in [int((2 * 0.7 - 1) * 1000), 1000) = [399, 999]: mean 699.
            shape = (1152, 699, 999, 256, 4, dh or 32)
        else:
            shape = (1024, 800, 1024, 256, 4, 64)
        case = bench_gdpa.pffn_case(activation, *shape, self.device, self.dtype, self.gen)
        if tritonbench:
            case.op = "tritonbench"
        return case

    def swa(self, window: int | None) -> bench_gdpa.Case:
        batch, length, heads, dh = (2, 48, 2, 16) if self.quick else (16, 4096, 4, 64)
        return bench_gdpa.swa_case("softmax", window, batch, length, heads, dh, self.device, self.dtype, self.gen)

    def hsp(self, activation: str) -> bench_gdpa.Case:
        shape = (2, 4, 24, 40, 2, 16) if self.quick else (1024, 32, 800, 1024, 4, 64)
        return bench_gdpa.hsp_case(activation, *shape, self.device, self.dtype, self.gen)

    # Parts -------------------------------------------------------------------------------------------------
    def forward_search(self, case: bench_gdpa.Case) -> Variant | None:
        """Greedy over the forward: order, then tiles, then static Tk and per-(b, h) programs on the best."""
        run = Runner(case, "fwd", self)
        run.measure(self.baseline)
        blocks = dataclasses.replace(self.baseline, order="blocks")
        run.measure(blocks)
        for tile in self.tiles.fwd:
            run.measure(dataclasses.replace(blocks, fwd=tile))
        best = run.best() or blocks
        for change in (dict(static_tk=True), dict(order="per_bh"), dict(order="per_bh", static_tk=True)):
            run.measure(dataclasses.replace(best, **change))
        return run.best()

    def backward_search(self, case: bench_gdpa.Case) -> Variant | None:
        run = Runner(case, "bwd", self)
        run.measure(self.baseline)
        blocks = dataclasses.replace(self.baseline, order="blocks")
        run.measure(blocks)
        for tile in self.tiles.dkdv:
            run.measure(dataclasses.replace(blocks, dkdv=tile))
        best = run.best() or blocks
        for tile in self.tiles.dq:
            run.measure(dataclasses.replace(best, dq=tile))
        best = run.best() or blocks
        for change in (dict(static_tk=True), dict(order="per_bh")):
            run.measure(dataclasses.replace(best, **change))
        return run.best()

    def both(self, case: bench_gdpa.Case, fwd: Variant | None, bwd: Variant | None) -> Variant | None:
        """Forward + backward: the baseline and the best forward's tiles with the best backward's (under each
        one's order and static Tk, which both passes share)."""
        run = Runner(case, "fwd+bwd", self)
        run.measure(self.baseline)
        if fwd and bwd:
            for like in (bwd, fwd):
                run.measure(Variant(like.order, like.static_tk, fwd.half_tanh, fwd.fwd, bwd.dq, bwd.dkdv))
        return run.best()

    def run_pffn(self) -> dict[str, Variant | None]:
        best = {"fwd": self.forward_search(self.pffn("relu"))}
        for activation in ("silu", "gelu_tanh"):
            run = Runner(self.pffn(activation), "fwd", self)
            for v in (self.baseline, best["fwd"]):
                if v is not None:
                    run.measure(v)
                    run.measure(dataclasses.replace(v, half_tanh=True))
        case = self.pffn("relu")
        best["bwd"] = self.backward_search(case)
        best["fwd+bwd"] = self.both(case, best["fwd"], best["bwd"])
        for mode, v in best.items():
            print(f"PFFN relu {mode} best: {v}", flush=True)
        return best

    def run_swa(self, best: dict[str, Variant | None]) -> None:
        cases = {w: self.swa(w) for w in (None, 8 if self.quick else 128)}
        for mode in ("fwd", "fwd+bwd"):
            variant = best.get(mode) or self.baseline
            times = {}
            for window, case in cases.items():
                for v in dict.fromkeys((self.baseline, variant)):
                    times[window, v] = Runner(case, mode, self).measure(v)
            window = max(w for w in cases if w is not None)
            for v in dict.fromkeys((self.baseline, variant)):
                full, banded = times[None, v], times[window, v]
                if full and banded:
                    ideal = visited_tiles(cases[None], None, v.fwd) / visited_tiles(cases[window], window, v.fwd)
                    print(f"SWA {mode} {v}: windowed {full / banded:.2f}x faster than full; block-level ideal "
                          f"{ideal:.2f}x ({100 * full / banded / ideal:.0f}%)", flush=True)
            if self.device == "cuda" and self.budget.left():
                self.provider(cases[window], mode, "flex")

    def provider(self, case: bench_gdpa.Case, mode: str, provider: str) -> None:
        try:
            result = bench_gdpa.measure(case, provider, mode, self.device, self.quick)
        except Exception:
            self.failures += 1
            print(f"FAILED {case.variant} {mode} {provider}:\n{traceback.format_exc()}", flush=True)
            return
        if result is not None:
            self.write(case, mode, provider, "", *result)

    def run_hsp(self, best: dict[str, Variant | None]) -> None:
        for activation in ("softmax", "silu"):
            case = self.hsp(activation)
            for mode in ("fwd", "fwd+bwd"):
                run = Runner(case, mode, self)
                for v in dict.fromkeys((self.baseline, best.get(mode) or self.baseline)):
                    run.measure(v)

    def run_tritonbench(self, best: dict[str, Variant | None]) -> None:
        for dh in (None, 128):
            fwd, both = best.get("fwd") or self.baseline, best.get("fwd+bwd") or self.baseline
            for activation in ("gelu_tanh", "relu"):
                run = Runner(self.pffn(activation, tritonbench=True, dh=dh), "fwd", self)
                for v in dict.fromkeys((self.baseline, fwd, dataclasses.replace(fwd, half_tanh=True))):
                    run.measure(v)
            run = Runner(self.pffn("relu", tritonbench=True, dh=dh), "fwd+bwd", self)
            for v in dict.fromkeys((self.baseline, both)):
                run.measure(v)


def visited_tiles(case: bench_gdpa.Case, window: int | None, tile) -> int:
    """(query block, key block) tiles the forward visits over one sequence: its block-level work."""
    block_m, block_n = tile[:2]
    length = case.max_q_len
    total = 0
    for m0 in range(0, length, block_m):
        lo, hi = 0, length
        if window is not None:
            lo, hi = max(m0 - window, 0) // block_n * block_n, min(m0 + block_m + window, length)
        total += math.ceil((hi - lo) / block_n)
    return total


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=rows.DEFAULT_DIR / "kernels.csv")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one repetition: a smoke run")
    parser.add_argument("--budget-s", type=float, default=330.0, help="stop before the next measurement after this")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {PARTS}, run in this order")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    if not set(parts) <= set(PARTS) or args.budget_s <= 0:
        parser.error(f"--parts must be a subset of {PARTS} and --budget-s positive")
    args.parts = parts
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    sweep = Sweep(args)
    sweep.measure_roofline()
    best: dict[str, Variant | None] = {}
    for part in args.parts:
        if not sweep.budget.left():
            break
        print(f"=== {part} ({time.monotonic() - start:.0f} s)", flush=True)
        if part == "pffn":
            best = sweep.run_pffn()
        else:
            getattr(sweep, f"run_{part}")(best)
    print(f"done in {time.monotonic() - start:.0f} s: {sweep.budget.skipped} measurements skipped for the "
          f"budget, {sweep.failures} failures", flush=True)
    return 1 if sweep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
