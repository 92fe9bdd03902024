"""bench/accuracy_table.py's arithmetic: top-k accuracy and the verdict against the drop targets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "accuracy_table.py"
spec = importlib.util.spec_from_file_location("accuracy_table", SCRIPT)
table = importlib.util.module_from_spec(spec)
sys.modules.setdefault("accuracy_table", table)  # dataclasses look their module up while it executes
spec.loader.exec_module(table)


def test_top_k_accuracy_by_hand():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5], [0.5, 0.2, 0.3]])
    labels = np.array([1, 1, 0, 2])
    # top-1 predictions 1, 0, 2, 0: one right; top-2 sets {1,0}, {0,1}, {2,1}, {0,2}: three right
    assert table.accuracy(logits, labels, 1) == 25.0
    assert table.accuracy(logits, labels, 2) == 75.0
    assert table.accuracy(logits, labels, 3) == 100.0


def _row(method: str, top1: float, fp32: float = 90.0) -> table.Row:
    return table.Row("m", method, 400, top1, None, None if method == "FP32" else fp32 - top1, 1.0, 100.0)


def test_verdict_needs_every_method_within_half_a_point_and_the_best_within_0_3():
    ok = [_row("FP32", 90.0), _row("minmax", 89.75), _row("kl", 89.5), _row("mse", 90.0)]
    assert table.verdicts(ok)[0].startswith("m: meets")
    worst = [*ok, _row("percentile", 89.25)]  # 0.75 points
    assert "MISSES" in table.verdicts(worst)[0] and "+0.75 with percentile" in table.verdicts(worst)[0]
    best_too_far = [_row("FP32", 90.0), _row("minmax", 89.6), _row("kl", 89.6)]  # all 0.4: best > 0.3
    assert "MISSES" in table.verdicts(best_too_far)[0]
