"""The conversion pipeline: the ordered list of passes from a QDQ model to an INT8 model.

Order: check the Q/DQ pairs; the intake's cleanup, per-channel activation scales moved into the depthwise
convs that read them, and the intake's finishing steps (no BN fold yet: a Conv's weights
are still behind their DequantizeLinear, so a fold here would find no constant weights); read every
range from the Q/DQ pairs before removing them; fold BN (the weights became constants when their
DequantizeLinear went); fuse as for FP32; spread ranges; apply the scope; decide placement; insert
conversions only at borders; squash them into producers; store int8 weights; let concats share their
prefixes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import RemoveUnusedNodesPass, TopologicalSortPass

from int8kit.convert.adopt_contrib_qdq import AdoptContribQDQPass
from int8kit.convert.apply_scope import ApplyScopePass
from int8kit.convert.config import ConvertConfig
from int8kit.convert.fold_channel_scales import FoldActivationChannelScalesPass
from int8kit.convert.gather_scales import GatherScalesPass
from int8kit.convert.insert_borders import InsertBordersPass
from int8kit.convert.mark_bf16 import MarkBf16Pass
from int8kit.convert.place_int8 import PlaceInt8Pass
from int8kit.convert.propagate_scales import PropagateScalesPass
from int8kit.convert.quantize_weights import QuantizeWeightsPass
from int8kit.convert.remove_qdq import RemoveQDQPass
from int8kit.convert.squash_requantize import SquashRequantizePass
from int8kit.convert.summary import ConversionSummary, summarize
from int8kit.convert.validate_qdq import ValidateQDQPass
from int8kit.ir.conv1d_as_conv2d import Conv1dAsConv2dPass
from int8kit.ir.fold_batchnorm import FoldBatchNormPass
from int8kit.ir.infer_shapes import InferShapesPass
from int8kit.ir.intake import cleanup_passes, finishing_passes
from int8kit.ir.load import as_ir_model
from int8kit.ir.optimize import MarkOptimizedPass, fuse_to_fixed_point, fusion_reports
from int8kit.ir.pipeline import run_passes
from int8kit.ir.share_concat_prefix import ShareConcatPrefixPass

logger = logging.getLogger(__name__)


def conversion_passes(config: ConvertConfig) -> list[ir.passes.PassBase]:
    """Fresh pass instances, in order (names: int8kit.ir.pipeline.pass_name)."""
    return [
        AdoptContribQDQPass(),
        ValidateQDQPass(),
        *cleanup_passes(),
        FoldActivationChannelScalesPass(),
        *finishing_passes(),
        GatherScalesPass(),
        RemoveQDQPass(),
        FoldBatchNormPass(),
        Conv1dAsConv2dPass(),
        InferShapesPass(),
        fuse_to_fixed_point(),
        PropagateScalesPass(),
        ApplyScopePass(config.scope),
        PlaceInt8Pass(config),
        InsertBordersPass(),
        SquashRequantizePass(),
        QuantizeWeightsPass(),
        MarkBf16Pass(config.bf16_nodes, config.bf16_op_ids),
        ShareConcatPrefixPass(),
        RemoveUnusedNodesPass(),
        TopologicalSortPass(),
        MarkOptimizedPass("int8"),
    ]


@dataclass
class ConversionResult:
    model: ir.Model
    summary: ConversionSummary


def convert(
    model: str | os.PathLike | onnx.ModelProto | ir.Model,
    config: ConvertConfig | None = None,
    *,
    stop_after: int | str | None = None,
) -> ConversionResult:
    """Turn a QDQ (fake-quant) model into an INT8 model for the int8kit runtime.

    An onnx_ir Model is converted in place (the passes rewrite it); pass `model.clone()`, a ModelProto or a
    path to keep the QDQ model.
    stop_after: run only the first n passes (or up to the pass of that name), to look at the graph there.
    """
    config = config or ConvertConfig()
    passes = conversion_passes(config)
    graph_model = run_passes(as_ir_model(model), passes, stop_after=stop_after, debug_dir=config.debug_dir)
    return ConversionResult(graph_model, summarize(graph_model, fusion_reports(passes)))
