"""intake(): a Paddle-like opset-11 model with Constant weights, Identity, Pad and BN comes out
folded, typed and numbered, computing the same as the original."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from int8kit.ir.intake import intake, intake_passes
from int8kit.ir.node_ids import node_id

from ._util import assert_same_outputs, make_model, op_types, rng, vinfo


def _const(name, array):
    return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(array, name))


def _paddle_like():
    r = rng()
    f32 = np.float32
    nodes = [
        _const("w", r.standard_normal((8, 3, 3, 3)).astype(f32)),
        _const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
        _const("g", r.uniform(0.5, 2, 8).astype(f32)),
        _const("b", r.standard_normal(8).astype(f32)),
        _const("m", r.standard_normal(8).astype(f32)),
        _const("v", r.uniform(0.5, 2, 8).astype(f32)),
        _const("fc_w", r.standard_normal((8, 5)).astype(f32)),
        helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad"),
        helper.make_node("Conv", ["xp", "w"], ["c"], name="conv"),
        helper.make_node("Identity", ["c"], ["ci"], name="ident"),
        helper.make_node("BatchNormalization", ["ci", "g", "b", "m", "v"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["gp"], name="gap"),
        helper.make_node("Squeeze", ["gp"], ["sq"], axes=[2, 3], name="squeeze"),
        helper.make_node("MatMul", ["sq", "fc_w"], ["logits"], name="fc"),
        helper.make_node("Dropout", ["logits"], ["dr"], name="drop"),
        helper.make_node("Softmax", ["dr"], ["prob"], axis=1, name="softmax"),
    ]
    return make_model(nodes, [vinfo("x", [2, 3, 9, 9])], [vinfo("prob", [2, 5])], opset=11, ir_version=6)


def test_intake_end_to_end(tmp_path):
    proto = _paddle_like()
    path = tmp_path / "paddle_like.onnx"
    onnx.save(proto, path)
    model = intake(path)
    types = op_types(model)
    for gone in ("Constant", "Pad", "Identity", "BatchNormalization", "Dropout"):
        assert gone not in types
    assert types[:3] == ["Conv", "Relu", "GlobalAveragePool"]
    assert model.opset_imports[""] == 17
    assert [node_id(n) for n in model.graph] == list(range(len(model.graph)))
    for node in model.graph:
        for out in node.outputs:
            assert out.dtype is not None and out.shape is not None, out.name
    assert [o.name for o in model.graph.outputs] == ["prob"]
    feeds = {"x": rng().standard_normal((2, 3, 9, 9)).astype(np.float32)}
    assert_same_outputs(proto, model, feeds)


def test_intake_is_idempotent():
    model = intake(_paddle_like())
    before = [(n.op_type, node_id(n)) for n in model.graph]
    assert not any(p(model).modified for p in intake_passes())
    assert [(n.op_type, node_id(n)) for n in model.graph] == before
