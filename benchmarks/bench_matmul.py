"""The measured bf16 GEMM ceiling (cuBLAS via torch.matmul): the denominator of `pct_ceiling` in every kernel
row. Writes one row per size (bench=kernels, name=matmul, provider=cublas); the best of them is the ceiling.
`--sweep` adds the thin GEMMs a recommendation model runs (many rows, narrow widths: variant=linear, shape
MxNxK), which `kunlun.space.cost.calibrate` turns into per-width efficiencies.

    python benchmarks/bench_matmul.py [--csv PATH] [--quick] [--sweep] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rows  # noqa: E402
import timing  # noqa: E402

from kunlun.kernels import hardware  # noqa: E402

SIZES = (4096, 8192, 16384)
QUICK_SIZES = (256,)
# rows (batch x tokens) x out x in: the widths of the presets (16-512) at production row counts
SWEEP = [(m, n, k) for m in (16384, 262144) for n in (16, 32, 64, 128, 256, 512) for k in (32, 128, 512)]
QUICK_SWEEP = [(64, 16, 32)]
_DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


def peak_tflops(device: str, dtype: torch.dtype) -> float | None:
    """The datasheet dense peak of this GPU for `dtype`, or None when the GPU is unknown (never a guess)."""
    spec = hardware.detect() if device == "cuda" else hardware.UNKNOWN
    return None if spec == hardware.UNKNOWN else spec.peak_flops(dtype) / 1e12


def run(csv_path: Path, device: str, quick: bool, dtype: torch.dtype = torch.bfloat16) -> list[dict[str, str]]:
    env = rows.environment()
    peak = peak_tflops(device, dtype)
    out = []
    for n in QUICK_SIZES if quick else SIZES:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        timing.reset_peak_memory(device)
        ms = timing.measure_ms(lambda a=a, b=b: a @ b, device, quick=quick)
        tflops = 2 * n**3 / ms / 1e9
        out.append(rows.make_row(
            env, bench="kernels", name="matmul", variant="square", mode="fwd", provider="cublas",
            shape=f"M=N=K={n}", dtype=_DTYPE_NAMES[dtype], ms=ms, tflops=tflops, peak_tflops=peak,
            pct_peak=None if peak is None else 100 * tflops / peak, pct_ceiling=None,
            peak_mem_gb=timing.peak_memory_gb(device)))
    best = max(float(r["tflops"]) for r in out)
    for r in out:
        r["pct_ceiling"] = f"{100 * float(r['tflops']) / best:.4g}"
    rows.append_rows(csv_path, out)
    return out


def sweep(csv_path: Path, device: str, quick: bool, dtype: torch.dtype = torch.bfloat16) -> list[dict[str, str]]:
    """Thin GEMMs (x @ W^T as nn.Linear runs them) against the ceiling of the same CSV."""
    env = rows.environment()
    peak = peak_tflops(device, dtype)
    ceiling = ceiling_tflops(csv_path, env["gpu_name"], _DTYPE_NAMES[dtype])
    out = []
    for m, n, k in QUICK_SWEEP if quick else SWEEP:
        x = torch.randn(m, k, device=device, dtype=dtype)
        w = torch.randn(n, k, device=device, dtype=dtype)
        ms = timing.measure_ms(lambda x=x, w=w: torch.nn.functional.linear(x, w), device, quick=quick)
        tflops = 2 * m * n * k / ms / 1e9
        out.append(rows.make_row(
            env, bench="kernels", name="matmul", variant="linear", mode="fwd", provider="cublas",
            shape=f"{m}x{n}x{k}", dtype=_DTYPE_NAMES[dtype], ms=ms, tflops=tflops, peak_tflops=peak,
            pct_peak=None if peak is None else 100 * tflops / peak,
            pct_ceiling=None if ceiling is None else 100 * tflops / ceiling))
    rows.append_rows(csv_path, out)
    return out


def ceiling_tflops(csv_path: Path, gpu_name: str, dtype: str = "bf16") -> float | None:
    """The best matmul TFLOP/s recorded in `csv_path` for this GPU and dtype, or None."""
    if not csv_path.exists():
        return None
    best = [float(r["tflops"]) for r in rows.read_rows(csv_path)
            if r["name"] == "matmul" and r["provider"] == "cublas" and r["gpu_name"] == gpu_name
            and r["dtype"] == dtype]
    return max(best) if best else None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=rows.DEFAULT_DIR / "kernels.csv")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="one tiny size: a smoke run, not a result")
    parser.add_argument("--sweep", action="store_true", help="also the thin GEMMs of recommendation models")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for r in run(args.csv, args.device, args.quick) + (sweep(args.csv, args.device, args.quick) if args.sweep else []):
        print(f"{r['shape']:>16}  {float(r['ms']):8.3f} ms  {float(r['tflops']):8.1f} TFLOP/s  "
              f"{r['pct_peak'] or '-':>6} % of peak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
