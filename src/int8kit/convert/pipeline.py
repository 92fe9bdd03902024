"""The conversion pipeline: the one ordered list of named passes from a QDQ model to an INT8 model.

Order: normalise the graph; read every range from the Q/DQ pairs before removing them; fold BN again
(weights only became constants when their DequantizeLinear went); fuse as for FP32; spread ranges;
decide placement; insert conversions only at borders; squash them into producers; store int8 weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import RemoveUnusedNodesPass, TopologicalSortPass

from int8kit import ops
from int8kit.convert.config import ConvertConfig
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
from int8kit.ir.fold_batchnorm import FoldBatchNormPass
from int8kit.ir.infer_shapes import InferShapesPass
from int8kit.ir.load import as_ir_model

logger = logging.getLogger(__name__)


class IntakePass(ir.passes.InPlacePass):
    """Opset upgrade, constants, identities, pad fold, shapes, ids (see int8kit.ir.intake); no BN fold.

    A Conv's weights are still behind their DequantizeLinear here, so the intake's BN fold would find
    no constant weights and lower the BN to Mul + Add, which nothing folds later. BN is folded by the
    pipeline's own fold_batchnorm pass, after remove_qdq made the weights constants.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        from int8kit.ir.intake import INTAKE_PASSES

        for p in INTAKE_PASSES:
            if not isinstance(p, FoldBatchNormPass):
                model = p(model).model
        return ir.passes.PassResult(model, modified=True)


class FusePass(ir.passes.InPlacePass):
    """The FP32 fusions (conv, gemm, bias, activation, residual sum) to a fixed point.

    Keeps the fusion reports: what fused and what was refused (and why) goes into the summary.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reports: list = []

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        from int8kit.ir.optimize import run_fusions

        reports = self.reports = run_fusions(model)
        return ir.passes.PassResult(model, modified=any(r.fused for r in reports))


class FinalizePass(ir.passes.InPlacePass):
    """Mark the model as converted so the runtime runs it as it is."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        model.metadata_props[ops.OPTIMIZED_KEY] = "int8"
        model.opset_imports.setdefault(ops.DOMAIN, ops.DOMAIN_VERSION)
        return ir.passes.PassResult(model, modified=True)


def conversion_passes(config: ConvertConfig) -> list[tuple[str, ir.passes.PassBase]]:
    return [
        ("validate_qdq", ValidateQDQPass()),
        ("intake", IntakePass()),
        ("gather_scales", GatherScalesPass()),
        ("remove_qdq", RemoveQDQPass()),
        ("fold_batchnorm", FoldBatchNormPass()),
        ("infer_shapes", InferShapesPass()),
        ("fuse", FusePass()),
        ("propagate_scales", PropagateScalesPass()),
        ("place_int8", PlaceInt8Pass(config)),
        ("insert_borders", InsertBordersPass()),
        ("squash_requantize", SquashRequantizePass()),
        ("quantize_weights", QuantizeWeightsPass()),
        ("mark_bf16", MarkBf16Pass(config.bf16_nodes, config.bf16_op_ids)),
        ("remove_unused", RemoveUnusedNodesPass()),
        ("topological_sort", TopologicalSortPass()),
        ("finalize", FinalizePass()),
    ]


@dataclass
class ConversionResult:
    model: ir.Model
    summary: ConversionSummary


def convert(
    model: str | os.PathLike | onnx.ModelProto | ir.Model,
    config: ConvertConfig | None = None,
    on_pass: Callable[[str, ir.Model], None] | None = None,
) -> ConversionResult:
    """Turn a QDQ (fake-quant) model into an INT8 model for the int8kit runtime."""
    config = config or ConvertConfig()
    graph_model = as_ir_model(model)
    passes = conversion_passes(config)
    for index, (name, p) in enumerate(passes):
        graph_model = p(graph_model).model
        logger.debug("pass %s done", name)
        if config.debug_dir is not None:
            from int8kit.ir.dot import write_dot

            write_dot(graph_model, config.debug_dir / f"{index:02d}_{name}.dot", title=f"after {name}")
        if on_pass is not None:
            on_pass(name, graph_model)
    fusions = next((p.reports for _, p in passes if isinstance(p, FusePass)), [])
    return ConversionResult(graph_model, summarize(graph_model, fusions))


def save(model: ir.Model, path: str | os.PathLike) -> None:
    ir.save(model, os.fspath(path))
