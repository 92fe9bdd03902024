"""CI runs the README's test command, and that command installs what the demo and Fashion-MNIST tests need."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("Run the tests", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()


def ci_command() -> str:
    lines = [ln for ln in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines() if ln.strip()]
    return lines[-1].strip()


def test_ci_runs_exactly_the_readme_test_command():
    assert ci_command() == readme_test_command()


def test_ci_installs_the_fashion_mnist_package_only_when_missing():
    command = ci_command()
    install = "apt-get update && apt-get install -y dataset-fashion-mnist"
    assert install in command
    # The install is guarded by a dpkg check, so it is a no-op where the package is already there.
    assert command.index("dpkg -s dataset-fashion-mnist") < command.index(install)
    assert command.index(install) < command.index("python -m pytest")
