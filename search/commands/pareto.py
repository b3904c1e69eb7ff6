"""`kunlun pareto DIR [--format table|json|csv] [--reeval K]`: the front of a study folder or a folder of
studies (grouped by budget and family); writes pareto.png and pareto.html into DIR."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from kunlun.search.errors import UsageError
from kunlun.search.front import ROW_KEYS, groups, row, worse_than_base_rate
from kunlun.search.store import finite

HELP = "Pareto front of a study or a folder of studies"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="a study folder or a folder of study folders")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--reeval", type=int, default=0, metavar="K",
                        help="retrain every front config with K seeds; report mean NE and its 95%% CI")
    parser.add_argument("--no-plots", action="store_true", help="do not write pareto.png / pareto.html")


def run(args: argparse.Namespace) -> int:
    if args.reeval < 0:
        raise UsageError(f"--reeval must be >= 0, got {args.reeval}")
    from kunlun.search.checks import check_out, check_study_folders

    check_study_folders(args.dir)  # study.json and a storage that holds the study, before anything is written
    if not args.no_plots:
        check_out(args.dir, "DIR (where pareto.png and pareto.html go; --no-plots writes nothing)")
    gs = groups(args.dir)
    if not any(g.front for g in gs):
        counts = ", ".join(f"{g.family} @ {g.budget:.4g}: {_counts(g)}" for g in gs) or "no trials"
        raise UsageError(f"{args.dir}: no complete feasible trial, so no front yet ({counts})")
    rows = []
    for g in gs:
        if args.format != "table":  # the table states them once, under its rows; stdout is one document here
            print(f"kunlun pareto: {g.family} @ {g.budget:.4g}: {len(g.front)} on the front; {_counts(g)}",
                  file=sys.stderr)
        for folder, t in g.front:
            r = row(g, folder, t)
            if args.reeval:
                from kunlun.search.reeval import reevaluate

                r.update(reevaluate(t.user_attrs["config_yaml"], args.reeval))
            rows.append(r)
    if not args.no_plots:
        from kunlun.search.plots import write_html, write_png

        try:
            write_png(gs, args.dir / "pareto.png")
            write_html(gs, args.dir / "pareto.html")
        except OSError as e:
            raise UsageError(f"DIR: cannot write the plots into {args.dir} ({e.strerror or e}; --no-plots writes "
                             "nothing)") from None
    keys = list(ROW_KEYS) + (["ne_mean", "ne_ci", "seeds"] if args.reeval else [])
    if args.format == "json":
        print(json.dumps([finite(r) for r in rows], indent=2))
    elif args.format == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()})
    else:
        _table(rows, gs, args.reeval)
    return 0


def _counts(g) -> str:
    c = g.counts()
    return f"{c['complete']} feasible, {c['infeasible']} infeasible, {c['pruned']} pruned, {c['fail']} failed"


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ",".join(f"{k}={_fmt(w)}" for k, w in v.items())
    if isinstance(v, list):
        return "/".join(map(_fmt, v))
    return str(v)


# table headers that say what a number is (the JSON and CSV keep DESIGN.md's names)
HEADERS = {"train_flops_per_example": "train FLOPs/ex", "b200_us_per_example": "predicted B200 us/ex",
           "predicted_mfu": "predicted MFU %", "launch_share": "launch-bound %",
           "seq_share": "seq share"}


def _table(rows: list[dict], gs: list, reeval: int) -> None:
    cols = ["study", "trial", "family", "budget", "ne", "auc", "train_flops_per_example", "b200_us_per_example",
            "predicted_mfu", "launch_share", "seq_share", "compskip", "windows"]
    cols += ["ne_mean", "ne_ci"] if reeval else []
    cells = [[_fmt(r.get(c)) + ("*" if c == "ne" and worse_than_base_rate(r.get(c)) else "") for c in cols]
             for r in rows]
    names = [HEADERS.get(c, c) for c in cols]
    widths = [max([len(c)] + [len(x[i]) for x in cells]) for i, c in enumerate(names)]
    print("  ".join(c.ljust(w) for c, w in zip(names, widths)))
    for x in cells:
        print("  ".join(v.ljust(w) for v, w in zip(x, widths)))
    if any(worse_than_base_rate(r.get("ne")) for r in rows):
        print("# * NE > 1: worse than predicting the base rate")
    for g in gs:
        print(f"# {g.family} @ {g.budget:.4g}: {len(g.front)} on the front; {_counts(g)}")
    if reeval:
        print(_signal(rows))


def _signal(rows: list[dict]) -> str:
    """Whether the front is more than seed noise: its NE span against one config's spread over seeds."""
    from kunlun.search.reeval import pooled_sd

    sd = pooled_sd([[r["ne"], *r["seed_nes"]] for r in rows])
    span = max(r["ne"] for r in rows) - min(r["ne"] for r in rows)
    ratio = f"{span / sd:.1f}x the seed sd" if sd > 0 else "seed sd 0"
    return (f"# signal: the front spans {span:.4f} in NE, {ratio} ({sd:.4f}, pooled over {len(rows)} configs x "
            f"{len(rows[0]['seed_nes']) + 1} seeds)")
