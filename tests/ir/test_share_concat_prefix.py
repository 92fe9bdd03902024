"""ShareConcatPrefixPass: a Concat whose leading inputs are another Concat's (same axis) reads that one's
output; the values stay those onnxruntime computes on the original, and concats that do not share a
prefix on the same axis are left alone."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import helper
from onnx_ir.passes.common import TopologicalSortPass

from int8kit.ir.share_concat_prefix import ShareConcatPrefixPass

from ._util import assert_same_outputs, make_model, rng, vinfo

SHAPE = [1, 2, 3, 3]


def _dense_block(layers: int, reverse: bool = False):
    """torch's DenseNet block: layer k concatenates x and every earlier layer's output."""
    nodes, features = [], ["x"]
    for k in range(layers):
        nodes.append(helper.make_node("Concat", list(features), [f"cat{k}"], name=f"cat{k}", axis=1))
        nodes.append(helper.make_node("Relu", [f"cat{k}"], [f"r{k}"]))
        nodes.append(helper.make_node("ReduceMean", [f"r{k}"], [f"n{k}"], axes=[1], keepdims=1))
        features.append(f"n{k}")
    nodes.append(helper.make_node("Concat", list(features), ["y"], name="out", axis=1))
    if reverse:  # a Concat listed before the shorter one it can read: the sort must fix the order
        nodes = nodes[::-1]
    width = SHAPE[1] + layers
    return make_model(nodes, [vinfo("x", SHAPE)], [vinfo("y", [1, width, 3, 3])], opset=17)


def _inputs(model: ir.Model) -> dict[str, list[str]]:
    return {n.name: [v.name for v in n.inputs] for n in model.graph if n.op_type == "Concat"}


def _run(proto):
    model = ir.serde.deserialize_model(proto)
    result = ShareConcatPrefixPass()(model)
    TopologicalSortPass()(model)
    return model, result.modified


def test_each_concat_reads_the_previous_one_and_computes_the_same():
    proto = _dense_block(4)
    model, modified = _run(proto)
    assert modified
    assert _inputs(model) == {
        "cat0": ["x"],
        "cat1": ["x", "n0"],
        "cat2": ["cat1", "n1"],
        "cat3": ["cat2", "n2"],
        "out": ["cat3", "n3"],
    }
    x = rng().standard_normal(SHAPE).astype(np.float32)
    assert_same_outputs(proto, model, {"x": x})


def test_a_concat_before_its_prefix_in_node_order_still_runs_in_order():
    proto = _dense_block(3, reverse=True)
    model, _ = _run(proto)
    assert _inputs(model)["out"] == ["cat2", "n2"]
    x = rng().standard_normal(SHAPE).astype(np.float32)
    assert_same_outputs(proto, model, {"x": x})


def test_other_axes_and_non_prefixes_are_left_alone():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Neg", ["x"], ["b"]),
        helper.make_node("Concat", ["x", "a"], ["c1"], name="c1", axis=1),
        helper.make_node("Concat", ["x", "a", "b"], ["c2"], name="c2", axis=2),  # other axis
        helper.make_node("Concat", ["a", "x", "b"], ["c3"], name="c3", axis=1),  # not a prefix
        helper.make_node("Concat", ["x", "b", "a"], ["c4"], name="c4", axis=1),  # order matters
    ]
    proto = make_model(
        nodes,
        [vinfo("x", SHAPE)],
        [vinfo("c1", [1, 4, 3, 3]), vinfo("c2", [1, 2, 9, 3]), vinfo("c3", [1, 6, 3, 3]), vinfo("c4", [1, 6, 3, 3])],
    )
    model, modified = _run(proto)
    assert not modified
    assert _inputs(model) == {"c1": ["x", "a"], "c2": ["x", "a", "b"], "c3": ["a", "x", "b"], "c4": ["x", "b", "a"]}
