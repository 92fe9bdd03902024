"""The `int8kit` command line: one subcommand per module in int8kit.commands.

Each command module exposes `add_parser(subparsers)` and `run(args) -> int`. Library errors
(`Int8kitError`) are printed as one line and exit with status 2; nothing else is swallowed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from int8kit.errors import Int8kitError

# The order here is the order `int8kit --help` lists them.
COMMANDS = ["info", "preprocess", "quantize", "qat", "convert", "compare", "test", "report", "demo"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="int8kit", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"int8kit.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except Int8kitError as exc:
        print(f"int8kit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
