"""to_dot: every node appears with its id and colour class; Graphviz accepts the text."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from int8kit import ops
from int8kit.ir.dot import FP32_COLOR, INT8_COLOR, to_dot, write_dot
from int8kit.ir.infer_shapes import InferShapesPass
from int8kit.ir.node_ids import AssignNodeIdsPass, node_id

from ._util import init, make_model, rng, vinfo


def _mixed_model() -> ir.Model:
    """FP32 conv -> Quantize -> int8kit INT8 conv (relu) -> Dequantize -> FP32 softmax."""
    r = rng()
    nodes = [
        helper.make_node("Conv", ["x", "w_fp"], ["c0"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["c0", "s", "zp"], ["q"], name="quant"),
        helper.make_node(
            "Conv",
            ["q", "w_q", "b"],
            ["c1"],
            name='conv "int8"',
            domain=ops.DOMAIN,
            x_scale=0.1,
            w_scales=[0.01] * 4,
            y_scale=0.1,
            y_type=ops.UINT8,
            post_ops=["relu"],
        ),
        helper.make_node("MaxPool", ["c1"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("DequantizeLinear", ["p", "s", "zp"], ["d"], name="dequant"),
        helper.make_node("Softmax", ["d"], ["y"], name="softmax", axis=1),
    ]
    proto = make_model(
        nodes,
        [vinfo("x", [1, 3, 8, 8])],
        [vinfo("y", None)],
        [
            init("w_fp", r.standard_normal((4, 3, 3, 3)).astype(np.float32)),
            init("w_q", r.integers(-127, 128, (4, 4, 1, 1)).astype(np.int8)),
            init("b", np.zeros(4, np.float32)),
            init("s", np.float32(0.1)),
            init("zp", np.uint8(0)),
        ],
    )
    proto.opset_import.append(helper.make_opsetid(ops.DOMAIN, ops.DOMAIN_VERSION))
    model = ir.serde.deserialize_model(proto)
    InferShapesPass()(model)
    AssignNodeIdsPass()(model)
    return model


def _node_lines(text: str) -> dict[str, str]:
    """dot node name -> its attribute text, for the op nodes (n0, n1, ...)."""
    return dict(re.findall(r"^\s*(n\d+) \[(.*)\];$", text, flags=re.M))


def test_every_node_id_and_colour():
    model = _mixed_model()
    text = to_dot(model, title="mixed")
    assert text.count("{") == text.count("}") and text.startswith("digraph")
    lines = _node_lines(text)
    assert len(lines) == len(model.graph)
    expected_int8 = {"quant", 'conv "int8"', "pool", "dequant"}
    for i, node in enumerate(model.graph):
        attrs = lines[f"n{i}"]
        assert f"#{node_id(node)} {node.op_type}" in attrs
        escaped_name = node.name.replace('"', '\\"')
        assert escaped_name in attrs
        colour = INT8_COLOR if node.name in expected_int8 else FP32_COLOR
        assert f'fillcolor="{colour}"' in attrs, node.name
    assert "+ relu" in lines["n2"]  # post_ops of the int8kit conv
    # edges carry dtype and shape from inference: the uint8 activations are visible
    assert re.search(r'n1 -> n2 \[label="uint8 \[1,4,8,8\]"\]', text)
    assert re.search(r'in0 -> n0 \[label="float32 \[1,3,8,8\]"\]', text)
    assert re.search(r"n5 -> out0", text)
    # weights are not drawn
    assert "w_q" not in text and "w_fp" not in text


def test_write_dot(tmp_path):
    model = _mixed_model()
    path = write_dot(model, tmp_path / "sub" / "g.dot", "title here")
    assert path.read_text() == to_dot(model, "title here")
    assert "title here" in path.read_text()


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")
def test_graphviz_accepts_it(tmp_path):
    path = write_dot(_mixed_model(), tmp_path / "g.dot", 'a "quoted" \\ title')
    svg = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True, text=True, check=True).stdout
    assert "<svg" in svg
    assert svg.count('class="node"') == 6 + 2 + 1  # 6 ops, input and output, legend
    assert "#2 Conv" in svg


def test_plain_model_without_ids():
    proto = make_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [vinfo("x", [2], TensorProto.INT8)],
        [vinfo("y", [2], TensorProto.INT8)],
    )
    text = to_dot(ir.serde.deserialize_model(proto))
    attrs = _node_lines(text)["n0"]
    assert 'label="Relu\\n"' in attrs  # no id yet: no "#<id>" prefix
    assert INT8_COLOR in attrs  # int8 input
