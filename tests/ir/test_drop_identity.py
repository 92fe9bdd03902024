"""DropIdentityPass: Identity/Dropout/one-input Concat vanish, consumers are rewired, output names stay."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import helper

from int8kit.ir.drop_identity import DropIdentityPass

from ._util import assert_same_outputs, init, make_model, op_types, rng, vinfo


def _feeds():
    return {"x": rng().standard_normal((2, 4)).astype(np.float32)}


def test_identity_and_dropout_removed_output_names_kept():
    proto = make_model(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Identity", ["r"], ["i1"]),
            helper.make_node("Dropout", ["i1", "ratio"], ["d", "mask"]),
            helper.make_node("Add", ["d", "i1"], ["a"]),
            helper.make_node("Identity", ["a"], ["y"]),  # graph output fed by an Identity
        ],
        [vinfo("x", [2, 4])],
        [vinfo("y", [2, 4])],
        [init("ratio", np.float32(0.5))],
    )
    model = ir.serde.deserialize_model(proto)
    assert DropIdentityPass()(model).modified
    assert op_types(model) == ["Relu", "Add"]
    assert [o.name for o in model.graph.outputs] == ["y"]
    assert model.graph.outputs[0].producer().op_type == "Add"
    assert_same_outputs(proto, model, _feeds())


def test_one_input_concat_removed_and_wider_concats_kept():
    proto = make_model(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Concat", ["r"], ["c1"], axis=1),  # torch DenseNet's first concat
            helper.make_node("Concat", ["c1", "r"], ["c2"], axis=1),
            helper.make_node("Neg", ["c2"], ["y"]),
        ],
        [vinfo("x", [2, 4])],
        [vinfo("y", [2, 8])],
    )
    model = ir.serde.deserialize_model(proto)
    assert DropIdentityPass()(model).modified
    assert op_types(model) == ["Relu", "Concat", "Neg"]
    assert [v.name for v in next(n for n in model.graph if n.op_type == "Concat").inputs] == ["r", "r"]
    assert_same_outputs(proto, model, _feeds())


def test_identity_between_input_and_output_is_kept():
    proto = make_model(
        [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["z"])],
        [vinfo("x", [2, 4])],
        [vinfo("y", [2, 4]), vinfo("z", [2, 4])],
    )
    model = ir.serde.deserialize_model(proto)
    assert not DropIdentityPass()(model).modified
    assert_same_outputs(proto, model, _feeds())


def test_identity_from_another_output_is_kept():
    """y = Identity(z) where z is itself a graph output: renaming z would lose an output name."""
    proto = make_model(
        [helper.make_node("Relu", ["x"], ["z"]), helper.make_node("Identity", ["z"], ["y"])],
        [vinfo("x", [2, 4])],
        [vinfo("z", [2, 4]), vinfo("y", [2, 4])],
    )
    model = ir.serde.deserialize_model(proto)
    DropIdentityPass()(model)
    assert [o.name for o in model.graph.outputs] == ["z", "y"]
    assert_same_outputs(proto, model, _feeds())


def test_dropout_whose_mask_is_read_is_kept():
    proto = make_model(
        [helper.make_node("Dropout", ["x"], ["d", "mask"]), helper.make_node("Cast", ["mask"], ["m"], to=1)],
        [vinfo("x", [2, 4])],
        [vinfo("d", [2, 4]), vinfo("m", [2, 4])],
    )
    model = ir.serde.deserialize_model(proto)
    assert not DropIdentityPass()(model).modified
    assert "Dropout" in op_types(model)


def test_dropout_in_training_mode_is_kept():
    proto = make_model(
        [helper.make_node("Dropout", ["x", "", "train"], ["d"]), helper.make_node("Relu", ["d"], ["y"])],
        [vinfo("x", [2, 4])],
        [vinfo("y", [2, 4])],
        [init("train", np.array(True))],
    )
    model = ir.serde.deserialize_model(proto)
    assert not DropIdentityPass()(model).modified
