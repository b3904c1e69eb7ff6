"""Bad input and how a command reports it (DESIGN.md "CLI"): exit 2 with one line (file, key path, what is allowed),
no traceback; warnings one line each. The CLI runs every command through `run_reported`, and so does
`kunlun scaling` for each search it starts."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator

from kunlun.model.yamlio import ConfigError


class UsageError(Exception):
    """Bad command-line input that is not a config file problem."""


# Lines of a driver's error that are not the error (SQLAlchemy appends the statement and a link).
_NOISE = ("[SQL:", "[parameters:", "(Background on this error")


def one_line(message: str) -> str:
    """A message on one line: a library error's continuation lines joined, its boilerplate dropped."""
    lines = (line.strip() for line in str(message).splitlines())
    return " ".join(line for line in lines if line and not line.startswith(_NOISE))


@contextlib.contextmanager
def _short_warnings(command: str) -> Iterator[None]:
    """Warnings (a dropped stream, skipped malformed rows) as one stderr line each, without the source line."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"kunlun {command}: warning: {one_line(str(message))}", file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def run_reported(command: str, run: Callable[[], int | None]) -> int:
    """Run `kunlun COMMAND`'s body: its exit code, 2 for bad input, 130 when interrupted."""
    try:
        with _short_warnings(command):
            return int(run() or 0)
    except (ConfigError, UsageError) as e:
        print(f"kunlun {command}: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kunlun {command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kunlun ... | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0
