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


def test_a_conv_left_as_onnx_says_why():
    """A 3-D Conv stays an ONNX Conv (conv_to_int8kit refuses it); the error gives that pass's reason."""
    import numpy as np
    from onnx import numpy_helper

    from int8kit.ir.retype_conv import ConvToInt8kitPass

    proto = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv3d")],
        [vinfo("x", [1, 3, 4, 4, 4])],
        [vinfo("y", [1, 2, 2, 2, 2])],
        [numpy_helper.from_array(np.ones((2, 3, 3, 3, 3), np.float32), "w")],
    )
    message = r"Conv \(nodes 'conv3d': 3-D convolution \(only 2-D is supported\)\)"
    model = ConvToInt8kitPass()(ir.serde.deserialize_model(proto)).model
    with pytest.raises(UnsupportedOpError, match=message):
        check_supported(model, {op_key(n) for n in model.graph} - {"Conv"})
    # as in an INT8 model read from a file, which no pass has seen in this process
    with pytest.raises(UnsupportedOpError, match=message):
        check_supported(ir.serde.deserialize_model(proto), set())
