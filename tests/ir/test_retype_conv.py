"""ONNX Conv -> int8kit.Conv: explicit attributes, auto_pad resolved, identity of the node kept."""

from __future__ import annotations

import pytest

from int8kit import ops
from int8kit.ir.retype_conv import ConvToInt8kitPass, same_pads

from .fusion_util import assert_equivalent, build, kinds, nodes, prepare, randn


def _conv_model(attrs: str, x_shape: str = "N,3,9,9"):
    text = f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[{x_shape}] x) => (float[N,4,Ho,Wo] y) {{
      y = Conv <{attrs}> (x, w, b)
    }}"""
    return build(text, {"w": randn(4, 3, 3, 3), "b": randn(4, seed=1)})


def test_defaults_become_explicit_and_node_identity_is_kept():
    proto = _conv_model("kernel_shape=[3,3]")
    model = prepare(proto)
    conv = nodes(model)["y"]
    conv.metadata_props["int8kit.id"] = "7"
    p = ConvToInt8kitPass()
    assert p(model).modified
    assert conv.graph is model.graph and kinds(model) == ["int8kit.Conv"]
    assert conv.name == "y" and conv.metadata_props["int8kit.id"] == "7" and conv.outputs[0].name == "y"
    a = conv.attributes
    assert list(a["strides"].as_ints()) == [1, 1] and list(a["dilations"].as_ints()) == [1, 1]
    assert list(a["pads"].as_ints()) == [0, 0, 0, 0] and a["group"].as_int() == 1
    assert list(a["post_ops"].as_strings()) == []
    assert model.opset_imports[ops.DOMAIN] == ops.DOMAIN_VERSION
    assert p.report.fused_names() == ["y"]
    assert_equivalent(proto, model, {"x": randn(2, 3, 9, 9, seed=3)})


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("stride", [1, 2])
def test_auto_pad_resolved_like_onnxruntime(auto_pad, stride):
    # (onnxruntime refuses dilation with SAME padding, so the reference cannot check that case)
    proto = _conv_model(f'auto_pad="{auto_pad}", strides=[{stride},{stride}]', "N,3,9,10")
    model = prepare(proto)
    ConvToInt8kitPass()(model)
    pads = list(nodes(model)["y"].attributes["pads"].as_ints())
    if auto_pad != "VALID" and stride == 2:
        assert pads != [0, 0, 0, 0]
    assert_equivalent(proto, model, {"x": randn(1, 3, 9, 10, seed=4)})


def test_same_pads_follows_the_onnx_formula():
    # size 9, k 3, stride 2: output 5, total pad (5-1)*2 + 3 - 9 = 2; size 10: output 5, total 1
    assert same_pads(9, 3, 2, 1, upper=True) == (1, 1)
    assert same_pads(10, 3, 2, 1, upper=True) == (0, 1)
    assert same_pads(10, 3, 2, 1, upper=False) == (1, 0)


def test_auto_pad_with_unknown_spatial_shape_is_refused_with_a_reason():
    proto = _conv_model('auto_pad="SAME_UPPER"', "N,3,H,W")
    model = prepare(proto)
    p = ConvToInt8kitPass()
    assert not p(model).modified
    assert kinds(model) == ["Conv"]
    assert "spatial shape" in p.report.reasons("y")[0]


def test_non_constant_weight_and_1d_conv_are_refused():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,3,8,8] x, float[4,3,3,3] w, float[1,3,8] s) => (float[1,4,6,6] y, float[1,4,6] z) {
      y = Conv (x, w)
      z = Conv (s, v)
    }"""
    model = prepare(build(text, {"v": randn(4, 3, 3)}))
    p = ConvToInt8kitPass()
    assert not p(model).modified
    assert "not a constant" in p.report.reasons("y")[0]
    assert "1-D" in p.report.reasons("z")[0]
    assert kinds(model) == ["Conv", "Conv"]
    assert ops.DOMAIN not in model.opset_imports


def test_depthwise_group_is_kept():
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,6,6] x) => (float[1,4,3,3] y) {
      y = Conv <group=4, strides=[2,2], pads=[1,1,0,0]> (x, w)
    }"""
    proto = build(text, {"w": randn(4, 1, 3, 3)})
    model = prepare(proto)
    ConvToInt8kitPass()(model)
    conv = nodes(model)["y"]
    assert conv.attributes["group"].as_int() == 4
    assert list(conv.attributes["pads"].as_ints()) == [1, 1, 0, 0]
    assert_equivalent(proto, model, {"x": randn(1, 4, 6, 6, seed=2)})
