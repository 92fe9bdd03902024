"""With paddlepaddle installed: int8kit's INT8 model against Paddle Inference running the fake-quant model live.

Skipped without paddle (a heavy optional extra, see scripts/make_paddle_models.py); the committed reference
logits stand in for it then. Paddle runs with its graph optimisations off, so its fake-quant ops run as written.
"""

from __future__ import annotations

import numpy as np
import pytest
from paddle_fixtures import ARCHS, MODELS, QUANT_KINDS, cosine, images, reference

paddle_inference = pytest.importorskip("paddle.inference")


def _paddle(directory, x: np.ndarray) -> np.ndarray:
    program = directory / "model.pdmodel" if (directory / "model.pdmodel").is_file() else directory / "model.json"
    config = paddle_inference.Config(str(program), str(directory / "model.pdiparams"))
    config.disable_gpu()
    config.switch_ir_optim(False)
    config.disable_mkldnn()
    predictor = paddle_inference.create_predictor(config)
    predictor.get_input_handle(predictor.get_input_names()[0]).copy_from_cpu(x)
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


@pytest.mark.parametrize(("arch", "kind"), [(a, k) for a in ARCHS for k in ("fp32", "fp32_pir", *QUANT_KINDS)])
def test_int8kit_against_live_paddle_inference(arch, kind):
    from int8kit.convert.pipeline import convert
    from int8kit.paddle import load_paddle_model
    from int8kit.runtime.predictor import Predictor

    x = images()
    live = _paddle(MODELS / f"{arch}_{kind}", x)
    key = f"{arch}_{kind.removesuffix('_pir')}"
    np.testing.assert_allclose(live, reference()[key], rtol=1e-4, atol=1e-4)  # the fixtures are still valid
    model = load_paddle_model(MODELS / f"{arch}_{kind}")
    fp32 = kind.startswith("fp32")
    out = Predictor(model if fp32 else convert(model).model).run(x)
    if fp32:
        np.testing.assert_allclose(out, live, rtol=1e-4, atol=1e-4)
    else:
        assert cosine(out, live).min() >= 0.99
        assert (out.argmax(1) == live.argmax(1)).mean() >= 0.98
