"""Residual Add -> "sum" post-op of the later conv; broadcasts, shared outputs and graph outputs refuse."""

from __future__ import annotations

from int8kit.ir.fuse_residual_add import FuseResidualAddPass
from int8kit.ir.optimize import run_fusions
from int8kit.ir.retype_conv import ConvToInt8kitPass

from .fusion_util import assert_equivalent, build, kinds, nodes, post_ops, prepare, randn

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'
X = {"x": randn(2, 4, 5, 5, seed=21)}


def _residual(proto):
    model = prepare(proto)
    ConvToInt8kitPass()(model)
    p = FuseResidualAddPass()
    modified = p(model).modified
    return model, p.report, modified


def test_resnet_block_becomes_conv_sum_relu():
    text = f"""{HEAD}
    g (float[N,4,5,5] x) => (float[N,4,5,5] y) {{
      a = Conv <pads=[1,1,1,1]> (x, w1, b1)
      r = Relu (a)
      c = Conv <pads=[1,1,1,1]> (r, w2, b2)
      s = Add (c, x)
      y = Relu (s)
    }}"""
    w = {
        "w1": randn(4, 4, 3, 3),
        "b1": randn(4, seed=1),
        "w2": randn(4, 4, 3, 3, seed=2),
        "b2": randn(4, seed=3),
    }
    proto = build(text, w)
    model = prepare(proto)
    reports = run_fusions(model)
    assert kinds(model) == ["int8kit.Conv", "int8kit.Conv"]
    a, c = nodes(model)["a"], nodes(model)["c"]
    assert post_ops(a) == ["relu"] and post_ops(c) == ["sum", "relu"]
    assert c.inputs[3].name == "x" and c.outputs[0].name == "y"
    assert "s" in c.metadata_props["int8kit.absorbed"]
    fused = {r.pass_name: r.fused_names() for r in reports}
    assert fused["fuse_residual_add"] == ["c"]
    assert_equivalent(proto, model, X)


def test_later_producer_takes_the_sum():
    # projection shortcut: both operands are convs; p comes later in topological order
    text = f"""{HEAD}
    g (float[1,4,5,5] x) => (float[1,6,5,5] y) {{
      c = Conv <pads=[1,1,1,1]> (x, w1)
      p = Conv (x, w2)
      y = Add (c, p)
    }}"""
    proto = build(text, {"w1": randn(6, 4, 3, 3), "w2": randn(6, 4, 1, 1, seed=4)})
    model, report, modified = _residual(proto)
    assert modified and kinds(model) == ["int8kit.Conv", "int8kit.Conv"]
    p = nodes(model)["p"]
    assert post_ops(p) == ["sum"] and p.inputs[3].name == "c"
    assert post_ops(nodes(model)["c"]) == []
    assert_equivalent(proto, model, {"x": X["x"][:1]})


def test_falls_back_to_the_earlier_producer_and_keeps_topological_order():
    # p (later) is also read by Neg, so c takes the sum and must move after p
    text = f"""{HEAD}
    g (float[1,4,5,5] x) => (float[1,6,5,5] y, float[1,6,5,5] z) {{
      c = Conv <pads=[1,1,1,1]> (x, w1)
      p = Conv (x, w2)
      z = Neg (p)
      y = Add (c, p)
    }}"""
    proto = build(text, {"w1": randn(6, 4, 3, 3), "w2": randn(6, 4, 1, 1, seed=4)})
    model, report, modified = _residual(proto)
    assert modified
    c = nodes(model)["c"]
    assert post_ops(c) == ["sum"] and c.inputs[3].name == "p"
    order = [n.name for n in model.graph]
    assert order.index("p") < order.index("c")
    assert_equivalent(proto, model, {"x": X["x"][:1]})  # onnxruntime rejects unsorted graphs


def _refused(text, weights):
    proto = build(text, weights)
    model, report, modified = _residual(proto)
    assert not modified and "Add" in kinds(model)
    assert all(post_ops(n) == [] for n in model.graph if n.domain)
    assert_equivalent(proto, model, {"x": X["x"][:1]})
    return report.reasons("y")


def test_broadcast_add_is_not_a_sum():
    text = f"""{HEAD}
    g (float[1,4,5,5] x) => (float[1,4,5,5] y) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      m = GlobalAveragePool (x)
      y = Add (c, m)
    }}"""
    (reason,) = _refused(text, {"w": randn(4, 4, 3, 3)})
    assert "shapes differ" in reason


def test_conv_output_with_two_consumers_is_not_a_sum():
    text = f"""{HEAD}
    g (float[1,4,5,5] x) => (float[1,4,5,5] y, float[1,4,5,5] z) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      y = Add (c, x)
      z = Relu (c)
    }}"""
    (reason,) = _refused(text, {"w": randn(4, 4, 3, 3)})
    assert "2 uses" in reason


def test_conv_output_that_is_a_graph_output_is_not_a_sum():
    text = f"""{HEAD}
    g (float[1,4,5,5] x) => (float[1,4,5,5] y, float[1,4,5,5] c) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      y = Add (x, c)
    }}"""
    (reason,) = _refused(text, {"w": randn(4, 4, 3, 3)})
    assert "graph output" in reason


def test_relu_before_sum_is_kept_in_order():
    text = f"""{HEAD}
    g (float[1,4,5,5] x) => (float[1,4,5,5] y) {{
      c = Conv <pads=[1,1,1,1]> (x, w)
      r = Relu (c)
      y = Add (x, r)
    }}"""
    proto = build(text, {"w": randn(4, 4, 3, 3)})
    model = prepare(proto)
    run_fusions(model)
    assert post_ops(nodes(model)["c"]) == ["relu", "sum"]
    assert_equivalent(proto, model, {"x": X["x"][:1]})
