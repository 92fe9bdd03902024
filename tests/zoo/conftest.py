"""The zoo tests import `examples.zoo` from the repository root (examples/ is not an installed package).

pytest puts tests/ on sys.path for the test packages, so the name `examples` is tests/examples (a package
with an __init__) once any test imports it, and it shadows the repository's examples/ folder; the repo's
folder is therefore added to that package's search path, which makes `examples.zoo` importable either way.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import examples  # noqa: E402

if str(REPO_ROOT / "examples") not in list(examples.__path__):
    examples.__path__.append(str(REPO_ROOT / "examples"))
