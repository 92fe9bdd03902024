"""The `int8kit` command line: one subcommand per module in int8kit.commands.

Each command module exposes `add_parser(subparsers)` and `run(args) -> int`. Library errors
(`Int8kitError`) are printed as one line and exit with status 2; nothing else is swallowed.
Every `--long-option` is also accepted in the reference scripts' snake_case (`--batch_size`), and
`-v` works before or after the subcommand.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import logging
import sys

from int8kit.errors import Int8kitError

# The order here is the order `int8kit --help` lists them.
COMMANDS = [
    "info",
    "preprocess",
    "quantize",
    "qat",
    "convert",
    "compare",
    "test",
    "benchmark",
    "classify",
    "report",
    "demo",
]

DESCRIPTION = (
    "FP32 ONNX image classifiers to fast INT8 on CPUs with oneDNN: preprocess images, quantize (QDQ), "
    "convert to INT8, test and report FP32 against INT8. `int8kit COMMAND --help` for each step."
)
SNAKE_CASE_NOTE = (
    "Every --long-option is also accepted in snake_case (--batch_size), as the PaddleSlim reference scripts "
    "spell it; --name=value works too."
)


def _is_snake_alias(option: str) -> bool:
    return option.startswith("--") and "_" in option


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default (or "required"), and hides the snake_case aliases to keep help short."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or "default" in text or action.default is argparse.SUPPRESS:
            return text
        if action.required:
            return f"{text} (required)"
        if action.nargs == 0:
            return f"{text} (default: off)" if isinstance(action, argparse._StoreTrueAction) else text
        if action.default is None or action.default in ((), "", []):
            return f"{text} (default: none)"  # most such flags say in words what leaving them out means
        return f"{text} (default: %(default)s)"

    def _format_action_invocation(self, action: argparse.Action) -> str:
        shown = [s for s in action.option_strings if not _is_snake_alias(s)]
        if not action.option_strings or shown == action.option_strings:
            return super()._format_action_invocation(action)
        shorter = copy.copy(action)
        shorter.option_strings = shown
        return super()._format_action_invocation(shorter)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that also accepts the snake_case spelling of every kebab-case long option."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # --batch would be ambiguous between --batch-size/--batch_size
        super().__init__(*args, **kwargs)

    def add_argument(self, *names: str, **kwargs):
        snake = ["--" + n[2:].replace("-", "_") for n in names if n.startswith("--") and "-" in n[2:]]
        extra = [s for s in dict.fromkeys(snake) if s not in names]
        return super().add_argument(*names, *extra, **kwargs)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("int8kit")
    except PackageNotFoundError:  # running from a source tree that was never installed
        from int8kit import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="int8kit", description=DESCRIPTION, epilog=SNAKE_CASE_NOTE)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("--version", action="version", version=f"int8kit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"int8kit.commands.{name}")
        module.add_parser(sub)
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, p in sub.choices.items():
        p.description = p.description or helps.get(name)  # every subcommand's --help says what it does
        p.epilog = p.epilog or SNAKE_CASE_NOTE
        p.add_argument(
            "-v", "--verbose", dest="verbose_sub", action="count", default=0, help="more log output (-vv: debug)"
        )
        p.set_defaults(_parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from int8kit.commands._options import finish_args

    finish_args(args)
    verbosity = args.verbose + getattr(args, "verbose_sub", 0)
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbosity:
        logging.getLogger().setLevel(level)  # basicConfig does nothing when a handler exists already
    try:
        return int(args.func(args) or 0)
    except Int8kitError as exc:
        print(f"int8kit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
