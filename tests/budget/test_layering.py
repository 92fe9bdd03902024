"""The accuracy budget sits above quantize, convert and evaluate: quantize/ never imports it."""

import ast
from pathlib import Path

import int8kit

SRC = Path(int8kit.__file__).parent


def _imports(package: str) -> set[str]:
    found = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("int8kit.")}


def test_quantize_and_convert_do_not_import_the_budget():
    for package in ("quantize", "convert", "evaluate", "qat"):
        assert not any(m.startswith("int8kit.budget") for m in _imports(package)), package


def test_the_budget_uses_quantize_convert_and_evaluate():
    used = {m.split(".")[1] for m in _imports("budget")}
    assert {"quantize", "convert", "evaluate"} <= used
