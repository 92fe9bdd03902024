"""compare_layers takes files, ir.Models or Predictors, and gives the same numbers for each, with no files written.

The path form is the reference (it is what `int8kit compare` runs); the in-memory forms must agree with it.
"""

import numpy as np
import onnx
import pytest

from int8kit.convert.pipeline import convert
from int8kit.errors import ConfigError
from int8kit.evaluate.layer_error import compare_layers, layer_predictors
from int8kit.ir.load import as_ir_model
from int8kit.ir.save import save_model
from int8kit.models import zoo
from int8kit.quantize.api import QuantizeConfig, quantize_model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layer_error")
    fp32 = zoo.build("resnet_tiny", seed=3)
    x = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    qdq = quantize_model(fp32, x, QuantizeConfig(num_samples=16))
    onnx.save(fp32, tmp / "fp32.onnx")
    save_model(convert(qdq).model, tmp / "int8.onnx")
    return tmp / "fp32.onnx", tmp / "int8.onnx", fp32, qdq, [x[:8], x[8:]]


def _numbers(errors):
    """(name, int8, sqnr, cosine) rows, equal when names and flags are and the numbers agree to 1e-4: float32
    summation order can differ between two runs of the same model (2e-6 dB of 35.8 was seen on an AMX CPU)."""
    return _Rows((e.name, e.int8, e.sqnr_db, e.cosine) for e in errors)


class _Rows(list):
    def __eq__(self, other):
        return len(self) == len(other) and all(
            a[:2] == b[:2] and np.allclose(a[2:], b[2:], rtol=0, atol=1e-4) for a, b in zip(self, other, strict=True)
        )

    __hash__ = None


def test_models_and_predictors_give_the_path_numbers_without_writing_files(models, monkeypatch):
    fp32_path, int8_path, fp32, qdq, batches = models
    reference = _numbers(compare_layers(fp32_path, int8_path, batches, num_threads=1))
    assert reference and all(int8 for _, int8, _, _ in reference)

    def no_files(*args, **kwargs):
        raise AssertionError("compare_layers wrote a file")

    import onnx_ir

    monkeypatch.setattr(onnx, "save", no_files)
    monkeypatch.setattr(onnx, "save_model", no_files)
    monkeypatch.setattr(onnx_ir, "save", no_files)
    in_memory = compare_layers(as_ir_model(fp32), convert(qdq).model, batches, num_threads=1)
    assert _numbers(in_memory) == reference
    pair = layer_predictors(as_ir_model(fp32), convert(qdq).model, num_threads=1)
    first = _numbers(compare_layers(*pair, batches))
    compiles = (pair[0].compiles, pair[1].compiles)
    assert first == reference == _numbers(compare_layers(*pair, batches))
    assert (pair[0].compiles, pair[1].compiles) == compiles  # reused: nothing compiled again


def test_one_predictor_and_one_model_is_refused(models):
    fp32_path, int8_path, _, _, batches = models
    fp32_predictor, _ = layer_predictors(fp32_path, int8_path, num_threads=1)
    with pytest.raises(ConfigError, match="two Predictors"):
        compare_layers(fp32_predictor, int8_path, batches)
