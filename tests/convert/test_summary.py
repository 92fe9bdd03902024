"""summary: op counts per precision, the FP32 reasons, isolated INT8 ops, what fused and what not."""

from __future__ import annotations

import numpy as np

from int8kit.convert.config import ConvertConfig
from int8kit.convert.pipeline import convert
from int8kit.ir.node_ids import node_id
from int8kit.scope import Scope

from ._util import QDQGraph, run_until
from .test_place_int8 import _chain


def test_counts_match_the_graph_and_fp32_ops_have_reasons():
    ids = {n.name: node_id(n) for n in run_until(_chain(), "fuse").graph}
    s = convert(_chain(), ConvertConfig(scope=Scope(exclude_ids=(ids["conv2"],)))).summary
    # conv1 INT8; conv2 skipped; pool and flatten then read float; the Gemm quantizes its input
    assert s.rows() == [("Conv", 1, 1), ("Dense", 1, 0), ("Flatten", 0, 1), ("MaxPool", 0, 1)]
    reasons = {op.name: op.reason for op in s.fp32_reasons}
    assert reasons["conv2"] == f"skipped by scope: id {ids['conv2']}" and set(reasons) == {"conv2", "pool", "flatten"}
    # the input and the Gemm's input; conv2's FP32 output is rounded onto the file's grid by conv2 itself
    assert dict(s.conversions) == {"QuantizeLinear": 2}
    text = "\n".join(s.lines())
    assert f"FP32 #{ids['conv2']} Conv conv2: skipped by scope: id {ids['conv2']}" in text


def _sigmoid_sandwich(convs: int):
    g = QDQGraph()
    x = g.qdq(g.node("Sigmoid", ["input"], name="pre"), 0.004, 0, np.uint8)
    for i in range(convs):
        x = g.qdq(g.conv(x, 3, 3, name=f"conv{i}"), 0.05, 0, np.int8)
    return g.build([g.node("Sigmoid", [x], "y", name="post")])


def test_isolated_int8_op_between_fp32_neighbours_is_warned_about():
    s = convert(_sigmoid_sandwich(1)).summary
    assert len(s.isolated) == 1 and "conv0" in s.isolated[0]
    assert any(line.startswith("warning:") and "conv0" in line for line in s.lines())
    assert not convert(_sigmoid_sandwich(2)).summary.isolated  # two INT8 convs in a row: worth it


def test_summary_says_what_fused_and_what_was_refused():
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    a = g.qdq(g.conv(x, 3, 4, relu=True, name="conv_a"), 0.02, 0, np.uint8)  # Conv + bias + Relu fuse
    b = g.conv(a, 4, 4, name="conv_b", output="b")
    r = g.node("Relu", [b], "r")
    s = g.node("Sigmoid", [b], "s")  # a second reader of conv_b: its Relu cannot fuse
    summary = convert(g.build([r, s])).summary
    fused = {rep.pass_name: rep for rep in summary.fusions}
    assert fused["fuse_activation"].fused_names() == ["conv_a"]
    assert [name for name, _ in fused["fuse_activation"].skipped] == ["conv_b"]
    notes = summary.notes()
    assert any(n.startswith("fused: ") and "fuse_activation x1" in n for n in notes)
    assert any(n.startswith("not fused (fuse_activation) conv_b:") and "2 uses" in n for n in notes)
