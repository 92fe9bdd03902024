"""The fake-quant ops against hand computation (numpy) and onnxruntime's QuantizeLinear/DequantizeLinear."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")

from int8kit.qat.fake_quant import fake_quantize, fake_quantize_weight, make_activation_quantizer  # noqa: E402
from int8kit.quantize.scheme import QParams  # noqa: E402


def _numpy_qdq(x: np.ndarray, scale: np.float32, qmin: int, qmax: int) -> np.ndarray:
    return (np.clip(np.rint(x / scale), qmin, qmax) * scale).astype(np.float32)


def _ort_qdq(x: np.ndarray, scale: float, zp_type: int) -> np.ndarray:
    inits = [
        numpy_helper.from_array(np.array(scale, np.float32), "s"),
        helper.make_tensor("z", zp_type, [], [0]),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
    ]
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "qdq", [vi("x", TensorProto.FLOAT, x.shape)], [vi("y", TensorProto.FLOAT, x.shape)], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]


@pytest.mark.parametrize(
    ("dtype", "qmin", "qmax", "zp"), [("int8", -128, 127, TensorProto.INT8), ("uint8", 0, 255, TensorProto.UINT8)]
)
def test_activation_fake_quant_matches_numpy_and_onnxruntime(dtype, qmin, qmax, zp):
    rng = np.random.default_rng(0)
    scale = np.float32(0.05)
    # Values inside, beyond both ends, and exact .5 ties (round half to even, as ONNX does).
    x = np.concatenate([rng.uniform(-9, 15, 500), (np.arange(-20, 20) + 0.5) * scale]).astype(np.float32)
    quantizer = make_activation_quantizer(QParams(float(scale), dtype))
    got = quantizer(torch.from_numpy(x)).detach().numpy()
    s = quantizer.scale().detach().numpy()  # the float32 scale the module holds (exp of its log)
    np.testing.assert_array_equal(got, _numpy_qdq(x, s, qmin, qmax))
    np.testing.assert_allclose(got, _ort_qdq(x, float(s), zp), rtol=0, atol=1e-7)
    assert quantizer.qparams() == QParams(float(s), dtype)
    assert abs(float(s) - scale) < 1e-8


def test_gradients_straight_through_inside_zero_outside():
    scale = torch.tensor(0.1, requires_grad=True)
    x = torch.tensor([-20.0, -12.8, -3.33, 0.0, 0.04, 5.0, 12.7, 12.9, 30.0], requires_grad=True)
    y = fake_quantize(x, scale, -128, 127)
    y.sum().backward()
    xs = x.detach().numpy() / np.float32(0.1)
    inside = (xs >= -128) & (xs <= 127)
    np.testing.assert_array_equal(x.grad.numpy(), inside.astype(np.float32))
    # LSQ: d y / d s = round(x/s) - x/s inside the range, qmin / qmax where clamped.
    expected = np.where(inside, np.rint(xs) - xs, np.where(xs < -128, -128, 127)).sum()
    assert float(scale.grad) == pytest.approx(float(expected), rel=1e-5, abs=1e-5)


def test_weight_fake_quant_per_output_channel_by_hand():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    w[2] = 0.0  # a dead channel: scale 1, values stay 0
    wt = torch.from_numpy(w.copy()).requires_grad_(True)
    got = fake_quantize_weight(wt, 0)
    for oc in range(4):
        amax = np.abs(w[oc]).max()
        s = np.float32(amax / np.float32(127)) if amax > 0 else np.float32(1)
        expected = np.clip(np.rint(w[oc] / s), -127, 127) * s
        np.testing.assert_array_equal(got[oc].detach().numpy(), expected.astype(np.float32))
        assert np.abs(np.rint(w[oc] / s)).max() == (127 if amax > 0 else 0)
    (got * torch.arange(got.numel(), dtype=torch.float32).reshape(got.shape)).sum().backward()
    np.testing.assert_array_equal(wt.grad.numpy(), np.arange(w.size, dtype=np.float32).reshape(w.shape))


def test_weight_fake_quant_gemm_axis_one():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((6, 5)).astype(np.float32)  # MatMul weight [K, N]: channels on axis 1
    got = fake_quantize_weight(torch.from_numpy(w), 1).numpy()
    s = (np.abs(w).max(axis=0) / np.float32(127)).astype(np.float32)
    np.testing.assert_array_equal(got, (np.rint(w / s) * s).astype(np.float32))
