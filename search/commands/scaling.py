"""`kunlun scaling SPACE (--budgets B1,B2,... | --num-budgets K --budget-step 4x) [--trials N] [--target B]
[--repeats K] [--from DIR...] --out DIR`: one study per budget and family (a folder of studies); the best trial of each
retrained with K seeds in all (no new study; the seed NEs kept in scaling.json and reused on a rerun); then the
NE-vs-compute fits and the allocation extrapolation of search/scaling/."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

from kunlun.search.errors import UsageError, run_reported
from kunlun.search.store import finite
from kunlun.search.trial import PRICES

HELP = "scaling-law fits over budgets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", help="space YAML or space preset")
    parser.add_argument("--budgets", help="comma-separated budgets, e.g. 1M,4M,16M")
    parser.add_argument("--num-budgets", type=int, help="K budgets ending at the space's budget")
    parser.add_argument("--budget-step", default="4x", help="factor between consecutive budgets (default 4x)")
    parser.add_argument("--trials", type=int, default=10, help="COMPLETE trials per budget and family")
    parser.add_argument("--target", help="also extrapolate each family's NE and best allocation (sequence share, "
                        "schedule, windows) to this budget, with their uncertainty")
    parser.add_argument("--warm-start", action="store_true",
                        help="start each budget's study from the best allocations of the smaller budgets")
    parser.add_argument("--repeats", type=int, default=3, metavar="K",
                        help="seeds per budget and family for the best trial, the original one included (default 3; "
                        "1: no retraining); kept in scaling.json and reused when rerun on the same --out")
    parser.add_argument("--from", dest="sources", nargs="+", type=Path, default=[],
                        help="existing study folders (or folders of them) to reuse")
    parser.add_argument("--out", type=Path, required=True, help="the folder of studies")
    parser.add_argument("--data")
    parser.add_argument("--examples", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--backend", choices=("optuna", "ray"), default="optuna")
    parser.add_argument("--address")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--price", choices=PRICES,
                        help="as kunlun search --price: measured records each trial's measured time per example")


def _budgets(args: argparse.Namespace, space_budget: float) -> list[float]:
    from kunlun.search.checks import check_budget_flag

    if args.budgets and args.num_budgets:
        raise UsageError("give --budgets or --num-budgets, not both")
    if args.budgets:
        return sorted(check_budget_flag("--budgets", b.strip(), "flops") for b in args.budgets.split(","))
    if args.num_budgets is None:
        return []
    if args.num_budgets < 1:
        raise UsageError(f"--num-budgets must be >= 1, got {args.num_budgets}")
    step = args.budget_step.rstrip("x")
    try:
        factor = float(step)
    except ValueError:
        raise UsageError(f"--budget-step: {args.budget_step!r} is not a factor like 4x") from None
    if factor <= 1:
        raise UsageError(f"--budget-step must be > 1, got {args.budget_step}")
    return [space_budget / factor**i for i in reversed(range(args.num_budgets))]


def run(args: argparse.Namespace) -> int:
    from kunlun.search.checks import (
        at_least,
        check_backend,
        check_budget,
        check_budget_flag,
        check_out,
        check_study_folders,
        make_folder,
    )
    from kunlun.search.scaling.fit import fit
    from kunlun.search.scaling.plot import write_png
    from kunlun.search.scaling.report import report, summary
    from kunlun.search.store import budget_tag
    from kunlun.space.space import SearchSpace

    for flag, value, low in (("--trials", args.trials, 1), ("--workers", args.workers, 1),
                             ("--examples", args.examples, 1), ("--seed", args.seed, 0)):
        at_least(flag, value, low)
    check_backend(args)
    check_out(args.out)
    target = check_budget_flag("--target", args.target, "flops") if args.target else None
    overrides = {k: v for k, v in (("data", args.data), ("examples", args.examples), ("seed", args.seed))
                 if v is not None}
    space = SearchSpace.load(args.space, **overrides)
    budgets = _budgets(args, space.spec.budget.amount)
    if not budgets and not args.sources:
        raise UsageError("nothing to fit: give --budgets, --num-budgets or --from")
    for source in args.sources:
        check_study_folders(source)
    # every budget of every family must be reachable before the first study starts (no half-run scaling folder)
    key = "--budgets" if args.budgets else "--num-budgets/--budget-step"
    for family in space.spec.params.family if budgets else ():
        for budget in budgets:  # the space each study will search (the same overrides `kunlun search` gets)
            check_budget(SearchSpace.load(args.space, **overrides, family=family, budget=repr(budget)),
                         f"{key} (family {family})")
    at_least("--repeats", args.repeats, 1)
    trials = _trials(args.sources)
    smaller: dict[str, list[Path]] = {}  # per family, the studies of the budgets already run (ascending)
    for budget in budgets:
        for family in space.spec.params.family:
            if (budget, family) in trials:
                continue  # reused from --from
            folder = args.out / f"{space.spec.name}-{budget_tag(budget)}-{family}"
            argv = [args.space, "--budget", repr(budget), "--family", family, "--trials",
                    str(args.trials), "--out", str(folder), "--backend", args.backend, "--workers", str(args.workers)]
            argv += [x for flag, v in (("--data", args.data), ("--examples", args.examples), ("--seed", args.seed),
                                       ("--address", args.address), ("--price", args.price))
                      if v is not None for x in (flag, str(v))]
            if (folder / "study.json").is_file():
                argv.append("--resume")
            elif args.warm_start and smaller.get(family):
                argv += ["--warm-start", *map(str, smaller[family])]
            smaller.setdefault(family, []).append(folder)
            with contextlib.redirect_stdout(sys.stderr):  # stdout carries the one JSON document
                code = _search(argv)
            if code != 0:
                return code
    if budgets:
        for key, ts in _trials([args.out]).items():
            trials.setdefault(key, ts)
    if not trials:
        raise UsageError("no study has a complete feasible trial to fit")
    points = _repeat(trials, args.repeats, _previous_seeds(args.out / "scaling.json"))
    fits = {}
    for family in sorted({f for _, f in points}):
        fits[family] = fit([points[k] for k in sorted(points) if k[1] == family])
    by_family: dict[str, list[dict]] = {}
    for (_, family), ts in sorted(trials.items()):
        by_family.setdefault(family, []).extend(
            {k: t[k] for k in ("budget", "ne", "params", "study", "trial", "seq_share_range")} for t in ts)
    make_folder(args.out, "--out")
    result = finite(report(fits, target, by_family))
    tmp = args.out / "scaling.json.tmp"  # scaling.json also caches the seed repeats: never leave it half-written
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out / "scaling.json")
    write_png(fits, args.out / "scaling.png", target)
    for line in summary(result):
        print(f"kunlun scaling: {line}", file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0


def _search(argv: list[str]) -> int:
    """`kunlun search ARGV`, reported as that command (its bad input, warnings and interruption)."""
    from kunlun.search.commands import search

    parser = argparse.ArgumentParser(prog="kunlun search")
    search.add_arguments(parser)
    return run_reported("search", lambda: search.run(parser.parse_args(argv)))


def _trials(sources: list[Path]) -> dict[tuple[float, str], list[dict]]:
    """(budget, family) -> its COMPLETE feasible trials with a finite NE, over the given study folders."""
    from kunlun.search.front import groups

    out: dict[tuple[float, str], list[dict]] = {}
    for source in sources:
        for g in groups(source):
            for folder, t in g.feasible():
                ne = t.user_attrs.get("ne")
                if ne is not None and math.isfinite(ne):
                    out.setdefault((g.budget, g.family), []).append(
                        {"budget": g.budget, "family": g.family, "ne": ne, "trial": t.number,
                         "study": Path(folder).name, "params": dict(t.params), "seed": t.user_attrs.get("seed"),
                         "config_yaml": t.user_attrs.get("config_yaml"), "seq_share_range": _range(t, "seq_share")})
    return out


def _range(t, name: str) -> list[float] | None:
    """[low, high] of a trial's numeric Optuna distribution `name` (None when it has none)."""
    d = t.distributions.get(name)
    return [float(d.low), float(d.high)] if hasattr(d, "low") else None


def _repeat(trials: dict[tuple[float, str], list[dict]], repeats: int,
            previous: dict[tuple, dict[int, float]]) -> dict[tuple[float, str], dict]:
    """(budget, family) -> the point of its best trial, retrained with `repeats` seeds in all (NEs reused from
    `previous` where the same trial and seed are there)."""
    from kunlun.search.reeval import repeat_seeds

    def log(msg: str) -> None:
        print(f"kunlun scaling: repeats: {msg}", file=sys.stderr)

    points = {}
    with contextlib.redirect_stdout(sys.stderr):
        for key, ts in sorted(trials.items()):
            best = min(ts, key=lambda t: t["ne"])
            point = {k: best[k] for k in ("budget", "family", "ne", "trial", "study")}
            cached = previous.get((best["study"], best["trial"], best["budget"], best["family"]))
            points[key] = repeat_seeds(point, best["config_yaml"], best["seed"], repeats, cached, log)
    return points


def _previous_seeds(path: Path) -> dict[tuple, dict[int, float]]:
    """(study, trial, budget, family) -> {seed: NE} from an earlier scaling.json in --out (empty when none)."""
    try:
        result = json.loads(path.read_text())
        out = {}
        for family, fam in result["families"].items():
            for p in fam["points"]:
                seeds, nes = p.get("seeds") or [], p.get("ne_seeds") or []
                if len(seeds) == len(nes) and all(isinstance(x, (int, float)) for x in nes):
                    out[(p["study"], p["trial"], p["budget"], family)] = dict(zip(seeds, nes))
        return out
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        print(f"kunlun scaling: {path}: unreadable ({e}): seed repeats are retrained", file=sys.stderr)
        return {}

