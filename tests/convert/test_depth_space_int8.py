"""PixelShuffle (DepthToSpace) between INT8 convs moves INT8 data: no dequantize around it, and the logits
equal the QDQ file run by onnxruntime with optimisations off (the file's exact semantics)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from int8kit.convert.pipeline import convert

from ._util import QDQGraph, eval_inputs, run_int8kit, run_ort


def _net(op: str, mode: str | None) -> tuple:
    g = QDQGraph(shape=("N", 3, 8, 8), seed=2)
    x = g.qdq("input", 0.02, 128)
    a = g.qdq(g.conv(x, 3, 16, relu=True), 0.03)
    attrs = {"blocksize": 2, **({"mode": mode} if mode else {})}
    moved = g.qdq(g.node(op, [a], name="move", **attrs), 0.03)
    cin = 4 if op == "DepthToSpace" else 64
    y = g.conv(moved, cin, 8, relu=True)
    return g.build([g.node("GlobalAveragePool", [y])])


@pytest.mark.parametrize(("op", "mode"), [("DepthToSpace", "DCR"), ("DepthToSpace", "CRD"), ("SpaceToDepth", None)])
def test_depth_space_moves_int8_data_exactly(op, mode):
    qdq = _net(op, mode)
    result = convert(qdq)
    move = next(n for n in result.model.graph if n.op_type == op)
    assert move.inputs[0].producer().op_type == "Conv"  # reads the INT8 conv's output directly
    assert move.inputs[0].dtype == ir.DataType.UINT8 and move.outputs[0].dtype == ir.DataType.UINT8
    x = eval_inputs(n=8, size=8)
    np.testing.assert_allclose(run_int8kit(result.model, x), run_ort(qdq, x, optimize=False), rtol=0, atol=1e-5)
