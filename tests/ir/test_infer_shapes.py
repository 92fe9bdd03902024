"""InferShapesPass: inferred dtypes and shapes match what onnxruntime actually produces."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import TensorProto, helper

from int8kit import ops
from int8kit.ir.infer_shapes import InferShapesPass

from ._util import init, make_model, rng, run_ort, vinfo


def _model():
    r = rng()
    return make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Shape", ["p"], ["s"]),
            helper.make_node("Flatten", ["p"], ["f"]),
            helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], transB=1),
            helper.make_node("Cast", ["y"], ["y16"], to=TensorProto.FLOAT16),
        ],
        [vinfo("x", [1, 3, 16, 16])],
        [vinfo("y16", None, TensorProto.FLOAT16), vinfo("s", None, TensorProto.INT64)],
        [
            init("w", r.standard_normal((8, 3, 3, 3)).astype(np.float32)),
            init("fc_w", r.standard_normal((10, 8 * 4 * 4)).astype(np.float32)),
            init("fc_b", r.standard_normal(10).astype(np.float32)),
        ],
    )


def test_every_value_gets_dtype_and_shape_matching_ort():
    proto = _model()
    model = ir.serde.deserialize_model(proto)
    assert all(out.shape is None for node in model.graph for out in node.outputs if not out.is_graph_output())
    assert InferShapesPass()(model).modified
    # Reference: expose every intermediate as an output and let onnxruntime compute it.
    exposed = ir.serde.deserialize_model(proto)
    exposed.graph.outputs.clear()
    exposed.graph.outputs.extend(out for node in exposed.graph for out in node.outputs)
    for value in exposed.graph.outputs:
        value.type = None
        value.shape = None
    actual = run_ort(exposed, {"x": rng().standard_normal((1, 3, 16, 16)).astype(np.float32)})
    for node in model.graph:
        for out in node.outputs:
            assert out.dtype is not None and out.shape is not None, out.name
            assert out.dtype.numpy() == actual[out.name].dtype, out.name
            assert tuple(out.shape) == actual[out.name].shape, out.name


def test_int8kit_conv_shape_matches_onnx_conv():
    r = rng()
    attrs = {"strides": [2, 1], "pads": [1, 0, 2, 1], "dilations": [1, 2]}
    w = r.standard_normal((5, 3, 3, 2)).astype(np.float32)
    x = r.standard_normal((2, 3, 11, 9)).astype(np.float32)
    onnx_conv = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], **attrs)],
        [vinfo("x", x.shape)],
        [vinfo("y", None)],
        [init("w", w)],
    )
    want = run_ort(onnx_conv, {"x": x})["y"].shape
    custom = make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], domain=ops.DOMAIN, **attrs),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        [vinfo("x", x.shape)],
        [vinfo("y", None)],
        [init("w", w)],
    )
    custom.opset_import.append(helper.make_opsetid(ops.DOMAIN, ops.DOMAIN_VERSION))
    model = ir.serde.deserialize_model(custom)
    InferShapesPass()(model)
    conv, relu = model.graph
    assert tuple(conv.outputs[0].shape) == want and conv.outputs[0].dtype == ir.DataType.FLOAT
    assert tuple(relu.outputs[0].shape) == want  # onnx inference ran on past the custom op


def test_int8kit_ops_get_dtype_from_attributes():
    r = rng()
    w = r.integers(-127, 128, (4, 3, 1, 1)).astype(np.int8)
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "w"],
            ["c"],
            domain=ops.DOMAIN,
            x_scale=0.1,
            w_scales=[0.01] * 4,
            y_scale=0.2,
            y_type=ops.UINT8,
            post_ops=["relu"],
        ),
        helper.make_node("Requantize", ["c"], ["q"], domain=ops.DOMAIN, x_scale=0.2, y_scale=0.1, y_type=ops.INT8),
        helper.make_node("DequantizeLinear", ["q", "s"], ["y"]),
    ]
    proto = make_model(
        nodes,
        [vinfo("x", [1, 3, 4, 4], TensorProto.UINT8)],
        [vinfo("y", None)],
        [init("w", w), init("s", np.float32(0.1))],
    )
    proto.opset_import.append(helper.make_opsetid(ops.DOMAIN, ops.DOMAIN_VERSION))
    model = ir.serde.deserialize_model(proto)
    InferShapesPass()(model)
    c, q, y = (node.outputs[0] for node in model.graph)
    assert c.dtype == ir.DataType.UINT8
    assert q.dtype == ir.DataType.INT8
    assert y.dtype == ir.DataType.FLOAT  # onnx inference continues after the custom ops
    # The conv shape formula agrees with onnxruntime's FP32 Conv on the same geometry.
    assert tuple(c.shape) == tuple(q.shape) == tuple(y.shape) == (1, 4, 4, 4)
