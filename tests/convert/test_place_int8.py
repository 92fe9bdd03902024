"""place_int8: every node INT8 or FP32 with the reason, from the scope (apply_scope) and the ranges."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.convert.config import ConvertConfig
from int8kit.convert.place_int8 import PRECISION_KEY, REASON_KEY
from int8kit.ir.node_ids import node_id
from int8kit.scope import Scope

from ._util import QDQGraph, run_until


def _chain():
    """conv1 -> conv2 -> MaxPool -> Flatten -> Gemm, every activation with a Q/DQ pair."""
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    c = g.qdq(g.conv(x, 3, 4, relu=True, name="conv1"), 0.01, 0, np.uint8)
    c = g.qdq(g.conv(c, 4, 4, relu=True, name="conv2"), 0.01, 0, np.uint8)
    p = g.node("MaxPool", [c], "pool", name="pool", kernel_shape=[2, 2], strides=[2, 2])
    f = g.node("Flatten", [p], "flat", name="flatten")
    w, _, _ = g.weight(g.rng.standard_normal((5, 64)).astype(np.float32))
    return g.build([g.node("Gemm", [f, w], "y", name="fc", transB=1)])


def _placed(model, **config):
    m = run_until(model, "place_int8", ConvertConfig(scope=Scope(**config)))
    return {n.name: (n.metadata_props.get(PRECISION_KEY), n.metadata_props.get(REASON_KEY, "")) for n in m.graph}


def test_everything_with_ranges_runs_int8():
    placed = _placed(_chain())
    assert {name: p for name, (p, _) in placed.items()} == dict.fromkeys(placed, "int8")


def test_skipped_id_stays_fp32_and_the_pool_after_it_too():
    ids = {n.name: node_id(n) for n in run_until(_chain(), "fuse").graph}
    placed = _placed(_chain(), exclude_ids=(ids["conv2"],))
    assert placed["conv2"] == ("fp32", f"skipped by scope: id {ids['conv2']}")
    assert placed["conv1"][0] == "int8"
    # data movement on FP32 input stays FP32 (INT8 there would only add conversions)
    assert placed["pool"][0] == "fp32" and "input arrives in FP32" in placed["pool"][1]
    assert placed["flatten"][0] == "fp32"
    assert placed["fc"][0] == "int8"  # it has its own range: quantizes its float input


def test_missing_range_stays_fp32_and_names_the_tensor():
    g = QDQGraph()
    c = g.conv("input", 3, 4, name="conv1", output="c1")  # no Q/DQ on its input
    c = g.qdq(c, 0.05, 0, np.int8)
    y = g.conv(c, 4, 4, name="conv2", output="y")
    placed = _placed(g.build([y]))
    assert placed["conv1"] == ("fp32", "no calibrated range for input input")
    assert placed["conv2"][0] == "int8"


def test_op_types_scope_keeps_other_types_fp32():
    placed = _placed(_chain(), op_types=("Conv",))
    assert placed["conv1"][0] == placed["conv2"][0] == "int8"
    assert placed["fc"] == ("fp32", "Gemm not in the scope's op types (Conv)")
    assert placed["pool"] == ("fp32", "MaxPool not in the scope's op types (Conv)")
    assert placed["flatten"] == ("fp32", "Flatten not in the scope's op types (Conv)")


@pytest.mark.parametrize(
    ("kinds", "dw", "regular"), [(("Conv[depthwise]",), "int8", "fp32"), (("Conv[!depthwise]",), "fp32", "int8")]
)
def test_depthwise_is_a_predicate_on_conv(kinds, dw, regular):
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    c = g.qdq(g.conv(x, 3, 6, name="regular"), 0.05, 0, np.int8)
    d = g.qdq(g.conv(c, 6, 6, group=6, name="dw"), 0.05, 0, np.int8)
    y = g.conv(d, 6, 6, group=6, name="dw2", output="y")  # dw feeds an INT8 op: not a lone depthwise conv
    placed = _placed(g.build([y]), op_types=kinds)
    assert placed["dw"][0] == dw and placed["regular"][0] == regular


def _fp32_dw_fp32(neighbours_int8: bool):
    g = QDQGraph()
    x = g.qdq("input", 0.02, 0, np.int8)
    a = g.qdq(g.conv(x, 3, 8, k=1, name="expand"), 0.05, 0, np.int8)
    d = g.qdq(g.conv(a, 8, 8, group=8, name="dw"), 0.05, 0, np.int8)
    y = g.conv(d, 8, 4, k=1, name="project", output="y")
    model = g.build([y])
    ids = {n.name: node_id(n) for n in run_until(model, "fuse").graph}
    skip = () if neighbours_int8 else (ids["expand"], ids["project"])
    return model, skip


def test_a_lone_depthwise_conv_between_fp32_convs_runs_fp32_and_says_why():
    """Its INT8 form needs a quantize pass over its input that an FP32 neighbour could have rounded for free."""
    from int8kit.convert.pipeline import convert
    from int8kit.scope import Scope

    from ._util import assert_agrees, run_int8kit, run_ort

    model, skip = _fp32_dw_fp32(neighbours_int8=False)
    result = convert(model, ConvertConfig(scope=Scope(exclude_ids=skip)))
    reasons = {op.name: op.reason for op in result.summary.fp32_reasons}
    assert "lone depthwise" in reasons["dw"], reasons
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    # FP32 on the file's rounded values: off only where accumulation order flips one rounding step
    assert_agrees(run_int8kit(result.model, x).reshape(4, -1), run_ort(model, x).reshape(4, -1), top1=0.75)
    model, skip = _fp32_dw_fp32(neighbours_int8=True)
    assert _placed(model)["dw"][0] == "int8"  # INT8 neighbours: it stays INT8
