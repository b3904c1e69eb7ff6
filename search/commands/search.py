"""`kunlun search [SPACE] ...`: a budgeted architecture search (DESIGN.md "CLI", "Search semantics")."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path

from kunlun.model.family import FAMILIES
from kunlun.model.yamlio import ConfigError, is_preset_name
from kunlun.search.context import SearchContext
from kunlun.search.errors import UsageError
from kunlun.search.store import STUDY_JSON, StudyInfo, budget_tag, storage_url
from kunlun.search.strategy import SAMPLERS
from kunlun.search.trial import PRICES, objectives
from kunlun.space.space import SearchSpace

HELP = "run a budgeted architecture search (Optuna or Ray Tune)"
DEFAULT_TRIALS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", nargs="?", default="demo", help="space YAML or space preset (default: demo)")
    parser.add_argument("--trials", type=int, help=f"COMPLETE trials to reach (default: {DEFAULT_TRIALS}; "
                        "--dry-run ignores it)")
    parser.add_argument("--budget", help="per training example: FLOPs (2.5e9, 2.5G) or B200 time (40us)")
    parser.add_argument("--data", help="synthetic | movielens:PATH | taobao:PATH (default: the space's)")
    parser.add_argument("--examples", type=int, help="training examples per trial; replaces the space's "
                        "train.epochs (default: the space's)")
    parser.add_argument("--split", choices=("eval", "inner"),
                        help="split trials are evaluated on (default: the space's; real-data presets: inner)")
    parser.add_argument("--family", choices=tuple(FAMILIES),
                        help="search one family only (default: the space's families)")
    parser.add_argument("--backend", choices=("optuna", "ray"), default="optuna")
    parser.add_argument("--address", help="Ray cluster address (default: start a local one)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (optuna backend)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--gpus-per-trial", type=float, default=0.0)
    parser.add_argument("--storage", help="sqlite:///PATH (default: OUT/study.db), journal:PATH, postgresql://...")
    parser.add_argument("--out", type=Path, help="study folder (default: ./results/<study name>)")
    parser.add_argument("--resume", action="store_true", help="continue an existing study up to --trials")
    parser.add_argument("--seed", type=int, help="study seed: data, evaluation set, sampler (default: the space's)")
    parser.add_argument("--sampler", choices=SAMPLERS, default="auto",
                        help="auto: TPE for one objective, NSGA-II for several")
    parser.add_argument("--warm-start", nargs="+", type=Path, default=[], metavar="STUDY",
                        help="study folders (or folders of them) whose best allocations run first (smaller budgets)")
    parser.add_argument("--warm-start-top", type=int, default=3, help="allocations taken from --warm-start (default 3)")
    parser.add_argument("--price", choices=PRICES,
                        help="measured: each trial also records its measured microseconds per example and MFU where "
                        "it trains (a GPU), beside the predicted B200 figures (default: predicted, or what a resumed "
                        "study recorded)")
    parser.add_argument("--dry-run", action="store_true", help="sample the space and report what lands")
    parser.add_argument("--samples", type=int, default=200, help="samples for --dry-run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from kunlun.search.checks import check_search, check_search_args, make_folder

    check_search_args(args)  # every flag, the storage: before anything is loaded or created
    from kunlun.search.training import device_data_choice

    device_data_choice()  # KUNLUN_DEVICE_DATA
    overrides = {k: v for k, v in (("data", args.data), ("budget", args.budget), ("examples", args.examples),
                                   ("seed", args.seed), ("family", args.family), ("split", args.split))
                 if v is not None}
    space = SearchSpace.load(args.space, **overrides)
    if args.dry_run:
        from kunlun.search.dryrun import dry_run

        if args.trials is not None:
            print(f"kunlun search: --dry-run trains nothing: --trials {args.trials} is ignored (--samples "
                  f"{args.samples} allocations are sampled and solved)", file=sys.stderr)
        print(json.dumps(dry_run(space, args.samples, progress=not args.no_progress), indent=2))
        return 0
    args.trials = args.trials or DEFAULT_TRIALS
    check_search(args, space)  # a budget no config meets, a storage that holds the study already
    if args.warm_start:
        from kunlun.search.checks import check_study_folders

        for source in args.warm_start:
            check_study_folders(source)
    spec = space.spec
    name = f"{spec.name}-{budget_tag(spec.budget.amount)}" + (f"-{args.family}" if args.family else "")
    out = (args.out or Path("results") / name).resolve()
    exists = (out / STUDY_JSON).is_file()
    if exists and not args.resume:
        raise UsageError(f"{out} already holds a study: pass --resume to continue it, or choose another --out")
    if args.resume and not exists:
        raise UsageError(f"--resume: {out} holds no study ({STUDY_JSON} missing)")
    if args.resume:
        info = StudyInfo.read(out)
        name = info.name
        if info.budget != spec.budget.amount:
            raise UsageError(f"--resume: {out} is a study at budget {info.budget:.4g}, not {spec.budget.amount:.4g}")
        if info.data != space.base.train.data:  # one front must not mix trials of two data sets
            raise UsageError(f"--resume: {out} is a study on {info.data!r}, not {space.base.train.data!r} (--data or "
                             "the space's data changed): choose another --out, or remove the old study")
    ctx = SearchContext(space=args.space if is_preset_name(args.space) else str(Path(args.space).resolve()),
                        overrides=overrides, out=out, storage=storage_url(args.storage, out) if not args.resume
                        else info.storage, study_name=name, trials=args.trials, objectives=objectives(),
                        sampler=args.sampler, seed=spec.seed)
    created = not out.exists()
    make_folder(out, "--out")
    try:
        study = _open_study(ctx, space, args.resume)
    except Exception:
        if created:
            shutil.rmtree(out, ignore_errors=True)  # nothing half-written
        raise
    if args.warm_start and not args.resume:
        from kunlun.search.warmstart import warm_start

        n = warm_start(study, args.warm_start, space, args.warm_start_top)
        print(f"kunlun search: warm start: {n} allocation(s) from {', '.join(map(str, args.warm_start))} run first",
              file=sys.stderr)
    ctx.price = args.price or study.user_attrs.get("price", "predicted")
    study.set_user_attr("price", ctx.price)
    StudyInfo(name=name, storage=ctx.storage, space=ctx.space, budget=spec.budget.amount,
              budget_kind=spec.budget.kind, families=list(spec.params.family), objectives=ctx.objectives,
              seed=spec.seed, trials=args.trials, data=space.base.train.data, backend=args.backend,
              sampler=args.sampler, overrides=overrides).write(out)
    from kunlun.search.progress import Progress

    progress = Progress(args.trials, enabled=not args.no_progress)
    progress.update(study)
    try:
        if args.backend == "optuna":
            from kunlun.search.local import run_local

            run_local(ctx, study, args.workers, progress)
        else:
            from kunlun.search.ray_backend import run_ray

            run_ray(ctx, args.address, args.cpus_per_trial, args.gpus_per_trial, progress)
    finally:
        progress.update(study)
        progress.close()
        from kunlun.search.store import write_trials_csv

        write_trials_csv(study, out)
    _summary(study, out)
    from kunlun.search.store import failing

    reason = failing(study)
    if reason is not None:
        print(f"kunlun search: stopped: every trial failed; the last with {reason} (see {out}/trials/*/log.txt)",
              file=sys.stderr)
        return 1
    return 0


def _open_study(ctx: SearchContext, space: SearchSpace, resume: bool):
    import optuna

    from kunlun.search.store import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = open_storage(ctx.storage)
    except Exception as e:  # a bad URL or an unreachable server is the user's input
        raise ConfigError("--storage", f"cannot open {ctx.storage!r}: {e}") from None
    study = optuna.create_study(study_name=ctx.study_name, storage=storage, directions=ctx.directions,
                                load_if_exists=resume)
    with warnings.catch_warnings():  # experimental in Optuna 5; optuna-dashboard names the objectives with it
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(ctx.objectives)
    spec = space.spec
    for key, value in {"budget": spec.budget.amount, "budget_kind": spec.budget.kind,
                       "families": list(spec.params.family), "space": ctx.space, "seed": spec.seed,
                       "objectives": ctx.objectives, "data": space.base.train.data}.items():
        study.set_user_attr(key, value)
    if resume:
        from optuna.trial import TrialState

        from kunlun.search.store import fail_stale, folder_lock, heartbeat

        with folder_lock(ctx.out):
            retried = fail_stale(study, owners=True)
        if retried:
            print(f"kunlun search: trial(s) {', '.join(map(str, retried))} interrupted (no heartbeat, or the process "
                  "that ran them is gone): failed, and retried before anything new is sampled", file=sys.stderr)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if running:  # another live search's on this host, or one on another host that the heartbeat will tell
            print(f"kunlun search: {len(running)} trial(s) RUNNING in {ctx.study_name}, by live processes or on other "
                  f"hosts: left alone; those of a search that is gone fail once {heartbeat()[1]} s pass without a "
                  "heartbeat, and are retried", file=sys.stderr)
    return study


def _summary(study, out: Path) -> None:
    from kunlun.search.store import trial_status

    trials = study.get_trials(deepcopy=False)
    status = [trial_status(t) for t in trials]
    counts = {k: status.count(s) for k, s in (("feasible", "complete"), ("infeasible", "infeasible"),
                                              ("pruned", "pruned"), ("failed", "fail"))}
    done = [t for t, s in zip(trials, status) if s == "complete"]
    best = min(done, key=lambda t: t.user_attrs["ne"]) if done else None
    print(f"kunlun search: {out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()), file=sys.stderr)
    if best is not None:
        print(f"best NE {best.user_attrs['ne']:.5f} (trial {best.number}); study in {out}")
