"""FoldPadIntoConvPass: zero spatial Pads merge into Conv pads; any other Pad stays."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper

from int8kit.ir.fold_pad_into_conv import FoldPadIntoConvPass

from ._util import assert_same_outputs, init, make_model, op_types, rng, vinfo

SHAPE = [2, 3, 7, 8]


def _model(pads, mode="constant", value=None, conv_pads=(1, 0, 0, 2), extra_consumer=None, opset=17):
    r = rng()
    w = r.standard_normal((4, 3, 3, 3)).astype(np.float32)
    inits = [init("w", w), init("pads", np.array(pads, dtype=np.int64))]
    pad_inputs = ["x", "pads"]
    if value is not None:
        inits.append(init("value", np.float32(value)))
        pad_inputs.append("value")
    nodes = [
        helper.make_node("Pad", pad_inputs, ["p"], mode=mode, name="pad"),
        helper.make_node("Conv", ["p", "w"], ["y"], pads=list(conv_pads), name="conv"),
    ]
    outputs = [vinfo("y", None)]
    if extra_consumer:
        nodes.append(helper.make_node(extra_consumer, ["p"], ["z"]))
        outputs.append(vinfo("z", None))
    return make_model(nodes, [vinfo("x", SHAPE)], outputs, inits, opset=opset)


def _feeds():
    return {"x": rng().standard_normal(SHAPE).astype(np.float32)}


@pytest.mark.parametrize("value", [None, 0.0])
def test_zero_spatial_pad_folds(value):
    pads = [0, 0, 1, 2, 0, 0, 3, 0]  # asymmetric, H and W only
    proto = _model(pads, value=value)
    model = ir.serde.deserialize_model(proto)
    assert FoldPadIntoConvPass()(model).modified
    assert op_types(model) == ["Conv"]
    conv = model.graph[0]
    # conv pads [top, left, bottom, right] = (1, 0, 0, 2) + Pad's (1, 2, 3, 0)
    assert list(conv.attributes.get_ints("pads")) == [2, 2, 3, 2]
    assert conv.inputs[0] is model.graph.inputs[0]
    assert "pads" not in model.graph.initializers
    assert_same_outputs(proto, model, _feeds())


def test_pad_feeding_two_convs_folds_into_both():
    r = rng()
    proto = make_model(
        [
            helper.make_node("Pad", ["x", "pads"], ["p"]),
            helper.make_node("Conv", ["p", "w1"], ["y1"]),
            helper.make_node("Conv", ["p", "w2"], ["y2"], pads=[1, 1, 1, 1]),
        ],
        [vinfo("x", SHAPE)],
        [vinfo("y1", None), vinfo("y2", None)],
        [
            init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
            init("w1", r.standard_normal((2, 3, 3, 3)).astype(np.float32)),
            init("w2", r.standard_normal((5, 3, 1, 1)).astype(np.float32)),
        ],
    )
    model = ir.serde.deserialize_model(proto)
    assert FoldPadIntoConvPass()(model).modified
    assert op_types(model) == ["Conv", "Conv"]
    assert_same_outputs(proto, model, _feeds())


@pytest.mark.parametrize(
    ("pads", "kwargs"),
    [
        ([0, 0, 1, 1, 0, 0, 1, 1], {"value": 1.5}),  # non-zero fill
        ([0, 0, 1, 1, 0, 0, 1, 1], {"mode": "reflect"}),
        ([1, 0, 1, 1, 0, 0, 1, 1], {}),  # pads the batch dim
        ([0, 0, -1, 0, 0, 0, 1, 1], {}),  # negative = crop
        ([0, 0, 1, 1, 0, 0, 1, 1], {"extra_consumer": "Relu"}),  # someone else reads the padded tensor
    ],
)
def test_unfoldable_pads_stay(pads, kwargs):
    proto = _model(pads, **kwargs)
    model = ir.serde.deserialize_model(proto)
    assert not FoldPadIntoConvPass()(model).modified
    assert "Pad" in op_types(model)
    assert_same_outputs(proto, model, _feeds())


def test_conv_with_auto_pad_is_not_touched():
    r = rng()
    proto = make_model(
        [
            helper.make_node("Pad", ["x", "pads"], ["p"]),
            helper.make_node("Conv", ["p", "w"], ["y"], auto_pad="SAME_UPPER"),
        ],
        [vinfo("x", SHAPE)],
        [vinfo("y", None)],
        [
            init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
            init("w", r.standard_normal((2, 3, 3, 3)).astype(np.float32)),
        ],
    )
    model = ir.serde.deserialize_model(proto)
    assert not FoldPadIntoConvPass()(model).modified


def test_opset18_axes_input():
    r = rng()
    proto = make_model(
        [
            helper.make_node("Pad", ["x", "pads", "", "axes"], ["p"]),
            helper.make_node("Conv", ["p", "w"], ["y"]),
        ],
        [vinfo("x", SHAPE)],
        [vinfo("y", None)],
        [
            init("pads", np.array([2, 1, 0, 3], np.int64)),  # axes (3, 2): W +2/+0, H +1/+3
            init("axes", np.array([3, -2], np.int64)),
            init("w", r.standard_normal((2, 3, 3, 3)).astype(np.float32)),
        ],
        opset=18,
        ir_version=9,
    )
    model = ir.serde.deserialize_model(proto)
    assert FoldPadIntoConvPass()(model).modified
    assert list(model.graph[0].attributes.get_ints("pads")) == [1, 2, 3, 0]
    assert_same_outputs(proto, model, _feeds())
