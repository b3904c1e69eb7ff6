"""`kunlun export DIR (--trial N | --pick knee | --pick best-ne [--reeval K --top T --by mean|bound]) [-o FILE]`:
a trial's config as YAML that rebuilds the exact model (`kunlun flops FILE` gives the trial's recorded FLOPs).

`--reeval K` (with `--pick best-ne`) retrains the `--top` best trials with K more seeds each, on the split the study
chose on, and picks by the mean NE over the K + 1 seeds or by the upper end of its 95% interval; the NEs are kept in
DIR/reeval/trial-N.json (a rerun trains only what is missing) and in the exported config's provenance."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kunlun.search.errors import UsageError
from kunlun.search.reeval import RULES

HELP = "export a trial's config as YAML"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="a study folder")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, help="Optuna trial number")
    which.add_argument("--pick", choices=("knee", "best-ne"), help="knee of the front, or the lowest NE")
    parser.add_argument("--reeval", type=int, default=0, metavar="K",
                        help="with --pick best-ne: retrain the --top best trials with K more seeds each and pick by "
                        "--by over the K + 1 seeds (default 0: the single-seed NE)")
    parser.add_argument("--top", type=int, default=3, metavar="T", help="trials --reeval retrains (default 3)")
    parser.add_argument("--by", choices=RULES, default="mean",
                        help="--reeval's rule: mean NE, or bound: the upper end of its 95%% interval (default mean)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar for --reeval")
    parser.add_argument("-o", "--output", type=Path, help="default: DIR/configs/trial-N.yaml")


def run(args: argparse.Namespace) -> int:
    from kunlun.model.config import KunlunConfig
    from kunlun.model.yamlio import load_yaml_text
    from kunlun.search.checks import at_least, check_output_file, check_study_folders, make_folder
    from kunlun.search.front import groups, knee, pareto_front
    from kunlun.search.provenance import provenance
    from kunlun.search.store import StudyInfo, load_study, trial_status

    at_least("--reeval", args.reeval, 0)
    at_least("--top", args.top, 1)
    if args.reeval and args.pick != "best-ne":
        raise UsageError("--reeval ranks trials by NE: use it with --pick best-ne")
    if args.output is not None:
        check_output_file(args.output, "-o")
    folders = check_study_folders(args.dir)
    if len(folders) != 1:
        raise UsageError(f"{args.dir} holds {len(folders)} studies: export from one study folder")
    info = StudyInfo.read(folders[0])
    if args.trial is not None:
        trials = {t.number: t for t in load_study(folders[0], info).get_trials(deepcopy=False)}
        trial = trials.get(args.trial)
        if trial is None:
            raise UsageError(f"--trial {args.trial}: no such trial (trials 0..{len(trials) - 1})")
        if trial_status(trial) != "complete":
            raise UsageError(f"--trial {args.trial} is {trial_status(trial)}: only complete, feasible trials "
                             "have a config to export")
    else:
        # one front over the whole study: a pick chooses among families too
        gs = groups(folders[0])
        x_axis = gs[0].x_axis if gs else "train_flops_per_example"
        front = pareto_front([ft for g in gs for ft in g.trials], x_axis)
        if not front:
            raise UsageError(f"{args.dir}: no complete feasible trial to pick from")
        if args.pick == "best-ne":
            trial = min((t for _, t in front), key=lambda t: t.user_attrs["ne"])
        else:
            trial = knee(front, x_axis)[1]
    reeval = None
    if args.reeval:
        ranked = sorted((t for g in gs for _, t in g.feasible()), key=lambda t: t.user_attrs["ne"])
        trial, reeval = _reeval_pick(ranked[:args.top], args, folders[0])
    config = KunlunConfig.from_dict(load_yaml_text(trial.user_attrs["config_yaml"]))
    config.provenance = provenance(info, trial, config)
    if reeval is not None:
        config.provenance["reeval"] = reeval
    out = args.output or folders[0] / "configs" / f"trial-{trial.number}.yaml"
    flag = "-o" if args.output is not None else "the default -o"
    check_output_file(out, flag)
    make_folder(out.parent, flag)
    try:
        config.to_yaml(out)
    except OSError as e:
        raise UsageError(f"{flag}: cannot write {out} ({e.strerror or e})") from None
    print(f"kunlun export: trial {trial.number} (NE {trial.user_attrs['ne']:.5f}) -> {out}", file=sys.stderr)
    print(out)
    return 0


def _reeval_pick(candidates: list, args: argparse.Namespace, folder: Path) -> tuple:
    """The candidate with the lowest score over its own seed and --reeval more; the NEs for the provenance."""
    from tqdm import tqdm

    from kunlun.search.reeval import mean_ci, reeval_trial, score

    bar = tqdm(total=len(candidates) * args.reeval, desc="reeval", unit="run", file=sys.stderr,
               disable=args.no_progress, dynamic_ncols=True)
    nes = {t.number: reeval_trial(t, args.reeval, folder / "reeval" / f"trial-{t.number}.json", bar.update)
           for t in candidates}
    bar.close()
    best = min(candidates, key=lambda t: (score(nes[t.number], args.by), t.user_attrs["ne"]))
    trials = {}
    for t in candidates:
        mean, half = mean_ci(list(nes[t.number].values()))
        trials[t.number] = {"seeds": list(nes[t.number]), "ne": list(nes[t.number].values()), "ne_mean": mean,
                            "ne_ci": [mean - half, mean + half]}
        print(f"kunlun export: trial {t.number}: NE {mean:.5f} +- {half:.5f} over seeds {list(nes[t.number])}",
              file=sys.stderr)
    return best, {"by": args.by, "k": args.reeval, "top": args.top, "trials": trials}
