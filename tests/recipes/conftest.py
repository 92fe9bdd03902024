"""The recipes under test live in the repository's examples/ (not in the installed library): put the
repository root on sys.path so `import examples` finds them."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
