"""Every `int8kit.*` metadata key is spelled once, in src/int8kit/metadata.py: elsewhere the library only
names int8kit modules (lazy imports) or producer/package names, never a key."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from int8kit import metadata

SRC = Path(__file__).resolve().parent.parent / "src"
NOT_KEYS = {"int8kit.zoo", "int8kit.paddle_framework"}  # a producer_name and a protobuf package name


def _modules() -> set[str]:
    names = set()
    for f in SRC.rglob("*.py"):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_keys_live_in_metadata_only():
    modules = _modules()
    stray = []
    for f in SRC.rglob("*.py"):
        if f.name == "metadata.py" and f.parent.name == "int8kit":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if re.fullmatch(r"int8kit\.[a-z0-9_.]*[a-z0-9]", text) and text not in modules | NOT_KEYS:
                    stray.append(f"{f.relative_to(SRC)}: {text!r}")
    assert not stray, stray


def test_metadata_keys_are_unique():
    keys = [v for k, v in vars(metadata).items() if k.endswith("_KEY")]
    assert len(keys) == len(set(keys)) and all(k.startswith("int8kit.") for k in keys)
