"""Session fixtures: the test net and calibration images."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from ._nets import build_net, make_images


@pytest.fixture(scope="session")
def net() -> onnx.ModelProto:
    return build_net()


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    return make_images(64)
