"""ExpandVariadicPass: Sum/Max/Min/Mean of 1..4 tensors become two-input ops computing the same values
(onnxruntime on the original is the reference), and the output keeps its name."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper

from int8kit.ir.expand_variadic import ExpandVariadicPass

from ._util import assert_same_outputs, make_model, op_types, rng, vinfo

NAMES = ["a", "b", "c", "d"]


@pytest.mark.parametrize("op", ["Sum", "Max", "Min", "Mean"])
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_variadic_op_becomes_binary_ops_with_the_same_values(op, count):
    inputs = NAMES[:count]
    proto = make_model(
        [helper.make_node("Relu", [n], [f"r{n}"]) for n in inputs]
        + [helper.make_node(op, [f"r{n}" for n in inputs], ["y"], name="variadic")],
        [vinfo(n, [2, 3, 4]) for n in inputs],
        [vinfo("y", [2, 3, 4])],
    )
    model = ir.serde.deserialize_model(proto)
    ExpandVariadicPass()(model)
    assert all(len(n.inputs) <= 2 for n in model.graph)
    assert "Sum" not in op_types(model) and "Mean" not in op_types(model)
    assert [o.name for o in model.graph.outputs] == ["y"]
    feeds = {n: rng().standard_normal((2, 3, 4)).astype(np.float32) * (i + 1) for i, n in enumerate(inputs)}
    assert_same_outputs(proto, model, feeds)
