"""`kunlun scaling SPACE (--budgets B1,B2,... | --num-budgets K --budget-step 4x) [--trials N] [--target B]
[--from DIR...] --out DIR`: one study per budget and family (a folder of studies), then NE-vs-compute fits."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

from kunlun.search.cli import UsageError

HELP = "scaling-law fits over budgets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", help="space YAML or space preset")
    parser.add_argument("--budgets", help="comma-separated budgets, e.g. 1M,4M,16M")
    parser.add_argument("--num-budgets", type=int, help="K budgets ending at the space's budget")
    parser.add_argument("--budget-step", default="4x", help="factor between consecutive budgets (default 4x)")
    parser.add_argument("--trials", type=int, default=10, help="COMPLETE trials per budget and family")
    parser.add_argument("--target", help="also predict each family's NE at this budget")
    parser.add_argument("--from", dest="sources", nargs="+", type=Path, default=[],
                        help="existing study folders (or folders of them) to reuse")
    parser.add_argument("--out", type=Path, required=True, help="the folder of studies")
    parser.add_argument("--data")
    parser.add_argument("--examples", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--backend", choices=("optuna", "ray"), default="optuna")
    parser.add_argument("--address")
    parser.add_argument("--workers", type=int, default=1)


def _budgets(args: argparse.Namespace, space_budget: float) -> list[float]:
    from kunlun.space.budget import parse_budget

    if args.budgets and args.num_budgets:
        raise UsageError("give --budgets or --num-budgets, not both")
    if args.budgets:
        return sorted(parse_budget(b.strip(), "--budgets", "flops") for b in args.budgets.split(","))
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
    from kunlun.search.cli import main as kunlun
    from kunlun.search.scaling import fit, report, write_png
    from kunlun.search.store import budget_tag
    from kunlun.space.budget import parse_budget
    from kunlun.space.space import SearchSpace

    space = SearchSpace.load(args.space, **{k: v for k, v in (("data", args.data), ("examples", args.examples),
                                                               ("seed", args.seed)) if v is not None})
    budgets = _budgets(args, space.spec.budget.amount)
    target = parse_budget(args.target, "--target", "flops") if args.target else None
    if not budgets and not args.sources:
        raise UsageError("nothing to fit: give --budgets, --num-budgets or --from")
    points = _points(args.sources)
    for budget in budgets:
        for family in space.spec.params.family:
            if (budget, family) in points:
                continue  # reused from --from
            folder = args.out / f"{space.spec.name}-{budget_tag(budget)}-{family}"
            argv = ["search", args.space, "--budget", repr(budget), "--family", family, "--trials",
                    str(args.trials), "--out", str(folder), "--backend", args.backend, "--workers", str(args.workers)]
            argv += [x for flag, v in (("--data", args.data), ("--examples", args.examples), ("--seed", args.seed),
                                       ("--address", args.address)) if v is not None for x in (flag, str(v))]
            if (folder / "study.json").is_file():
                argv.append("--resume")
            with contextlib.redirect_stdout(sys.stderr):  # stdout carries the one JSON document
                code = kunlun(argv)
            if code != 0:
                return code
    if budgets:
        for key, point in _points([args.out]).items():
            points.setdefault(key, point)
    fits = {}
    for family in sorted({f for _, f in points}):
        pts = [points[k] for k in sorted(points) if k[1] == family]
        fits[family] = fit(pts)
    if not fits:
        raise UsageError("no study has a complete feasible trial to fit")
    args.out.mkdir(parents=True, exist_ok=True)
    result = report(fits, target)
    (args.out / "scaling.json").write_text(json.dumps(_finite(result), indent=2) + "\n")
    write_png(fits, args.out / "scaling.png")
    for name, f in fits.items():
        print(f"kunlun scaling: {name}: eta {f.exponent:.4g} (CI {f.ci}), r2 {f.r2}, {len(f.points)} budgets",
              file=sys.stderr)
    print(json.dumps(_finite(result), indent=2))
    return 0


def _points(sources: list[Path]) -> dict[tuple[float, str], dict]:
    """(budget, family) -> the best feasible trial there, over the given study folders."""
    from kunlun.search.front import groups

    best: dict[tuple[float, str], dict] = {}
    for source in sources:
        for g in groups(source):
            for folder, t in g.feasible():
                ne = t.user_attrs.get("ne")
                key = (g.budget, g.family)
                if ne is not None and math.isfinite(ne) and (key not in best or ne < best[key]["ne"]):
                    best[key] = {"budget": g.budget, "ne": ne, "trial": t.number, "study": Path(folder).name}
    return best


def _finite(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v
