"""`kunlun` command line (DESIGN.md, "CLI"). Each command is a module of `kunlun.search.commands` with
`HELP`, `add_arguments(parser)` and `run(args) -> int`; modules are imported only when their command runs, so
`kunlun train|flops|cost` work on a machine without optuna or ray.

Exit codes: 0 success, 2 bad input (one message: file, key path, what is allowed; no traceback), 1 internal error.
Every message is one line; warnings are one line each too (`kunlun CMD: warning: ...`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kunlun.search.errors import one_line, run_reported

COMMANDS = {
    "search": "run a budgeted architecture search (Optuna or Ray Tune)",
    "pareto": "Pareto front of a study or a folder of studies",
    "export": "export a trial's config as YAML",
    "train": "train and evaluate one config",
    "flops": "analytic FLOP/parameter report of a config's workload",
    "cost": "predicted GPU time, QPS and MFU of a config",
    "scaling": "scaling-law fits over budgets",
    "presets": "list model and space presets",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors also exit 2: one line, no traceback
        print(f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _module(name: str):
    return importlib.import_module(f"kunlun.search.commands.{name}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kunlun-search")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="kunlun", description="Find the best Kunlun model for a compute budget.")
    parser.add_argument("--version", action="version", version=f"kunlun {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            try:
                _module(name).add_arguments(p)
            except ModuleNotFoundError as e:
                if e.name != f"kunlun.search.commands.{name}":
                    raise
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else None)
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the command whose flags these are not
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return run_reported(args.command, lambda: _module(args.command).run(args))


if __name__ == "__main__":
    sys.exit(main())
