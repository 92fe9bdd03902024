"""ConvNeXt, a vision transformer and a Swin-style net, exported by torch as users export them, run FP32 and INT8.

Small instances of examples/zoo/transformers.py (torchvision's layer structure) and tests/convert/_swin_like.py:
FP32 must equal onnxruntime; int8kit's own QDQ model must convert with its convolutions and linear layers INT8 and its
LayerNorms, GELUs' neighbours and attention products FP32, and give the logits onnxruntime computes from
the same QDQ file.
"""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnx_ir as ir
import pytest

from examples.zoo import transformers
from int8kit.convert.pipeline import convert
from int8kit.quantize.api import quantize_with_report
from int8kit.runtime.predictor import Predictor

from ._swin_like import SwinLike
from ._util import cosine_rows, ort_qdq, run_ort

SIZE = 32
MODELS = {
    "convnext": lambda: transformers.ConvNeXt(dims=(16, 32, 48, 64), depths=(1, 1, 2, 1), num_classes=10),
    "vit": lambda: transformers.VisionTransformer(SIZE, patch=8, dim=48, depth=2, heads=3, mlp_dim=96, num_classes=10),
    "swin": lambda: SwinLike(dim=32),  # windows, torch.roll, relative position bias, strided-slice patch merging
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("transformers") / f"{request.param}.onnx"
    transformers.export(transformers.randomize(MODELS[request.param](), seed=0), path, SIZE)
    return request.param, onnx.load(str(path))


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)


def test_fp32_matches_onnxruntime(exported):
    _, model = exported
    x = images(8, seed=1)
    predictor = Predictor(model, num_threads=1)
    got, want = predictor.run(x), run_ort(model, x)
    assert float(np.abs(got - want).max() / np.abs(want).max()) <= 1e-4
    assert not [(label, impl) for label, impl in predictor.kernels(x.shape) if impl.startswith("ref")]


def test_int8_matches_the_qdq_model_in_onnxruntime(exported):
    name, model = exported
    qdq = ir.serde.serialize_model(quantize_with_report(model, images(16, seed=0)).model)
    ops = collections.Counter(n.op_type for n in qdq.graph.node)
    erf_inputs = {n.input[0] for n in qdq.graph.node if n.op_type == "Erf"}
    assert ops["QuantizeLinear"] > 0 and not any("DequantizeLinear" in i for i in erf_inputs)
    result = convert(qdq)
    int8, fp32 = result.summary.int8_ops, result.summary.fp32_ops
    assert int8.get("Conv", 0) >= 1 and int8.get("Dense", 0) >= 2, result.summary.lines()
    assert "LayerNormalization" in fp32 and "Dense" not in fp32, result.summary.lines()  # every linear layer INT8
    x = images(16, seed=2)
    predictor = Predictor(result.model, num_threads=1)
    got = predictor.run(x)
    assert cosine_rows(got, run_ort(qdq, x)).mean() >= 0.999
    assert not [(label, impl) for label, impl in predictor.kernels(x.shape) if impl.startswith("ref")]


@pytest.mark.parametrize("producer", ["ort_pt_u8", "ort_pc_s8_sym"])
def test_onnxruntime_qdq_files_round_inside_the_gelu_and_still_match(exported, producer):
    """onnxruntime quantizes the GELU's Erf output and the Add and Mul after it: the GELU cannot fuse, so
    its Erf runs on its own, every rounding where the file puts it."""
    name, model = exported
    # onnxruntime's quant_pre_process cannot infer the ViT's shapes (its symbolic Reshape): quantized without
    qdq = ort_qdq(model, images(16, seed=0), producer, pre_process=name != "vit")
    erf_outputs = {n.output[0] for n in qdq.graph.node if n.op_type == "Erf"}
    assert any(n.op_type == "QuantizeLinear" and n.input[0] in erf_outputs for n in qdq.graph.node)
    result = convert(qdq)
    assert result.summary.int8_ops.get("Dense", 0) >= 2, result.summary.lines()
    x = images(16, seed=2)
    predictor = Predictor(result.model, num_threads=1)
    assert cosine_rows(predictor.run(x), run_ort(qdq, x, optimize=False)).mean() >= 0.9995
    assert not [(label, impl) for label, impl in predictor.kernels(x.shape) if impl.startswith("ref")]
