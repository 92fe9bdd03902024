"""INT8 top-1 on all 10,000 Fashion-MNIST test images within 0.3 points of Paddle's own fake-quant model.

Paddle's figures were measured by scripts/make_paddle_models.py (Paddle Inference, fake-quant ops run as
written) and committed in metrics.json; the images come from the Debian package dataset-fashion-mnist.
"""

from __future__ import annotations

import numpy as np
import pytest
from paddle_fixtures import ARCHS, MODELS, QUANT_KINDS, metrics, reference

from int8kit.commands.demo import FASHION_MNIST
from int8kit.convert.pipeline import convert
from int8kit.data.idx import read_idx, split_paths
from int8kit.paddle import PaddleReadConfig, load_paddle_model
from int8kit.runtime.predictor import Predictor

image_file, label_file = split_paths(FASHION_MNIST, "test")
pytestmark = pytest.mark.skipif(not image_file.is_file(), reason="needs apt-get install dataset-fashion-mnist")


@pytest.fixture(scope="module")
def test_set():
    ref = reference()
    x = ((read_idx(image_file, 3).astype(np.float32) / 255.0 - ref["mean"]) / ref["std"])[:, None]
    return x.astype(np.float32), read_idx(label_file, 1).astype(np.int64)


def _top1(predictor: Predictor, x: np.ndarray, y: np.ndarray) -> float:
    out = np.concatenate([predictor.run(x[i : i + 1000]) for i in range(0, len(x), 1000)])
    return float((out.argmax(1) == y).mean() * 100)


@pytest.mark.parametrize("arch", ARCHS)
def test_fp32_top1_equals_paddle(test_set, arch):
    x, y = test_set
    top1 = _top1(Predictor(load_paddle_model(MODELS / f"{arch}_fp32")), x, y)
    assert abs(top1 - metrics()[f"{arch}_fp32"]["top1_10000"]) <= 0.011


@pytest.mark.parametrize("output_scales", [False, True])
@pytest.mark.parametrize(("arch", "kind"), [(a, k) for a in ARCHS for k in QUANT_KINDS])
def test_int8_top1_within_0_3_points_of_paddle_fake_quant(test_set, arch, kind, output_scales):
    """Also when the measured output scales quantize more tensors, as Paddle's reference converter does."""
    x, y = test_set
    model = load_paddle_model(MODELS / f"{arch}_{kind}", PaddleReadConfig(output_scales=output_scales))
    top1 = _top1(Predictor(convert(model).model), x, y)
    paddle = metrics()[f"{arch}_{kind}"]["top1_10000"]
    print(f"{arch}_{kind} (output_scales={output_scales}): int8kit INT8 {top1:.2f}%, Paddle fake-quant {paddle:.2f}%")
    assert abs(top1 - paddle) <= 0.3
