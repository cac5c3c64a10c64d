"""``python -m sphinx_evaldemo run PAGE [--line N] [--json]``: argument parsing only."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sphinx_evaldemo",
        description="Tools for authors of pages with evaldemo examples.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the examples of one page as a build does, and print what the text builder shows",
        description="Run the examples of one page (or the one at --line) with the settings of the "
        "conf.py above it, the way a build runs them, and print what the text builder shows. "
        "Exit status: 0 when every example ran as expected and every claim held, 1 otherwise, "
        "2 when the page or its conf.py cannot be used.",
    )
    run.add_argument("page", metavar="PAGE", help="the page's source file (.md or .rst)")
    run.add_argument("--line", type=int, metavar="N",
                     help="run only the example at line N (the last one that opens at or before it)")
    run.add_argument("--json", action="store_true", help="print the report's rows as JSON instead")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)  # argparse exits with status 2 on a usage error
    from .examples.author import main as run_page

    return run_page(args.page, args.line, args.json)


if __name__ == "__main__":
    sys.exit(main())
