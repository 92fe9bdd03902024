"""UpgradeOpsetPass: opset 11 models become opset 17 and compute the same; opset >= 13 is untouched."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import helper

from int8kit.ir.upgrade_opset import UpgradeOpsetPass

from ._util import assert_same_outputs, init, make_model, rng, vinfo


def _opset11_model():
    """Ops whose form changed at opset 13: Softmax axis semantics, Squeeze/Unsqueeze axes, Split."""
    r = rng()
    w = r.standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Split", ["c"], ["s0", "s1"], axis=1, split=[1, 3]),
        helper.make_node("ReduceSum", ["s1"], ["r"], axes=[2], keepdims=1),
        helper.make_node("Squeeze", ["r"], ["q"], axes=[2]),
        helper.make_node("Unsqueeze", ["q"], ["u"], axes=[2]),
        helper.make_node("Clip", ["s0", "lo", "hi"], ["k"]),
        helper.make_node("Softmax", ["u"], ["y"], axis=1),
    ]
    inits = [init("w", w), init("lo", np.float32(-0.5)), init("hi", np.float32(0.5))]
    return make_model(
        nodes,
        [vinfo("x", [2, 3, 5, 6])],
        [vinfo("y", [2, 3, 1, 6]), vinfo("k", [2, 1, 5, 6])],
        inits,
        opset=11,
        ir_version=6,
    )


def test_opset11_is_upgraded_and_equivalent():
    proto = _opset11_model()
    model = ir.serde.deserialize_model(proto)
    w_before = model.graph.initializers["w"].const_value.numpy().copy()
    result = UpgradeOpsetPass()(model)
    assert result.modified and result.model is model
    assert model.opset_imports[""] == 17
    assert model.ir_version >= 8
    # Opset 13 forms: Squeeze/Unsqueeze/ReduceSum axes and Split sizes are inputs now.
    for node in model.graph:
        if node.op_type in ("Squeeze", "Unsqueeze", "ReduceSum", "Split"):
            assert "axes" not in node.attributes and "split" not in node.attributes, node.op_type
    np.testing.assert_array_equal(model.graph.initializers["w"].const_value.numpy(), w_before)
    feeds = {"x": rng().standard_normal((2, 3, 5, 6)).astype(np.float32)}
    assert_same_outputs(proto, model, feeds)


def test_opset13_and_later_left_alone():
    for opset in (13, 17):
        proto = _opset11_model()
        proto.opset_import[0].version = opset
        model = ir.serde.deserialize_model(proto)
        before = ir.serde.serialize_model(model).SerializeToString()
        result = UpgradeOpsetPass()(model)
        assert not result.modified
        assert model.opset_imports[""] == opset
        assert ir.serde.serialize_model(model).SerializeToString() == before


def test_external_weights_survive_upgrade(tmp_path):
    """Weights stay the memory-mapped external tensors across the round trip through the converter."""
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    from int8kit.ir.load import load_model

    proto = _opset11_model()
    external = onnx.ModelProto()
    external.CopyFrom(proto)
    convert_model_to_external_data(external, location="w.bin", size_threshold=0)
    onnx.save(external, tmp_path / "m.onnx")
    model = load_model(tmp_path / "m.onnx")
    assert UpgradeOpsetPass()(model).modified
    assert isinstance(model.graph.initializers["w"].const_value, ir.ExternalTensor)
    ir.external_data.load_to_model(model)  # onnxruntime gets the model as bytes
    feeds = {"x": rng().standard_normal((2, 3, 5, 6)).astype(np.float32)}
    assert_same_outputs(proto, model, feeds)
