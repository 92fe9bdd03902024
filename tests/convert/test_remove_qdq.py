"""remove_qdq: weight DequantizeLinear folds to float weights, activation Q->DQ pairs are bypassed."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import TensorProto, helper

from ._util import OPSET, QDQGraph, run_ort, run_until


def _qdq_conv(per_channel: bool):
    g = QDQGraph()
    w = g.rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    wdq, q, scales = g.weight(w, per_channel)
    x = g.qdq("input", 0.02, 128, np.uint8)
    c = g.node("Conv", [x, wdq], name="conv", pads=[1, 1, 1, 1])
    y = g.qdq(c, 0.05, 0, np.int8, output="y")
    return g.build([y]), q, scales


def _numpy_dequantize(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * (scales.reshape(-1, 1, 1, 1) if scales.size > 1 else scales)


def _conv(m: ir.Model) -> ir.Node:
    return next(n for n in m.graph if n.op_type == "Conv")


def test_weight_dequantize_folds_to_the_numpy_dequantized_float_weights():
    for per_channel in (True, False):
        model, q, scales = _qdq_conv(per_channel)
        m = run_until(model, "remove_qdq")
        w = _conv(m).inputs[1]
        assert w.is_initializer() and w.const_value.dtype == ir.DataType.FLOAT
        np.testing.assert_array_equal(w.const_value.numpy(), _numpy_dequantize(q, scales))


def test_activation_pairs_are_bypassed_and_the_output_keeps_its_name():
    model, _, _ = _qdq_conv(True)
    m = run_until(model, "remove_qdq")
    # the output the file dequantizes stays apart from the conv's, through an Identity: it is the rounded value
    assert [n.op_type for n in m.graph] == ["Conv", "Identity"]
    conv = _conv(m)
    assert conv.inputs[0] is m.graph.inputs[0]
    assert [v.name for v in m.graph.outputs] == ["y"]
    assert m.graph.outputs[0].producer().inputs[0] is conv.outputs[0]
    assert not [name for name in m.graph.initializers if "zp" in name or name.startswith("q")]  # params dropped


def test_float_model_left_computes_the_fp32_conv_with_dequantized_weights():
    model, q, scales = _qdq_conv(True)
    m = run_until(model, "remove_qdq")
    ref = helper.make_model(
        helper.make_graph(
            [helper.make_node("Conv", ["input", "w"], ["y"], pads=[1, 1, 1, 1])],
            "ref",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [helper.make_tensor("w", TensorProto.FLOAT, q.shape, _numpy_dequantize(q, scales).ravel())],
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(run_ort(ir.serde.serialize_model(m), x), run_ort(ref, x), rtol=1e-5, atol=1e-5)


def test_qdq_over_a_float_constant_becomes_the_fake_quantized_constant():
    g = QDQGraph()
    w = g.rng.standard_normal((4, 3, 1, 1)).astype(np.float32)
    wf = g.const("w_float", w)
    s = g.const("w_s", np.array(0.01, np.float32))
    zp = g.const("w_zp", np.array(0, np.int8))
    wq = g.node("QuantizeLinear", [wf, s, zp], "w_q")
    wdq = g.node("DequantizeLinear", [wq, s, zp], "w_dq")
    y = g.node("Conv", ["input", wdq], "y", name="conv")
    m = run_until(g.build([y]), "remove_qdq")
    expected = np.clip(np.rint(w / np.float32(0.01)), -128, 127) * np.float32(0.01)
    np.testing.assert_allclose(_conv(m).inputs[1].const_value.numpy(), expected, rtol=0, atol=1e-7)
    assert [n.op_type for n in m.graph] == ["Conv"]
