"""The intake pipeline: the one place that names the order of the intake passes.

Order matters: the opset upgrade first (later passes only know opset >= 13 forms); constants become
initializers, and initializers stop being (overridable) graph inputs, before anything looks for
constant weights; Identity/Dropout go before the folds so Conv -> BN and Pad -> Conv are direct
neighbours; shape inference after the graph stops changing shape; ids last, on the sorted graph, so
they follow topological order.
"""

from __future__ import annotations

import logging
import os

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import TopologicalSortPass

from int8kit.ir.constants_to_initializers import ConstantsToInitializersPass
from int8kit.ir.drop_identity import DropIdentityPass
from int8kit.ir.drop_initializer_inputs import DropInitializerInputsPass
from int8kit.ir.fold_batchnorm import FoldBatchNormPass
from int8kit.ir.fold_pad_into_conv import FoldPadIntoConvPass
from int8kit.ir.fuse_hardswish_pattern import FuseHardSwishPatternPass
from int8kit.ir.infer_shapes import InferShapesPass
from int8kit.ir.load import as_ir_model
from int8kit.ir.node_ids import AssignNodeIdsPass
from int8kit.ir.upgrade_opset import UpgradeOpsetPass

logger = logging.getLogger(__name__)

INTAKE_PASSES: tuple[ir.passes.PassBase, ...] = (
    UpgradeOpsetPass(),
    ConstantsToInitializersPass(),
    DropInitializerInputsPass(),
    DropIdentityPass(),
    FuseHardSwishPatternPass(),
    FoldPadIntoConvPass(),
    FoldBatchNormPass(),
    InferShapesPass(),
    TopologicalSortPass(),
    AssignNodeIdsPass(),
)


def intake(model_or_path: str | os.PathLike | onnx.ModelProto | ir.Model) -> ir.Model:
    """Load (if given a path) and normalise a model; an ir.Model argument is changed in place."""
    model = as_ir_model(model_or_path)
    for p in INTAKE_PASSES:
        result = p(model)
        model = result.model
        logger.debug("%s: %s", type(p).__name__, "modified" if result.modified else "no change")
    return model
