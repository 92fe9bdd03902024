"""The intake pipeline: the passes that normalise any FP32 or QDQ model before int8kit works on it.

Order matters: the opset upgrade first (later passes only know opset >= 13 forms); constants become
initializers (every size and form: tiny Pad pads, Clip bounds, Reshape shapes are what other passes
read), and initializers stop being (overridable) graph inputs, before anything looks for constant
weights; nodes computed only from constants fold into initializers (a reshaped bias is a bias);
Identity/Dropout go before the folds so Conv -> BN and Pad -> Conv are direct neighbours;
shape inference after the graph stops changing shape; ids last, on the sorted graph, so they follow
topological order. The conversion pipeline reuses the cleanup and finishing steps by name but folds
BatchNorm later itself (see int8kit.convert.pipeline).
"""

from __future__ import annotations

import logging
import os

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import (
    LiftConstantsToInitializersPass,
    RemoveInitializersFromInputsPass,
    TopologicalSortPass,
)

from int8kit.ir.conv1d_as_conv2d import Conv1dAsConv2dPass
from int8kit.ir.drop_broadcast_expand import DropBroadcastExpandPass
from int8kit.ir.drop_identity import DropIdentityPass
from int8kit.ir.expand_variadic import ExpandVariadicPass
from int8kit.ir.fold_batchnorm import FoldBatchNormPass
from int8kit.ir.fold_constants import FoldConstantsPass
from int8kit.ir.fold_pad_into_conv import FoldPadIntoConvPass
from int8kit.ir.free_static_batch import FreeStaticBatchPass
from int8kit.ir.fuse_hardswish_pattern import FuseHardSwishPatternPass
from int8kit.ir.infer_shapes import InferShapesPass
from int8kit.ir.load import as_ir_model
from int8kit.ir.node_ids import AssignNodeIdsPass
from int8kit.ir.pipeline import run_passes
from int8kit.ir.upgrade_opset import UpgradeOpsetPass
from int8kit.metadata import INTAKE_KEY

logger = logging.getLogger(__name__)


def cleanup_passes() -> list[ir.passes.PassBase]:
    """Opset, constants, initializer inputs, identities, broadcast Expands, variadic Sum/Max/Min/Mean, the
    HardSwish pattern and Pad -> Conv."""
    return [
        UpgradeOpsetPass(),
        LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        RemoveInitializersFromInputsPass(),
        FoldConstantsPass(),
        DropIdentityPass(),
        DropBroadcastExpandPass(),
        ExpandVariadicPass(),
        FuseHardSwishPatternPass(),
        FoldPadIntoConvPass(),
    ]


def finishing_passes() -> list[ir.passes.PassBase]:
    """Shapes (a fixed exported batch freed where images never mix), topological order and node ids, once
    the graph no longer changes shape."""
    return [InferShapesPass(), FreeStaticBatchPass(), TopologicalSortPass(), AssignNodeIdsPass()]


class MarkIntakePass(ir.passes.InPlacePass):
    """Record that the intake ran (metadata INTAKE_KEY), so later steps do not run it again."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = model.metadata_props.get(INTAKE_KEY) != "1"
        model.metadata_props[INTAKE_KEY] = "1"
        return ir.passes.PassResult(model, modified=modified)


def intake_passes() -> list[ir.passes.PassBase]:
    """The whole intake, in order."""
    return [*cleanup_passes(), FoldBatchNormPass(), Conv1dAsConv2dPass(), *finishing_passes(), MarkIntakePass()]


def intake_done(model: ir.Model) -> bool:
    return model.metadata_props.get(INTAKE_KEY) == "1"


def intake(
    model_or_path: str | os.PathLike | onnx.ModelProto | ir.Model,
    *,
    stop_after: int | str | None = None,
    debug_dir: str | os.PathLike | None = None,
) -> ir.Model:
    """Load (if given a path) and normalise a model; an ir.Model argument is changed in place.

    A model the intake already normalised (INTAKE_KEY) is returned as it is, unless `stop_after` asks for a part.
    """
    model = as_ir_model(model_or_path)
    if intake_done(model) and stop_after is None:
        return model
    return run_passes(model, intake_passes(), stop_after=stop_after, debug_dir=debug_dir)
