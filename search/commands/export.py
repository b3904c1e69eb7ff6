"""`kunlun export DIR (--trial N | --pick knee | --pick best-ne) [-o FILE]`: a trial's config as YAML that
rebuilds the exact model (`kunlun flops FILE` gives the trial's recorded FLOPs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kunlun.search.cli import UsageError

HELP = "export a trial's config as YAML"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="a study folder")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, help="Optuna trial number")
    which.add_argument("--pick", choices=("knee", "best-ne"), help="knee of the front, or the lowest NE")
    parser.add_argument("-o", "--output", type=Path, help="default: DIR/configs/trial-N.yaml")


def run(args: argparse.Namespace) -> int:
    from kunlun.model.config import KunlunConfig
    from kunlun.model.yamlio import load_yaml_text
    from kunlun.search.checks import check_output_file, check_study_folders, make_folder
    from kunlun.search.front import groups, knee, pareto_front
    from kunlun.search.provenance import provenance
    from kunlun.search.store import StudyInfo, load_study, trial_status

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
    config = KunlunConfig.from_dict(load_yaml_text(trial.user_attrs["config_yaml"]))
    config.provenance = provenance(info, trial, config)
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
