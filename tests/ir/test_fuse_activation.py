"""Conv/Dense + activation -> post-op, for every supported activation; refusals say why."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.ir.fuse_activation import FuseActivationPass
from int8kit.ir.retype_conv import ConvToInt8kitPass
from int8kit.ops import PostOp

from .fusion_util import assert_equivalent, build, kinds, nodes, post_ops, prepare, randn

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'
X = {"x": randn(2, 3, 5, 5, seed=11, scale=2.0)}


def _run(proto):
    model = prepare(proto)
    ConvToInt8kitPass()(model)
    p = FuseActivationPass()
    modified = p(model).modified
    return model, p.report, modified


CASES = [
    ("y = Relu (c)", {}, "relu"),
    ("y = Clip (c, lo, hi)", {"lo": 0.0, "hi": 6.0}, "clip:0.0:6.0"),
    ("y = Clip (c, lo)", {"lo": 0.0}, "relu"),
    ("y = Clip (c, lo, hi)", {"lo": -1.5, "hi": 2.25}, "clip:-1.5:2.25"),
    ("y = HardSwish (c)", {}, "hardswish"),
    ("y = HardSigmoid <alpha=0.25, beta=0.375> (c)", {}, "hardsigmoid:0.25:0.375"),
    ("y = HardSigmoid (c)", {}, PostOp("hardsigmoid", (0.2, 0.5)).encode()),  # ONNX defaults
    ("y = Sigmoid (c)", {}, "sigmoid"),
    ("y = LeakyRelu <alpha=0.125> (c)", {}, "leakyrelu:0.125"),
    ("y = LeakyRelu (c)", {}, PostOp("leakyrelu", (0.01,)).encode()),
    ("y = Tanh (c)", {}, "tanh"),
]


@pytest.mark.parametrize(("line", "consts", "expected"), CASES, ids=[c[0] for c in CASES])
def test_activation_becomes_post_op(line, consts, expected):
    text = f"""{HEAD}
    g (float[N,3,5,5] x) => (float[N,4,5,5] y) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      {line}
    }}"""
    weights = {"w": randn(4, 3, 3, 3)} | {k: np.array(v, np.float32) for k, v in consts.items()}
    proto = build(text, weights)
    model, report, modified = _run(proto)
    assert modified and kinds(model) == ["int8kit.Conv"]
    conv = nodes(model)["c"]
    assert post_ops(conv) == [expected]
    assert conv.outputs[0].name == "y"
    assert not set(consts) & set(model.graph.initializers)  # Clip bounds dropped with the Clip
    assert report.fused_names() == ["c"]
    assert_equivalent(proto, model, X)


def test_chain_of_activations_fuses_to_a_fixed_point():
    text = f"""{HEAD}
    g (float[1,3,5,5] x) => (float[1,4,5,5] y) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      r = Relu (c)
      y = Clip (r, lo, hi)
    }}"""
    proto = build(text, {"w": randn(4, 3, 3, 3), "lo": np.float32(0), "hi": np.float32(1)})
    model, _, _ = _run(proto)
    assert post_ops(nodes(model)["c"]) == ["relu", "clip:0.0:1.0"]
    assert_equivalent(proto, model, {"x": X["x"][:1]})


def test_activation_of_a_shared_conv_output_is_not_fused():
    text = f"""{HEAD}
    g (float[1,3,5,5] x) => (float[1,4,5,5] y, float[1,4,5,5] z) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      y = Relu (c)
      z = Neg (c)
    }}"""
    proto = build(text, {"w": randn(4, 3, 3, 3)})
    model, report, modified = _run(proto)
    assert not modified and "Relu" in kinds(model) and post_ops(nodes(model)["c"]) == []
    assert "2 uses" in report.reasons("c")[0]
    assert_equivalent(proto, model, {"x": X["x"][:1]})


def test_activation_of_a_graph_output_is_not_fused():
    text = f"""{HEAD}
    g (float[1,3,5,5] x) => (float[1,4,5,5] y, float[1,4,5,5] c) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      y = Sigmoid (c)
    }}"""
    proto = build(text, {"w": randn(4, 3, 3, 3)})
    model, report, modified = _run(proto)
    assert not modified and "Sigmoid" in kinds(model)
    assert "graph output" in report.reasons("c")[0]
    assert_equivalent(proto, model, {"x": X["x"][:1]})


def test_clip_with_runtime_bound_is_refused():
    text = f"""{HEAD}
    g (float[1,3,5,5] x, float hi) => (float[1,4,5,5] y) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      y = Clip (c, lo, hi)
    }}"""
    proto = build(text, {"w": randn(4, 3, 3, 3), "lo": np.float32(0)})
    model, report, modified = _run(proto)
    assert not modified and "Clip" in kinds(model)
    assert "max is not a constant" in report.reasons("y")[0]
