"""Command-line plumbing shared by train.py, evaluate.py and the benchmarks."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line and exit code 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def error_line(problem: BaseException | str) -> int:
    """Report bad input as one ``error: ...`` line on stderr; returns the exit code, 2."""
    print(f"error: {' '.join(str(problem).split())}", file=sys.stderr)
    return 2


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """The repeatable ``--set key=value`` config override (stored in ``args.overrides``)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.lr=3e-4 (repeatable)",
    )
