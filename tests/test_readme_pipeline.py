"""README's "How it works" names the real pipelines: each `<!-- pipeline: NAME ... -->` line is followed by
the pass names, in order, exactly as the code builds them."""

from __future__ import annotations

import re
from pathlib import Path

from int8kit.convert.config import ConvertConfig
from int8kit.convert.pipeline import conversion_passes
from int8kit.ir.intake import intake_passes
from int8kit.ir.optimize import fusion_passes
from int8kit.ir.pipeline import pass_names

README = Path(__file__).resolve().parent.parent / "README.md"


def _documented() -> dict[str, list[str]]:
    found = re.findall(r"<!-- pipeline: (\w+)[^>]*-->\n`([^`]+)`", README.read_text())
    return {name: [p.strip() for p in text.split("->")] for name, text in found}


def test_readme_lists_every_pipeline_as_the_code_runs_it():
    assert _documented() == {
        "intake": pass_names(intake_passes()),
        "fuse": pass_names(fusion_passes()),
        "conversion": pass_names(conversion_passes(ConvertConfig())),
    }
