"""The CLI imports only the command it runs: `int8kit --help` loads neither numpy nor onnx_ir nor the
runtime, and the one-line help of every command in cli.COMMANDS is the one its module registers."""

from __future__ import annotations

import argparse
import subprocess
import sys

from int8kit.cli import COMMANDS, build_parser

HEAVY = ("numpy", "onnx", "onnx_ir", "int8kit.runtime", "int8kit.convert", "int8kit.quantize", "torch", "PIL")


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import sys\nfrom int8kit.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


def test_help_imports_no_heavy_library():
    loaded = _modules_after(["--help"])
    assert "int8kit.cli" in loaded
    assert not [m for m in HEAVY if m in loaded], sorted(m for m in HEAVY if m in loaded)


def test_a_commands_help_imports_that_command_only():
    loaded = _modules_after(["info", "--help"])
    assert "int8kit.commands.info" in loaded
    assert not {f"int8kit.commands.{c}" for c in COMMANDS if c != "info"} & loaded


def test_the_table_help_is_what_each_command_registers():
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert {a.dest: a.help for a in action._choices_actions} == COMMANDS
