"""Conv + x*Sigmoid(x) (SiLU) and Conv + x*HardSigmoid(x; 1/6, 0.5) (HardSwish) become one post-op."""

from __future__ import annotations

import pytest

from int8kit.ir.fuse_gated_activation import FuseGatedActivationPass
from int8kit.ir.retype_conv import ConvToInt8kitPass

from .fusion_util import assert_equivalent, build, kinds, nodes, post_ops, prepare, randn

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'
X = {"x": randn(2, 3, 5, 5, seed=3, scale=2.0)}


def _run(proto):
    model = prepare(proto)
    ConvToInt8kitPass()(model)
    p = FuseGatedActivationPass()
    modified = p(model).modified
    return model, modified


@pytest.mark.parametrize(
    ("gate", "mul", "expected"),
    [
        ("g = Sigmoid (c)", "y = Mul (c, g)", "swish:1.0"),
        ("g = Sigmoid (c)", "y = Mul (g, c)", "swish:1.0"),
        ("g = HardSigmoid <alpha=0.16666667, beta=0.5> (c)", "y = Mul (c, g)", "hardswish"),
    ],
)
def test_gated_activation_becomes_one_post_op(gate, mul, expected):
    text = f"""{HEAD}
    g (float[N,3,5,5] x) => (float[N,4,5,5] y) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      {gate}
      {mul}
    }}"""
    proto = build(text, {"w": randn(4, 3, 3, 3)})
    model, modified = _run(proto)
    assert modified and kinds(model) == ["int8kit.Conv"]
    conv = nodes(model)["c"]
    assert post_ops(conv) == [expected] and conv.outputs[0].name == "y"
    assert_equivalent(proto, model, X)


@pytest.mark.parametrize(
    "body",
    [
        # the gate reads another tensor
        "g = Sigmoid (x2)\n y = Mul (c, g)",
        # HardSigmoid with constants that are not HardSwish's
        "g = HardSigmoid (c)\n y = Mul (c, g)",
        # the gate output is read by another node too
        "g = Sigmoid (c)\n m = Mul (c, g)\n y = Add (m, g)",
    ],
)
def test_other_patterns_are_left_alone(body):
    text = f"""{HEAD}
    g (float[N,3,5,5] x) => (float[N,4,5,5] y) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      x2 = Neg (c)
      {body}
    }}"""
    proto = build(text, {"w": randn(4, 3, 3, 3)})
    model, modified = _run(proto)
    assert not modified
    assert_equivalent(proto, model, X)
