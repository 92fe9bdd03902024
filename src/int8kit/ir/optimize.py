"""The FP32 optimisation pipeline: intake, then the fusion passes repeated to a fixed point.

Order: Conv/Gemm become int8kit ops first (the other passes only match those); bias Adds fold before
activations (a bias after a relu is not a bias); activations before residual Adds (relu(conv) + skip);
the fusions then repeat until none changes the graph, so conv + sum -> relu also fuses.
"""

from __future__ import annotations

import logging
import os

import onnx_ir as ir
from onnx_ir.passes.common import TopologicalSortPass

from int8kit import ops
from int8kit.ir.contract import ContractPass
from int8kit.ir.fuse_activation import FuseActivationPass
from int8kit.ir.fuse_bias_add import FuseBiasAddPass
from int8kit.ir.fuse_channel_affine import FuseChannelAffinePass
from int8kit.ir.fuse_gated_activation import FuseGatedActivationPass
from int8kit.ir.fuse_gelu_pattern import FuseGeluPatternPass
from int8kit.ir.fuse_residual_add import FuseResidualAddPass
from int8kit.ir.fuse_scalar_linear import FuseScalarLinearPass
from int8kit.ir.fusion import FusionPass, FusionReport
from int8kit.ir.pipeline import FixedPoint, iter_passes, run_passes
from int8kit.ir.retype_conv import ConvToInt8kitPass
from int8kit.ir.retype_gemm import GemmToDensePass
from int8kit.ir.share_concat_prefix import ShareConcatPrefixPass
from int8kit.metadata import OPTIMIZED_KEY

logger = logging.getLogger(__name__)

MAX_ROUNDS = 8


def fusion_passes() -> list[ir.passes.PassBase]:
    """The fusions in order, as fresh instances (each keeps the report of this run)."""
    return [
        FuseGeluPatternPass(),
        ConvToInt8kitPass(),
        GemmToDensePass(),
        FuseBiasAddPass(),
        FuseActivationPass(),
        FuseScalarLinearPass(),
        FuseGatedActivationPass(),
        FuseResidualAddPass(),
        FuseChannelAffinePass(),
    ]


def fuse_to_fixed_point() -> FixedPoint:
    """The fusions as one named step that repeats them until the graph stops changing."""
    return FixedPoint("fuse", fusion_passes(), steps=MAX_ROUNDS)


class MarkOptimizedPass(ContractPass):
    """Marks the model `int8kit.optimized = <how>` so the runtime runs it as it is."""

    writes = (OPTIMIZED_KEY,)

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        model.metadata_props[OPTIMIZED_KEY] = self.how
        model.opset_imports.setdefault(ops.DOMAIN, ops.DOMAIN_VERSION)
        return ir.passes.PassResult(model, modified=True)


def fp32_passes(intake: bool = True) -> list[ir.passes.PassBase]:
    """Intake (unless the model already had it), the fusions, concats sharing prefixes, the mark."""
    from int8kit.ir.intake import intake_passes  # lazily: intake pulls in the loaders

    return [
        *(intake_passes() if intake else ()),
        fuse_to_fixed_point(),
        ShareConcatPrefixPass(),
        TopologicalSortPass(),
        MarkOptimizedPass("fp32"),
    ]


def fusion_reports(passes) -> list[FusionReport]:
    """One report per fusion pass in `passes` (nested fixed points included): what fused, what was refused.

    A report lists everything its pass fused in any round, and the refusals of the last round (the
    reasons that still hold for the final graph).
    """
    return [p.report for p in iter_passes(passes) if isinstance(p, FusionPass)]


def run_fusions(model: ir.Model) -> list[FusionReport]:
    """Apply the fusions to a fixed point on an intake'd model; one report per pass."""
    passes = [fuse_to_fixed_point()]
    run_passes(model, passes)
    reports = fusion_reports(passes)
    for report in reports:
        logger.info("%s: %d fused, %d refused", report.pass_name, len(report.fused), len(report.skipped))
    return reports


def optimize_fp32(
    model: ir.Model, *, stop_after: int | str | None = None, debug_dir: str | os.PathLike | None = None
) -> ir.Model:
    """Intake (opset, constants, BN/Pad folds, shapes, ids) then the FP32 fusions; changes `model`."""
    from int8kit.ir.intake import intake_done

    passes = fp32_passes(intake=not (intake_done(model) and stop_after is None))
    return run_passes(model, passes, stop_after=stop_after, debug_dir=debug_dir)
