"""metrics.row_cosines: one cosine per sample, against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.evaluate.metrics import row_cosines


def test_one_cosine_per_sample_of_any_rank():
    a = np.array([[1.0, 0.0], [3.0, 4.0], [1.0, 1.0]], np.float32)
    b = np.array([[0.0, 2.0], [6.0, 8.0], [1.0, 0.0]], np.float32)
    np.testing.assert_allclose(row_cosines(a, b), [0.0, 1.0, 1 / np.sqrt(2)], atol=1e-12)
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    got = row_cosines(x, -x)
    assert got.shape == (2,) and got.dtype == np.float64
    assert got == pytest.approx([-1.0, -1.0])
