"""Training-step benchmark: Kunlun against the InterFormer baseline at about the same training FLOPs per example.

The paper's experiment on our hardware (KUNLUN.md: MFU 17% -> 37% on B200). Production-like shape: per-GPU batch
1024, streams of up to 1,000 events, width 256, 6 layers; Kunlun runs `alternate` CompSkip, windows (click 100,
impression 50), GDPA with generated K/V and HSP; the baseline runs every component in every layer with softmax
attention (the gdpa op dispatches it to its fastest implementation) and InterFormer's linear PFFN, its depth chosen
so that its training FLOPs per example come closest to Kunlun's. bf16 autocast, AdamW, optional torch.compile.

Per preset: median step time after warm-up (do_bench on CUDA), examples/s, model TFLOP/s from count_flops on the
very batch, MFU against the datasheet bf16 dense peak and against the measured GEMM ceiling, peak memory, and a
forward per-module breakdown (profiler ranges named by DESIGN.md's module keys; backward kernels run outside those
ranges, so the breakdown is of the forward). Rows: bench=train_step, name=preset, pct_peak=MFU in percent;
per-module rows carry variant=module:<key>, mode=fwd.

`--presets` instead measures every shipped preset on its own workload and batch size and writes, beside each
measured step, the cost model's prediction for the same GPU and batch (provider=cost-model): the cost model's
validation (`python benchmarks/validate_cost.py results/bench/train_step.csv`).

    python benchmarks/train_step.py --csv $OUT/train_step.csv [--compile] [--batch 2048]
    python benchmarks/train_step.py --presets --csv $OUT/train_step.csv
    python benchmarks/train_step.py --tiny --device cpu --csv /tmp/t.csv      # CPU smoke run (not a result)
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rows  # noqa: E402
import timing  # noqa: E402

from kunlun.data import synthetic_batch  # noqa: E402
from kunlun.kernels import hardware  # noqa: E402
from kunlun.model import KunlunConfig, KunlunModel, count_flops  # noqa: E402
from kunlun.model.config import LengthHistogram, preset_names  # noqa: E402
from kunlun.space import cost  # noqa: E402


def production_configs(batch: int, tiny: bool) -> dict[str, KunlunConfig]:
    """Kunlun at the production-like shape and the InterFormer baseline closest to it in training FLOPs."""
    base = KunlunConfig.preset("kunlun-base")
    scale = 1 if not tiny else 8  # tiny: every width and length divided by 8
    d, max_len = 256 // scale, 1000 // scale
    m = base.model
    m.d_model, m.embedding_dim, m.num_layers, m.summary_tokens = d, 64 // scale, 6 if not tiny else 3, 8
    m.interaction.experts, m.interaction.mlp_hidden = 4, 2 * d
    for name, width, heads, window in (("click", d, 4, 100), ("impression", d // 2, 2, 50)):
        s = m.streams[name]
        s.d, s.heads, s.kv_len, s.seeds, s.summary_tokens = width, heads, width, 64 // scale, 8
        s.window, s.max_len, s.depth = max(window // scale, 1), max_len, None
    lengths = [max_len // 4, max_len // 2, max_len]  # mean about 580 events at full scale
    base.workload.batch_size = batch
    base.workload.streams = {n: LengthHistogram(lengths, [1, 1, 1]) for n in base.stream_names}
    kunlun = base.replace()
    target = count_flops(kunlun).train_flops_per_example
    best = None
    for layers in range(1, 9):
        inter = KunlunConfig.preset("interformer-small")
        inter.model.d_model, inter.model.embedding_dim, inter.model.num_layers = d, m.embedding_dim, layers
        inter.model.summary_tokens = 8
        inter.model.interaction = m.interaction
        for name in inter.model.streams:
            s, k = inter.model.streams[name], m.streams[name]
            s.d, s.heads, s.kv_len, s.summary_tokens, s.max_len = k.d, k.heads, 8, 8, max_len
        inter.workload = base.workload
        gap = abs(count_flops(inter).train_flops_per_example / target - 1)
        if best is None or gap < best[0]:
            best = (gap, inter)
    return {"kunlun-production": kunlun, "interformer-production": best[1]}


def histogram_lengths(hist: LengthHistogram, batch: int) -> torch.Tensor:
    """`batch` lengths in the histogram's proportions (largest remainder), longest first."""
    total = sum(hist.weights)
    exact = [batch * w / total for w in hist.weights]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[:batch - sum(counts)]:
        counts[i] += 1
    pairs = sorted(zip(hist.lengths, counts), reverse=True)
    return torch.tensor([length for length, c in pairs for _ in range(c)], dtype=torch.int64)


def make_batch(config: KunlunConfig, batch: int, device: str = "cpu"):
    """A batch whose stream lengths follow the workload histogram exactly (so it prices like the workload);
    deterministic, so a prediction made elsewhere can rebuild it."""
    b = synthetic_batch(config, batch, seed=0)
    for name, hist in config.workload.streams.items():
        s = b.streams[name]
        lengths = histogram_lengths(hist, batch)
        offsets = torch.zeros(batch + 1, dtype=torch.int64)
        offsets[1:] = lengths.cumsum(0)
        n = int(offsets[-1])
        gen = torch.Generator().manual_seed(1)
        s.values = torch.randint(0, config.schema.streams[name].vocab, (n,), generator=gen)
        s.offsets, s.timestamps = offsets, torch.zeros(n, dtype=torch.int64)
        s.side = {k: torch.randint(0, v, (n,), generator=gen) for k, v in config.schema.streams[name].side.items()}
    return b.to(device)


def ceiling_tflops(device: str) -> float | None:
    if device != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    ms = timing.measure_ms(lambda: a @ a, device)
    return 2 * 8192**3 / ms / 1e9


def module_breakdown(model: KunlunModel, batch, device: str, autocast) -> dict[str, float]:
    """Forward milliseconds per module key (device time on CUDA, CPU time otherwise)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof, autocast():
        model(batch)
        if device == "cuda":
            torch.cuda.synchronize()
    keys = set(count_flops(model.config, batch).by_module())
    out = {}
    for e in prof.key_averages():
        if e.key in keys:
            t = e.device_time_total if device == "cuda" else e.cpu_time_total
            out[e.key] = t / 1e3
    return out


def bench(name: str, config: KunlunConfig, args, env, peak, ceiling, gpu: str | None = None) -> list[dict]:
    device = args.device
    torch.manual_seed(0)
    model = KunlunModel(config).to(device)
    if args.compile:
        model = torch.compile(model)
    batch = make_batch(config, args.batch, device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")

    def autocast():
        if device == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step():
        with autocast():
            loss = (model.loss if not args.compile else model._orig_mod.loss)(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    timing.reset_peak_memory(device)
    ms = statistics.median([timing.measure_ms(step, device, quick=args.tiny) for _ in range(1 if args.tiny else 3)])
    report = count_flops(config, batch)
    tflops = report.training / ms / 1e9
    shape = f"B={args.batch} d={config.model.d_model} L={config.model.num_layers}"
    dtype = "bf16" if device == "cuda" else "fp32"
    common = dict(bench="train_step", name=name, provider="compile" if args.compile else "triton", shape=shape,
                  dtype=dtype, peak_tflops=peak / 1e12 if peak else None)
    out = [rows.make_row(env, variant="step", mode="fwd+bwd", ms=ms, tflops=tflops,
                         pct_peak=100 * tflops * 1e12 / peak if peak else None,
                         pct_ceiling=100 * tflops / ceiling if ceiling else None,
                         peak_mem_gb=timing.peak_memory_gb(device), examples_per_second=args.batch / ms * 1e3,
                         **common)]
    if args.presets and gpu is not None:  # the cost model knows this GPU: its prediction beside the measurement
        predicted = cost.predict(config, gpu, report=report).step_seconds * 1e3
        out.append(rows.make_row(env, variant="step", mode="fwd+bwd", ms=predicted,
                                 tflops=report.training / predicted / 1e9,
                                 examples_per_second=args.batch / predicted * 1e3,
                                 **{**common, "provider": "cost-model"}))
        print(f"{name}: predicted {predicted:.3f} ms, measured {ms:.3f} ms ({predicted / ms - 1:+.0%})",
              file=sys.stderr)
    by_module = report.by_module()
    for key, mod_ms in module_breakdown(getattr(model, "_orig_mod", model), batch, device, autocast).items():
        mod_tflops = by_module[key]["forward"] / mod_ms / 1e9 if mod_ms else 0.0
        out.append(rows.make_row(env, variant=f"module:{key}", mode="fwd", ms=mod_ms, tflops=mod_tflops,
                                 pct_peak=100 * mod_tflops * 1e12 / peak if peak else None,
                                 pct_ceiling=100 * mod_tflops / ceiling if ceiling else None, **common))
    print(f"{name}: {ms:.2f} ms/step, {args.batch / ms * 1e3:,.0f} examples/s, {tflops:.1f} TFLOP/s"
          + (f", MFU {100 * tflops * 1e12 / peak:.1f}%" if peak else "")
          + f", {report.train_flops_per_example / 1e9:.3f} GFLOP/example", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=rows.DEFAULT_DIR / "train_step.csv")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--tiny", action="store_true", help="a tiny shape for a CPU smoke run")
    parser.add_argument("--presets", action="store_true",
                        help="every shipped preset on its own workload, with the cost model's prediction")
    args = parser.parse_args(argv)
    if args.tiny:
        args.batch = min(args.batch, 16)
    env = rows.environment()
    spec = hardware.detect() if args.device == "cuda" else hardware.UNKNOWN
    peak = None if spec == hardware.UNKNOWN else spec.bf16_flops
    gpu = None if spec == hardware.UNKNOWN else spec.aliases[0]
    ceiling = ceiling_tflops(args.device)
    results = []
    if args.presets:
        for name in preset_names():
            config = KunlunConfig.preset(name)
            args.batch = config.workload.batch_size if not args.tiny else min(16, config.workload.batch_size)
            rows.append_rows(args.csv, bench(name, config, args, env, peak, ceiling, gpu))
        return 0
    configs = production_configs(args.batch, args.tiny)
    for name, config in configs.items():
        # appended per model: a run stopped at its time limit keeps what it measured
        results += bench(name, config, args, env, peak, ceiling)
        rows.append_rows(args.csv, [r for r in results if r["name"] == name])
    steps = [r for r in results if r["variant"] == "step"]
    if len(steps) == 2 and steps[0]["pct_peak"] and steps[1]["pct_peak"]:
        ratio = float(steps[0]["pct_peak"]) / float(steps[1]["pct_peak"])
        print(f"MFU ratio Kunlun / InterFormer: {ratio:.2f} (paper: 37/17 = 2.18)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
