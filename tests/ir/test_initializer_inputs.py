"""Intake on IR-3 style models: weights listed as inputs become constants (onnx_ir's
RemoveInitializersFromInputsPass after the opset upgrade raised the IR version), so BN can fold."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import helper

from int8kit.ir.fold_batchnorm import FoldBatchNormPass
from int8kit.ir.intake import intake

from ._util import assert_same_outputs, init, make_model, op_types, rng, vinfo


def _ir3_model():
    r = rng()
    inits = [
        init("w", r.standard_normal((4, 3, 1, 1)).astype(np.float32)),
        init("g", r.uniform(0.5, 2, 4).astype(np.float32)),
        init("b", r.standard_normal(4).astype(np.float32)),
        init("m", r.standard_normal(4).astype(np.float32)),
        init("v", r.uniform(0.5, 2, 4).astype(np.float32)),
    ]
    inputs = [vinfo("x", [1, 3, 5, 5])] + [vinfo(t.name, list(t.dims)) for t in inits]
    return make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"]),
            helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"]),
        ],
        inputs,
        [vinfo("y", [1, 4, 5, 5])],
        inits,
        opset=9,
        ir_version=3,
    )


def test_weights_stop_being_inputs_then_bn_folds():
    proto = _ir3_model()
    model = ir.serde.deserialize_model(proto)
    assert not FoldBatchNormPass()(model).modified  # weights overridable: must not fold yet
    intake(model)
    assert [v.name for v in model.graph.inputs] == ["x"]
    assert model.ir_version >= 4
    assert op_types(model) == ["Conv"]  # the BN folded
    feeds = {"x": rng().standard_normal((1, 3, 5, 5)).astype(np.float32)}
    assert_same_outputs(proto, model, feeds)
