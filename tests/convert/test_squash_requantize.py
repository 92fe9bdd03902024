"""squash_requantize: conversions after INT8 Conv/Dense fold into the producer's output encoding, and
DequantizeLinear -> QuantizeLinear chains become one Requantize (or nothing). Hand-written graphs in
the int8kit domain, run by the int8kit runtime before and after the pass."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit import ops
from int8kit.convert.place_int8 import PRECISION_KEY
from int8kit.convert.squash_requantize import SquashRequantizePass
from int8kit.ir.contract import record_written

from ._util import OPSET, run_ort

X_SCALE, Y_SCALE = 0.02, 0.01
CLIP = ops.PostOp("fq", (float(np.float32(Y_SCALE)), 0.0, 0.0, 255.0)).encode()  # the uint8 Q -> DQ


def _int8_conv_model(post_ops: list[str], after: str, y_type: int = ops.UINT8, seed: int = 0) -> ir.Model:
    """Q(input) -> int8kit Conv (INT8 weights) -> `after` ("dq": DequantizeLinear, "q": QuantizeLinear)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    w_scales = rng.uniform(0.002, 0.004, 4).astype(np.float32)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b"),
        numpy_helper.from_array(np.array(X_SCALE, np.float32), "x_s"),
        numpy_helper.from_array(np.array(0, np.int8), "x_zp"),
        numpy_helper.from_array(np.array(Y_SCALE, np.float32), "y_s"),
        numpy_helper.from_array(np.array(0, np.uint8 if y_type == ops.UINT8 else np.int8), "y_zp"),
    ]
    attrs = dict(
        strides=[1, 1],
        pads=[1, 1, 1, 1],
        dilations=[1, 1],
        group=1,
        x_scale=X_SCALE,
        w_scales=w_scales.tolist(),
        y_type=y_type,
    )
    if post_ops:
        attrs["post_ops"] = post_ops
    if after == "dq":
        attrs["y_scale"] = Y_SCALE
    else:
        attrs["y_type"] = ops.FLOAT
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "x_s", "x_zp"], ["xq"], name="quant"),
        helper.make_node("Conv", ["xq", "w", "b"], ["c"], name="conv", domain=ops.DOMAIN, **attrs),
    ]
    if after == "dq":
        nodes.append(helper.make_node("DequantizeLinear", ["c", "y_s", "y_zp"], ["y"], name="dq"))
    else:
        nodes.append(helper.make_node("QuantizeLinear", ["c", "y_s", "y_zp"], ["yq"], name="q"))
        nodes.append(helper.make_node("DequantizeLinear", ["yq", "y_s", "y_zp"], ["y"], name="dq"))
    graph = helper.make_graph(
        nodes,
        "int8",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(ops.DOMAIN, ops.DOMAIN_VERSION)]
    )
    proto.ir_version = 8
    model = ir.serde.deserialize_model(proto)
    model.metadata_props[ops.OPTIMIZED_KEY] = "int8"
    conv = next(n for n in model.graph if n.op_type == "Conv")
    conv.metadata_props[PRECISION_KEY] = "int8"
    return model, w, w_scales


def _float_conv(x, w, w_scales):
    """The FP32 conv the INT8 one computes (onnxruntime on the dequantized tensors)."""
    xq = np.clip(np.rint(x / X_SCALE), -128, 127) * X_SCALE
    wf = w.astype(np.float32) * w_scales[:, None, None, None]
    proto = helper.make_model(
        helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
            "ref",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(wf, "w")],
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    return run_ort(proto, xq.astype(np.float32), optimize=False)


def _run(model: ir.Model, x: np.ndarray) -> np.ndarray:
    from int8kit.runtime.predictor import Predictor

    return Predictor(ir.serde.serialize_model(model)).run(x)


X = np.random.default_rng(9).standard_normal((4, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        # the uint8 output was rounded onto its grid and clipped to [0, 255 * scale]: an fq post-op keeps exactly that
        ([], [CLIP]),
        (["hardswish"], ["hardswish", CLIP]),
        (["relu"], ["relu", CLIP]),
        (["clip:0.0:6.0"], ["clip:0.0:6.0", CLIP]),
    ],
)
def test_uint8_conv_then_dequantize_becomes_a_float_output_conv(chain, expected):
    model, w, w_scales = _int8_conv_model(chain, "dq")
    before = _run(model, X)
    SquashRequantizePass()(model)
    conv = next(n for n in model.graph if n.op_type == "Conv")
    assert [n.op_type for n in model.graph] == ["QuantizeLinear", "Conv"]
    assert conv.attributes["y_type"].as_int() == ops.FLOAT and "y_scale" not in conv.attributes
    assert list(conv.attributes.get_strings("post_ops", [])) == expected
    assert model.graph.outputs[0].name == "y" and model.graph.outputs[0].producer() is conv
    assert conv.outputs[0].dtype == ir.DataType.FLOAT
    after = _run(model, X)
    assert after.min() >= 0 and (_float_conv(X, w, w_scales).min() < 0 or chain)
    # The fq post-op rounds and saturates exactly as the uint8 output did
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-5)


def test_float_conv_then_quantize_writes_int8_directly():
    model, _, _ = _int8_conv_model([], "q", y_type=ops.INT8)
    before = _run(model, X)
    SquashRequantizePass()(model)
    conv = next(n for n in model.graph if n.op_type == "Conv")
    assert [n.op_type for n in model.graph] == ["QuantizeLinear", "Conv", "DequantizeLinear"]
    assert conv.attributes["y_type"].as_int() == ops.INT8
    assert conv.attributes["y_scale"].as_float() == pytest.approx(Y_SCALE)
    assert conv.outputs[0].dtype == ir.DataType.INT8
    np.testing.assert_allclose(_run(model, X), before, rtol=0, atol=Y_SCALE + 1e-6)


def _dq_q_chain(s1: float, s2: float) -> onnx.ModelProto:
    inits = [
        numpy_helper.from_array(np.array(v, t), n)
        for n, v, t in (("s1", s1, np.float32), ("s2", s2, np.float32), ("z", 0, np.int8))
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "s1", "z"], ["a"], name="q1"),
        helper.make_node("DequantizeLinear", ["a", "s1", "z"], ["b"], name="dq1"),
        helper.make_node("QuantizeLinear", ["b", "s2", "z"], ["c"], name="q2"),
        helper.make_node("DequantizeLinear", ["c", "s2", "z"], ["y"], name="dq2"),
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(ops.DOMAIN, ops.DOMAIN_VERSION)]
    )


@pytest.mark.parametrize(
    ("s1", "s2", "ops_left"),
    [
        (0.02, 0.05, ["QuantizeLinear", "Requantize", "DequantizeLinear"]),
        (0.02, 0.02, ["QuantizeLinear", "DequantizeLinear"]),
    ],
)
def test_dequantize_quantize_chain_becomes_one_requantize_or_nothing(s1, s2, ops_left):
    proto = _dq_q_chain(s1, s2)
    x = np.random.default_rng(2).uniform(-3, 3, (16, 8)).astype(np.float32)
    want = run_ort(proto, x, optimize=False)
    model = ir.serde.deserialize_model(proto)
    model.metadata_props[ops.OPTIMIZED_KEY] = "int8"
    record_written(model, (PRECISION_KEY,))  # as place_int8 leaves it: no INT8 node
    SquashRequantizePass()(model)
    assert [n.op_type for n in model.graph] == ops_left
    np.testing.assert_allclose(_run(model, x), want, rtol=0, atol=1e-6)
