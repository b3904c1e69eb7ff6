"""The one helper for benchmark result rows (DESIGN.md, "Results"): build, append, merge. Rows are never
overwritten; a file whose header is not exactly COLUMNS is refused rather than silently mixed, except a file
written before the last four columns existed (PREVIOUS_COLUMNS): it reads with those empty, and the next append
gives it the current header, every row's values unchanged.

    python benchmarks/rows.py merge SRC DST    # SRC: a CSV brought back from a GPU machine; DST: a CSV or a folder
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

COLUMNS = ("date", "commit", "bench", "name", "variant", "mode", "provider", "shape", "dtype", "ms", "tflops",
           "peak_tflops", "pct_peak", "pct_ceiling", "peak_mem_gb", "examples_per_second", "gpu_name", "sm_count",
           "cuda", "torch", "triton", "host_ms", "predicted_ms", "pct_roofline", "executed_tflops")
# host_ms, predicted_ms (train_step rows): the host time to issue a step, and the cost model's prediction beside it.
# pct_roofline: of min(measured matmul ceiling, FLOPs per minimum byte x measured copy bandwidth);
# executed_tflops: the FLOPs the kernel runs (e.g. 3.5x forward for our backward) per second, next to `tflops`'
# model convention (2.5x). Files from before these four have the header below.
PREVIOUS_COLUMNS = COLUMNS[:-4]
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / "results" / "bench"


def _commit() -> str:
    # A GPU machine may get the working tree with a stale .git: the caller can name the commit it sent.
    if os.environ.get("KUNLUN_BENCH_COMMIT"):
        return os.environ["KUNLUN_BENCH_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def environment() -> dict[str, str]:
    """The columns that describe where and when a row was measured."""
    import torch
    import triton

    env = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "commit": _commit(), "torch": torch.__version__, "triton": triton.__version__,
           "cuda": torch.version.cuda or "", "gpu_name": "cpu", "sm_count": ""}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        env.update(gpu_name=props.name, sm_count=str(props.multi_processor_count))
    return env


def make_row(env: dict[str, str], **fields) -> dict[str, str]:
    """One row: `env` (from environment()) plus the measured fields; unknown names are an error, missing ones
    stay empty. Floats are written with 4 significant digits."""
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise KeyError(f"not result columns: {sorted(unknown)}")
    row = dict.fromkeys(COLUMNS, "")
    row.update(env)
    for key, value in fields.items():
        row[key] = "" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
    return row


def read_rows(path: Path) -> list[dict[str, str]]:
    """Every row of a result CSV, with all of COLUMNS (a legacy file's missing columns empty)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        _check_header(path, reader.fieldnames)
        return [{**dict.fromkeys(COLUMNS, ""), **row} for row in reader]


def _check_header(path: Path, header) -> tuple[str, ...]:
    header = tuple(header or ())
    if header not in (COLUMNS, PREVIOUS_COLUMNS):
        raise ValueError(f"{path}: header {list(header)} is not the result columns {list(COLUMNS)}")
    return header


def _upgrade(path: Path) -> None:
    """Rewrite a PREVIOUS_COLUMNS file with the current header (new columns empty), atomically."""
    old = read_rows(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(old)
    tmp.replace(path)


def append_rows(path: str | Path, rows: Iterable[dict[str, str]]) -> int:
    """Append rows to `path`, writing the header first if the file is new or empty. Returns rows written."""
    path = Path(path)
    rows = list(rows)
    for row in rows:
        if tuple(row) != COLUMNS:
            raise ValueError(f"row keys {list(row)} are not the result columns")
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as f:
            header = _check_header(path, next(csv.reader(f), None))
        if header != COLUMNS:
            _upgrade(path)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def merge(src: str | Path, dst: str | Path) -> int:
    """Append the rows of `src` that `dst` does not hold yet (merging twice adds nothing). `dst` may be a folder:
    the rows go to the file of the same name in it. Returns rows added."""
    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        dst = dst / src.name
    incoming = read_rows(src)
    present = {tuple(r.values()) for r in read_rows(dst)} if dst.exists() and dst.stat().st_size else set()
    fresh = [r for r in incoming if tuple(r.values()) not in present]
    return append_rows(dst, fresh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("merge", help="append a CSV's new rows to DST (a CSV, or a folder such as results/bench)")
    m.add_argument("src", nargs="+", type=Path)
    m.add_argument("dst", type=Path)
    args = parser.parse_args(argv)
    for src in args.src:
        added = merge(src, args.dst)
        print(f"{src}: {added} new rows -> {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
