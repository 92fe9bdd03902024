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
from collections.abc import Iterable

from int8kit.errors import Int8kitError

# Every command and its one-line help, in the order `int8kit --help` lists them. Only the module of the
# command being run is imported (int8kit.commands.NAME, with the libraries it needs), so `int8kit --help`
# and `int8kit info` start without loading onnx, the runtime or torch.
COMMANDS: dict[str, str] = {
    "info": "show the oneDNN library, its version and the CPU's int8 features",
    "preprocess": "decode and preprocess images into a data file for `int8kit test`",
    "quantize": "calibrate an FP32 ONNX model on sample data and write a QDQ model (int8 weights)",
    "qat": "quant-aware fine-tuning (torch fake-quant) of an FP32 ONNX model into a QDQ model",
    "convert": "turn a QDQ (fake-quant) ONNX model into an int8kit INT8 model",
    "optimize": "write an FP32 model optimised as the engine runs it (intake, fusions); --debug: a .dot per pass",
    "compare": "per-layer error (SQNR) of an INT8 model against its FP32 model",
    "test": "time a model on a data file and report its top-1/top-5 accuracy",
    "benchmark": "time a model like OpenVINO's benchmark_app: latency, or throughput with parallel streams",
    "classify": "predict the top-k classes of every image in a folder or list (CSV or Parquet rows)",
    "report": "compare FP32 and INT8 models: accuracy, img/s and speed-up table",
    "demo": "run preprocess -> quantize -> convert -> test -> report on Fashion-MNIST",
}

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


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the full options of `commands` (default: all) and a one-line stub for the others."""
    full = set(COMMANDS if commands is None else commands)
    parser = Parser(prog="int8kit", description=DESCRIPTION, epilog=SNAKE_CASE_NOTE)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("--version", action="version", version=f"int8kit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name, help_text in COMMANDS.items():
        if name in full:
            importlib.import_module(f"int8kit.commands.{name}").add_parser(sub)
        else:
            sub.add_parser(name, help=help_text)
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, p in sub.choices.items():
        p.description = p.description or helps.get(name)  # every subcommand's --help says what it does
        p.epilog = p.epilog or SNAKE_CASE_NOTE
        p.add_argument(
            "-v", "--verbose", dest="verbose_sub", action="count", default=0, help="more log output (-vv: debug)"
        )
        p.set_defaults(_parser=p)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The subcommand on the command line: the first word that is not an option (only -v, -h and
    --version come before it). None when there is none; an unknown word means all (argparse names them)."""
    word = next((w for w in argv if not w.startswith("-")), None)
    if word is None:
        return None
    return word if word in COMMANDS else "*"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    parser = build_parser(None if command == "*" else [command] if command else [])
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
