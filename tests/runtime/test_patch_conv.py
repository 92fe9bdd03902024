"""INT8 convolutions over non-overlapping patches (kernel == stride: ConvNeXt's downsampling, patch embeddings).

oneDNN 3.2's AMX brgconv computes some of them wrongly (2x2 stride 2 with 96 or 160 input channels: most
outputs off by up to the whole range; ConvNeXt-atto's INT8 logits had cosine 0.08 against onnxruntime).
The engine runs those as a 1x1 conv of the space-to-depth rearrangement. Both are checked against onnxruntime
on the same QDQ file: as the engine chooses (the AMX case on an AMX CPU), and with the rearrangement forced,
so the rearrangement itself is tested on every CPU.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import int8kit
from int8kit.runtime import lowering_compute, precision
from int8kit.runtime.predictor import Predictor

from ._util import init, make_model, vinfo


def _qdq_conv(cin: int, cout: int, k: int, h: int, signed: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(cin * 10 + k)
    act = np.int8 if signed else np.uint8
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wd", "b"], ["c"], strides=[k, k], name="patches"),
        helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
        helper.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"]),
    ]
    inits = [
        init("w", rng.integers(-127, 128, (cout, cin, k, k)).astype(np.int8)),
        init("ws", (rng.random(cout) * 0.01 + 0.001).astype(np.float32)),
        init("wz", np.zeros(cout, np.int8)),
        init("xs", np.array(0.05, np.float32)),
        init("xz", np.array(0 if signed else 3, act)),
        init("ys", np.array(0.1, np.float32)),
        init("yz", np.array(0, np.int8)),
        init("b", rng.standard_normal(cout).astype(np.float32)),
    ]
    return make_model(nodes, [vinfo("x", ["N", cin, h, h])], [vinfo("y", None, TensorProto.FLOAT)], inits)


def _check(model: onnx.ModelProto, x: np.ndarray) -> list[str]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the file's float arithmetic
    want = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )[0]
    p = Predictor(int8kit.convert_model(model), num_threads=2)
    got = p.run(x)
    # One output step (0.1) apart at most: a float-rounding tie may land either way; the bug is off by many.
    assert np.abs(got - want).max() <= 0.1 + 1e-6, np.abs(got - want).max()
    assert np.mean(got != want) < 0.01
    return p.kernels(x.shape)


CASES = [(96, 64, 2, 8, True), (160, 32, 2, 9, False), (160, 32, 4, 8, True), (64, 32, 2, 8, True)]


@pytest.mark.parametrize(("cin", "cout", "k", "h", "signed"), CASES)
def test_patch_conv_matches_onnxruntime(cin, cout, k, h, signed):
    x = np.random.default_rng(1).standard_normal((2, cin, h, h)).astype(np.float32) * 2
    kernels = _check(_qdq_conv(cin, cout, k, h, signed), x)
    assert not [i for _, i in kernels if i.startswith("ref")], kernels


@pytest.mark.skipif(
    not precision.int8_kernels_exact(),
    reason="no VNNI or AMX: INT8 convolutions run f32 kernels here, which never take the space-to-depth form",
)
@pytest.mark.parametrize(("cin", "cout", "k", "h", "signed"), CASES)
def test_space_to_depth_form_matches_onnxruntime_on_any_cpu(monkeypatch, cin, cout, k, h, signed):
    monkeypatch.setattr(lowering_compute, "_amx_patch_bug", lambda *args: True)
    x = np.random.default_rng(2).standard_normal((3, cin, h, h)).astype(np.float32) * 2
    kernels = _check(_qdq_conv(cin, cout, k, h, signed), x)
    assert [label for label, _ in kernels if label.startswith("space-to-depth")], kernels
