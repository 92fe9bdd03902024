"""The FP32 optimisation pipeline: intake, then the fusion passes; the only place naming their order.

Order: Conv/Gemm become int8kit ops first (the other passes only match those); bias Adds fold before
activations (a bias after a relu is not a bias); activations before residual Adds (relu(conv) + skip);
the list then repeats to a fixed point so conv + sum -> relu also fuses.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit import ops
from int8kit.ir._fusion import FusionReport
from int8kit.ir.fuse_activation import FuseActivationPass
from int8kit.ir.fuse_bias_add import FuseBiasAddPass
from int8kit.ir.fuse_channel_affine import FuseChannelAffinePass
from int8kit.ir.fuse_conv import FuseConvPass
from int8kit.ir.fuse_gated_activation import FuseGatedActivationPass
from int8kit.ir.fuse_gemm import FuseGemmPass
from int8kit.ir.fuse_residual_add import FuseResidualAddPass

logger = logging.getLogger(__name__)

FUSION_PASSES: tuple[type[ir.passes.InPlacePass], ...] = (
    FuseConvPass,
    FuseGemmPass,
    FuseBiasAddPass,
    FuseActivationPass,
    FuseGatedActivationPass,
    FuseResidualAddPass,
    FuseChannelAffinePass,
)
MAX_ROUNDS = 8


def run_fusions(model: ir.Model) -> list[FusionReport]:
    """Apply FUSION_PASSES in order until none changes the graph; one merged report per pass.

    A report lists everything its pass fused in any round, and the refusals of the last round (the
    reasons that still hold for the final graph).
    """
    merged = {cls: FusionReport(cls().report.pass_name) for cls in FUSION_PASSES}
    for round_ in range(MAX_ROUNDS):
        changed = False
        for cls in FUSION_PASSES:
            p = cls()
            result = p(model)
            changed |= result.modified
            merged[cls].fused += p.report.fused
            merged[cls].skipped = p.report.skipped
        if not changed:
            break
        logger.debug("fusion round %d changed the graph", round_ + 1)
    reports = list(merged.values())
    for report in reports:
        logger.info("%s: %d fused, %d refused", report.pass_name, len(report.fused), len(report.skipped))
    return reports


def optimize_fp32(model: ir.Model) -> ir.Model:
    """Intake (opset, constants, BN/Pad folds, shapes, ids) then the FP32 fusions; changes `model`."""
    from int8kit.ir.intake import intake  # lazily: intake pulls in the loaders

    model = intake(model)
    run_fusions(model)
    model.metadata_props[ops.OPTIMIZED_KEY] = "fp32"
    return model
