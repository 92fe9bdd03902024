"""A BatchNorm no conv can absorb (DenseNet's pre-activation BN-ReLU) becomes one int8kit.Affine, FP32 and
INT8, matching onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit.ir.fuse_channel_affine import FuseChannelAffinePass
from int8kit.ir.retype_conv import ConvToInt8kitPass
from int8kit.runtime.predictor import Predictor

from .fusion_util import assert_equivalent, build, kinds, prepare, randn

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'


@pytest.mark.parametrize("act", ["", "y = Relu (a)", "y = Clip (a, lo, hi)"])
def test_mul_add_activation_becomes_one_affine(act):
    tail = act or "y = Identity (a)"
    text = f"""{HEAD}
    g (float[N,8,5,5] x) => (float[N,8,5,5] y) {{
      m = Mul (x, s)
      a = Add (m, t)
      {tail}
    }}"""
    weights = {"s": randn(8, 1, 1, seed=1), "t": randn(1, 8, 1, 1, seed=2), "lo": np.float32(-0.5), "hi": np.float32(1)}
    proto = build(text, weights if "Clip" in act else {k: weights[k] for k in ("s", "t")})
    model = prepare(proto)
    ConvToInt8kitPass()(model)
    assert FuseChannelAffinePass()(model).modified
    assert kinds(model)[0] == "int8kit.Affine" and ("Relu" not in kinds(model)) and ("Clip" not in kinds(model))
    x = randn(2, 8, 5, 5, seed=3, scale=2.0)
    assert_equivalent(proto, model, {"x": x})


def test_mul_by_a_non_channel_constant_is_left_alone():
    text = f"""{HEAD}
    g (float[N,8,5,5] x) => (float[N,8,5,5] y) {{
      m = Mul (x, s)
      y = Add (m, t)
    }}"""
    proto = build(text, {"s": randn(1, 8, 5, 5, seed=1), "t": randn(8, 1, 1, seed=2)})
    model = prepare(proto)
    assert not FuseChannelAffinePass()(model).modified


def _dense_layer_qdq(zp: int) -> onnx.ModelProto:
    """Concat -> Q/DQ -> BatchNormalization -> Relu -> Q/DQ -> Conv: a DenseNet layer as a QDQ file."""
    rng = np.random.default_rng(zp)
    c = 16
    w = rng.standard_normal((8, c, 1, 1)).astype(np.float32) * 0.3
    ws = np.float32(np.abs(w).max() / 127)
    inits = {
        "cs": np.float32(0.03),
        "cz": np.uint8(zp),
        "rs": np.float32(0.02),
        "rz": np.uint8(0),
        "wq": np.clip(np.rint(w / ws), -127, 127).astype(np.int8),
        "xz": np.int8(0),
        "vq": np.random.default_rng(9).integers(-127, 128, (8, 8, 1, 1)).astype(np.int8),
        "vs": np.float32(0.01),
        "ws": ws,
        "g": rng.uniform(0.5, 1.5, c).astype(np.float32),
        "b": rng.normal(0, 0.2, c).astype(np.float32),
        "mu": rng.normal(0, 0.2, c).astype(np.float32),
        "var": rng.uniform(0.5, 1.5, c).astype(np.float32),
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["x1", "rs", "xz"], ["x1q"]),
        helper.make_node("DequantizeLinear", ["x1q", "rs", "xz"], ["x1d"]),
        helper.make_node("QuantizeLinear", ["x2in", "rs", "xz"], ["x2inq"]),
        helper.make_node("DequantizeLinear", ["x2inq", "rs", "xz"], ["x2ind"]),
        helper.make_node("DequantizeLinear", ["vq", "vs"], ["vd"]),
        helper.make_node("Conv", ["x1d", "vd"], ["r1"]),
        helper.make_node("Conv", ["x2ind", "vd"], ["x2"]),
        helper.make_node("QuantizeLinear", ["r1", "cs", "cz"], ["r1q"]),
        helper.make_node("DequantizeLinear", ["r1q", "cs", "cz"], ["r1d"]),
        helper.make_node("QuantizeLinear", ["x2", "cs", "cz"], ["x2q"]),
        helper.make_node("DequantizeLinear", ["x2q", "cs", "cz"], ["x2d"]),
        helper.make_node("Concat", ["r1d", "x2d"], ["cat"], axis=1),
        helper.make_node("QuantizeLinear", ["cat", "cs", "cz"], ["catq"]),
        helper.make_node("DequantizeLinear", ["catq", "cs", "cz"], ["catd"]),
        helper.make_node("BatchNormalization", ["catd", "g", "b", "mu", "var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "rs", "rz"], ["rq"]),
        helper.make_node("DequantizeLinear", ["rq", "rs", "rz"], ["rd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws"], ["wd"]),
        helper.make_node("Conv", ["rd", "wd"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dense_layer",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 8, 6, 6]) for n in ("x1", "x2in")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("zp", [0, 100])
def test_int8_affine_between_concat_and_conv_matches_the_qdq_model(zp):
    import onnxruntime as ort

    from int8kit.convert.pipeline import convert

    model = _dense_layer_qdq(zp)
    result = convert(model)
    affine = [n for n in result.model.graph if n.op_type == "Affine"]
    assert len(affine) == 1 and affine[0].attributes["y_type"].as_int() != 1, "\n".join(result.summary.lines())
    rng = np.random.default_rng(7)
    feeds = {n: rng.standard_normal((4, 8, 6, 6)).astype(np.float32) for n in ("x1", "x2in")}
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(
        None, feeds
    )[0]
    got = Predictor(result.model, num_threads=1).run_dict(feeds)["y"]
    # Exact up to float accumulation: a rare one-step flip of the ReLU output's rounding, times the weights.
    assert (
        np.abs(got - want).max() <= 0.02 * np.abs(w_max := np.abs(_weights(model))).sum(axis=1).max() * 1.01 + 1e-4
    ), w_max.shape
    assert np.mean(np.abs(got - want) < 1e-4) > 0.95  # the rest: a rare flip of the ReLU output rounding


def _weights(model: onnx.ModelProto) -> np.ndarray:
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return (init["wq"].astype(np.float32) * init["ws"]).reshape(8, -1)
