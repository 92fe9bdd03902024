"""check_supported: every unsupported op type is listed with its nodes; supported models pass."""

from __future__ import annotations

import onnx_ir as ir
import pytest
from onnx import helper

from int8kit import ops
from int8kit.errors import UnsupportedOpError
from int8kit.ir.check_supported import check_supported, op_key, unsupported_ops

from ._util import make_model, vinfo


def _model():
    proto = make_model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="relu"),
            helper.make_node("Erf", ["a"], ["b"], name="erf1"),
            helper.make_node("Erf", ["b"], ["c"], name="erf2"),
            helper.make_node("Requantize", ["c"], ["d"], name="rq", domain=ops.DOMAIN),
            helper.make_node("Sin", ["d"], ["y"]),
        ],
        [vinfo("x", [2])],
        [vinfo("y", [2])],
    )
    proto.opset_import.append(helper.make_opsetid(ops.DOMAIN, 1))
    return ir.serde.deserialize_model(proto)


def test_lists_each_unsupported_op_with_nodes():
    model = _model()
    with pytest.raises(UnsupportedOpError) as info:
        check_supported(model, {"Relu", "Requantize"})
    message = str(info.value)
    assert "Erf" in message and "'erf1'" in message and "'erf2'" in message
    assert "Sin" in message and "#4" in message  # unnamed node shown by position
    assert "int8kit::Requantize" in message and "'rq'" in message  # bare name does not cover the domain
    assert "Relu" not in message


def test_supported_model_passes():
    model = _model()
    supported = [op_key(n) for n in model.graph]
    check_supported(model, supported)
    assert unsupported_ops(model, supported) == {}
