"""Training-step benchmark: every preset and the production shape, eager and with fewer launches, with the cost
model's prediction beside each measurement.

Models (`--models`):
- `production`: Kunlun at a production-like shape (per-GPU batch 1024, streams of up to 1,000 events, width 256,
  6 layers, `alternate` CompSkip, windows click 100 / impression 50, GDPA with generated K/V and HSP) and the
  InterFormer baseline (every component every layer, softmax attention, linear PFFN) at the same training FLOPs
  per example within MATCH_TOLERANCE (its depth and kv length chosen for that; the shape column records both);
- `presets`: every shipped preset on its own workload (batch and stream lengths);
- or a comma-separated list of those names.

Launch modes (`--modes`, the cost model's `workload.launch`): `eager`; `compile` (torch.compile of the loss,
inductor's fused kernels, no graphs); `graphs` (torch.compile mode="reduce-overhead": every graph-break-free
segment of forward and backward replays as a CUDA graph; the model's data-dependent lengths break the graph at each
stream's start, so this is the most of the step that can be a graph without changing the model). Both need CUDA and
are skipped elsewhere. bf16 autocast and fused AdamW on CUDA.

Per model and mode, one row (bench=train_step, variant=step, provider=mode): the median step time over back-to-back
steps (`ms`), examples/s, TFLOP/s from count_flops on the very batch, MFU against the datasheet dense bf16 peak
(`pct_peak`) and against the measured GEMM ceiling, peak memory, `host_ms` (the median wall time of the step call
right after a synchronize: the CPU time to issue a step, whatever the device does) and `predicted_ms` (the cost
model in that launch mode, on the GPU the rows were measured on). In eager mode a forward per-module breakdown follows
(variant=module:<key>, mode=fwd; profiler ranges named by DESIGN.md's module keys; backward kernels run outside those
ranges). Rows are appended per model and mode, so a run stopped at its time limit keeps what it measured.

    KUNLUN_GDPA_AUTOTUNE=off python benchmarks/train_step.py --models production,presets --modes eager,graphs \
        --csv $OUT/train_step.csv
    python benchmarks/train_step.py --tiny --device cpu --csv /tmp/t.csv      # CPU smoke run (not a result)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import re
import statistics
import sys
import time
from collections.abc import Callable
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

PRODUCTION = ("kunlun-production", "interformer-production")
MODES = ("eager", "compile", "graphs")
MATCH_TOLERANCE = 0.05  # Kunlun and InterFormer training FLOPs per example, relative
WARMUP_STEPS = 3  # the first compiles Triton kernels (and, for compile/graphs, the model)
TIMED_STEPS = 10
HOST_STEPS = 5


def production_configs(batch: int, tiny: bool) -> dict[str, KunlunConfig]:
    """Kunlun at the production-like shape and the InterFormer baseline matched to it in training FLOPs."""
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

    def interformer(layers: int, kv_len: int) -> tuple[float, KunlunConfig]:
        inter = KunlunConfig.preset("interformer-small")
        inter.model.d_model, inter.model.embedding_dim, inter.model.num_layers = d, m.embedding_dim, layers
        inter.model.summary_tokens = 8
        inter.model.interaction = copy.deepcopy(m.interaction)
        for name in inter.model.streams:
            s, k = inter.model.streams[name], m.streams[name]
            s.d, s.heads, s.kv_len, s.summary_tokens, s.max_len = k.d, k.heads, kv_len, 8, max_len
        inter.workload = copy.deepcopy(base.workload)
        return abs(count_flops(inter).train_flops_per_example / target - 1), inter

    # depth sets the coarse match, then the kv length of InterFormer's linear PFFN the fine one
    layers = min(range(1, 9), key=lambda n: interformer(n, 8)[0])
    best = min((interformer(layers, kv) for kv in (4, 8, 16, 32, 64, 128)), key=lambda t: t[0])
    if best[0] > MATCH_TOLERANCE:
        raise RuntimeError(f"no InterFormer kv length at depth {layers} within {MATCH_TOLERANCE:.0%} of Kunlun's "
                           f"training FLOPs per example (closest {best[0]:.1%})")
    return {"kunlun-production": kunlun, "interformer-production": best[1]}


def config_for(name: str, batch: int) -> KunlunConfig:
    """The config a train_step row named `name` with batch `batch` measured (rows carry names, not configs)."""
    if name in PRODUCTION:
        return production_configs(batch, tiny=False)[name]
    config = KunlunConfig.preset(name)
    config.workload.batch_size = batch
    return config


def batch_of(shape: str) -> int:
    """The batch size of a row's `shape` ("B=1024 d=256 ...")."""
    m = re.search(r"\bB=(\d+)", shape)
    if not m:
        raise ValueError(f"shape {shape!r} names no batch (B=...)")
    return int(m.group(1))


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


def autocast(device: str):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()


def module_breakdown(model: KunlunModel, batch, device: str) -> dict[str, float]:
    """Forward milliseconds per module key (device time on CUDA, CPU time otherwise)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof, autocast(device):
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


def training_step(model: KunlunModel, batch, mode: str, device: str) -> Callable[[], None]:
    """One optimizer step on `batch` in a launch mode."""
    loss_fn = model.loss
    if mode == "compile":
        loss_fn = torch.compile(model.loss, dynamic=False)
    elif mode == "graphs":
        loss_fn = torch.compile(model.loss, mode="reduce-overhead", dynamic=False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")

    def step():
        if mode == "graphs":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs may be overwritten
        with autocast(device):
            loss = loss_fn(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step_and_host_ms(step: Callable[[], None], device: str, steps: int, host_steps: int) -> tuple[float, float]:
    """(median step ms over back-to-back steps, median ms to issue one step after a synchronize).

    Back to back, the host runs ahead of the device as it would in training, so a host-bound step shows its host
    time and a device-bound one its device time. Each step's span is timed by CUDA events on the device's clock
    (wall clock on CPU, where the host is the device)."""
    _sync(device)
    if device == "cuda":
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(steps)]
        for start, end in events:
            start.record()
            step()
            end.record()
        torch.cuda.synchronize()
        step_ms = statistics.median(s.elapsed_time(e) for s, e in events)
    else:
        walls = []
        for _ in range(steps):
            t = time.perf_counter()
            step()
            walls.append(1e3 * (time.perf_counter() - t))
        step_ms = statistics.median(walls)
    host = []
    for _ in range(host_steps):
        _sync(device)
        t = time.perf_counter()
        step()
        host.append(1e3 * (time.perf_counter() - t))
    _sync(device)
    return step_ms, statistics.median(host)


def bench(name: str, config: KunlunConfig, mode: str, args, env, spec, ceiling) -> list[dict]:
    device, batch_size = args.device, config.workload.batch_size
    torch.manual_seed(0)
    model = KunlunModel(config).to(device)
    batch = make_batch(config, batch_size, device)
    step = training_step(model, batch, mode, device)
    for _ in range(WARMUP_STEPS if not args.tiny else 1):
        step()
    timing.reset_peak_memory(device)
    ms, host_ms = step_and_host_ms(step, device, TIMED_STEPS if not args.tiny else 1,
                                   HOST_STEPS if not args.tiny else 1)
    report = count_flops(config, batch)
    tflops = report.training / ms / 1e9
    peak = None if spec == hardware.UNKNOWN else spec.bf16_flops
    predicted = None
    if spec != hardware.UNKNOWN:
        predicted = 1e3 * cost.predict(config, spec.aliases[0], report=report, launch=mode).step_seconds
    shape = (f"B={batch_size} d={config.model.d_model} L={config.model.num_layers} "
             f"GF/ex={report.train_flops_per_example / 1e9:.4g}")
    common = dict(bench="train_step", name=name, provider=mode, shape=shape,
                  dtype="bf16" if device == "cuda" else "fp32", peak_tflops=peak / 1e12 if peak else None)
    out = [rows.make_row(env, variant="step", mode="fwd+bwd", ms=ms, tflops=tflops,
                         pct_peak=100 * tflops * 1e12 / peak if peak else None,
                         pct_ceiling=100 * tflops / ceiling if ceiling else None,
                         peak_mem_gb=timing.peak_memory_gb(device), examples_per_second=batch_size / ms * 1e3,
                         host_ms=host_ms, predicted_ms=predicted, **common)]
    if mode == "eager" and not args.no_breakdown:
        by_module = report.by_module()
        for key, mod_ms in module_breakdown(model, batch, device).items():
            mod_tflops = by_module[key]["forward"] / mod_ms / 1e9 if mod_ms else 0.0
            out.append(rows.make_row(env, variant=f"module:{key}", mode="fwd", ms=mod_ms, tflops=mod_tflops,
                                     pct_peak=100 * mod_tflops * 1e12 / peak if peak else None,
                                     pct_ceiling=100 * mod_tflops / ceiling if ceiling else None, **common))
    print(f"{name} [{mode}]: {ms:.3f} ms/step (host {host_ms:.3f} ms"
          + (f", predicted {predicted:.3f} ms, {predicted / ms - 1:+.0%}" if predicted else "") + "), "
          f"{batch_size / ms * 1e3:,.0f} examples/s, {tflops:.2f} TFLOP/s"
          + (f", MFU {100 * tflops * 1e12 / peak:.2f}%" if peak else "")
          + f", {report.train_flops_per_example / 1e9:.4g} GFLOP/example", file=sys.stderr, flush=True)
    return out


def model_configs(names: list[str], args) -> dict[str, KunlunConfig]:
    out: dict[str, KunlunConfig] = {}
    for name in names:
        if name == "production":
            configs = production_configs(args.batch, args.tiny)
            kunlun, inter = (count_flops(c).train_flops_per_example for c in configs.values())
            print(f"InterFormer / Kunlun training FLOPs per example: {inter / kunlun:.4f} "
                  f"({inter / 1e9:.4g} / {kunlun / 1e9:.4g} GFLOP)", file=sys.stderr, flush=True)
            out.update(configs)
        elif name == "presets":
            out.update({p: KunlunConfig.preset(p) for p in preset_names()})
        else:
            out[name] = KunlunConfig.preset(name)
    if args.tiny:  # the preset workloads' batches are production-sized: a smoke run keeps them small
        for config in out.values():
            config.workload.batch_size = min(config.workload.batch_size, args.batch)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=rows.DEFAULT_DIR / "train_step.csv")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="production",
                        help="comma-separated: production, presets, or preset names (default production)")
    parser.add_argument("--modes", default="eager", help=f"comma-separated of {', '.join(MODES)} (default eager)")
    parser.add_argument("--batch", type=int, default=1024, help="the production shape's per-GPU batch")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the eager per-module profile")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes for a CPU smoke run")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    names = args.models.split(",")
    known = {"production", "presets", *preset_names()}
    bad = [m for m in modes if m not in MODES] + [n for n in names if n not in known]
    if bad:
        print(f"error: --modes/--models: unknown {', '.join(bad)} (modes: {', '.join(MODES)}; models: "
              f"{', '.join(sorted(known))})", file=sys.stderr)
        return 2
    if args.tiny:
        args.batch = min(args.batch, 16)
    configs = model_configs(names, args)
    env = rows.environment()
    spec = hardware.detect() if args.device == "cuda" else hardware.UNKNOWN
    ceiling = ceiling_tflops(args.device)
    failed = 0
    for mode in modes:
        if mode != "eager" and args.device != "cuda":
            print(f"{mode}: skipped (needs CUDA)", file=sys.stderr)
            continue
        for name, config in configs.items():
            try:
                got = bench(name, config, mode, args, env, spec, ceiling)
            except Exception as e:  # one model failing (out of memory, a compile error) must not cost the others
                failed += 1
                print(f"{name} [{mode}]: failed: {type(e).__name__}: {str(e)[:400]}", file=sys.stderr, flush=True)
                torch._dynamo.reset()
                continue
            rows.append_rows(args.csv, got)
            if mode != "eager":
                torch._dynamo.reset()  # every model compiles afresh; the cache limit is per code object
    measured = rows.read_rows(args.csv) if args.csv.is_file() else []
    steps = {(r["name"], r["provider"]): r for r in measured if r["variant"] == "step"}  # the newest per key
    for mode in modes:
        k, i = steps.get(("kunlun-production", mode)), steps.get(("interformer-production", mode))
        if k and i and k["pct_peak"] and i["pct_peak"]:
            print(f"[{mode}] MFU Kunlun {k['pct_peak']}% / InterFormer {i['pct_peak']}% = "
                  f"{float(k['pct_peak']) / float(i['pct_peak']):.2f} (paper: 37/17 = 2.18)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
