"""Conv/Dense + Add(per-channel constant) folds into B; anything else stays an Add, with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.ir.fuse_bias_add import FuseBiasAddPass
from int8kit.ir.retype_conv import ConvToInt8kitPass

from .fusion_util import assert_equivalent, build, kinds, nodes, prepare, randn

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'


def _fused(proto):
    model = prepare(proto)
    ConvToInt8kitPass()(model)
    p = FuseBiasAddPass()
    result = p(model)
    return model, p.report, result.modified


@pytest.mark.parametrize("shape", [(1, 4, 1, 1), (4, 1, 1), (1,), ()])
@pytest.mark.parametrize("with_bias", [True, False])
def test_per_channel_constant_folds_into_bias(shape, with_bias):
    conv = "c = Conv <pads=[1,1,1,1]> (x, w, b)" if with_bias else "c = Conv <pads=[1,1,1,1]> (x, w)"
    text = f"""{HEAD}
    g (float[N,3,6,6] x) => (float[N,4,6,6] y) {{
      {conv}
      y = Add (c, k)
    }}"""
    weights = {"w": randn(4, 3, 3, 3), "k": randn(*shape, seed=5)}
    if with_bias:
        weights["b"] = randn(4, seed=6)
    proto = build(text, weights)
    model, report, modified = _fused(proto)
    assert modified and kinds(model) == ["int8kit.Conv"]
    conv_node = nodes(model)["c"]
    assert conv_node.outputs[0].name == "y" and model.graph.outputs[0] is conv_node.outputs[0]
    expected = np.broadcast_to(weights["k"].reshape(-1), (4,)) + weights.get("b", 0)
    np.testing.assert_allclose(conv_node.inputs[2].const_value.numpy(), expected, rtol=1e-6)
    assert "k" not in model.graph.initializers  # the folded constant is gone
    assert report.fused_names() == ["c"]
    assert_equivalent(proto, model, {"x": randn(2, 3, 6, 6, seed=7)})


def _refused(text, weights, node="y"):
    proto = build(text, weights)
    model, report, modified = _fused(proto)
    assert not modified
    assert kinds(model).count("Add") == 1
    assert_equivalent(proto, model, {"x": randn(1, 3, 4, 4, seed=8)})
    return report.reasons(node)


def test_spatially_varying_constant_is_not_a_bias():
    text = f"""{HEAD}
    g (float[1,3,4,4] x) => (float[1,4,4,4] y) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      y = Add (c, k)
    }}"""
    (reason,) = _refused(text, {"w": randn(4, 3, 3, 3), "k": randn(1, 4, 4, 4)})
    assert "not a per-output-channel vector" in reason


def test_conv_output_with_two_consumers_is_not_folded():
    text = f"""{HEAD}
    g (float[1,3,4,4] x) => (float[1,4,4,4] y, float[1,4,4,4] z) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      y = Add (c, k)
      z = Relu (c)
    }}"""
    (reason,) = _refused(text, {"w": randn(4, 3, 3, 3), "k": randn(4, 1, 1)}, node="c")
    assert "2 uses" in reason


def test_conv_output_that_is_a_graph_output_is_not_folded():
    text = f"""{HEAD}
    g (float[1,3,4,4] x) => (float[1,4,4,4] y, float[1,4,4,4] c) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      y = Add (c, k)
    }}"""
    (reason,) = _refused(text, {"w": randn(4, 3, 3, 3), "k": randn(4, 1, 1)}, node="c")
    assert "graph output" in reason


def test_add_of_a_runtime_tensor_is_left_to_the_residual_pass():
    text = f"""{HEAD}
    g (float[1,3,4,4] x, float[1,4,1,1] s) => (float[1,4,4,4] y) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      y = Add (c, s)
    }}"""
    proto = build(text, {"w": randn(4, 3, 3, 3)})
    model, report, modified = _fused(proto)
    assert not modified and kinds(model) == ["int8kit.Conv", "Add"]
