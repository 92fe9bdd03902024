"""Fake quantization in torch with exactly the rules of `int8kit.quantize.scheme`.

Forward: q = clamp(round_half_even(x / s), qmin, qmax), y = q * s, which is what an ONNX
QuantizeLinear -> DequantizeLinear pair with zero point 0 computes, so the trained model and the
exported QDQ model agree. Backward (straight-through estimator): dy/dx = 1 inside [qmin*s, qmax*s] and
0 outside; activation scales are learned as in LSQ (Esser et al. 2019): dy/ds = round(x/s) - x/s inside,
qmin or qmax outside. Scales are stored as log(s) so that they stay positive and Adam's step is relative.
Weights use the scheme's per-output-channel s8 scale max|W[oc]| / 127, recomputed at every step, so the
weights written at export quantize to exactly the values the training saw.
"""

from __future__ import annotations

import math
from typing import Any

from int8kit.qat._torch import require_torch
from int8kit.quantize.scheme import QMAX_S8, QMAX_U8, QParams

# ONNX QuantizeLinear saturates to the full range of the zero point's type.
S8_RANGE = (-128, QMAX_S8)
U8_RANGE = (0, QMAX_U8)


def fake_quantize(x: Any, scale: Any, qmin: int, qmax: int) -> Any:
    """Quantize-dequantize `x` with `scale` (a tensor broadcastable to x); STE/LSQ gradients."""
    q = (x / scale).clamp(qmin, qmax)
    q = q + (q.round() - q).detach()  # round in the forward pass, identity in the backward pass
    return q * scale


def fake_quantize_weight(w: Any, axis: int) -> Any:
    """Per-channel symmetric s8 quantize-dequantize of a weight; gradients pass straight through to w."""
    torch = require_torch()
    axis = axis % w.dim()
    dims = [d for d in range(w.dim()) if d != axis]
    with torch.no_grad():
        amax = w.abs().amax(dim=dims, keepdim=True) if dims else w.abs()
        scale = torch.where(amax > 0, amax / QMAX_S8, torch.ones_like(amax))
        q = torch.clamp(torch.round(w / scale), -QMAX_S8, QMAX_S8) * scale
    return w + (q - w).detach()


def make_activation_quantizer(qparams: QParams) -> Any:
    """An nn.Module holding one learnable activation scale, initialised from calibrated `qparams`."""
    torch = require_torch()

    class ActivationQuantizer(torch.nn.Module):
        """Fake-quant of one scale group (u8 or s8); `scale_value` is what the QDQ model will store."""

        def __init__(self, qp: QParams) -> None:
            super().__init__()
            self.unsigned = qp.dtype == "uint8"
            self.qmin, self.qmax = U8_RANGE if self.unsigned else S8_RANGE
            self.log_scale = torch.nn.Parameter(torch.tensor(math.log(qp.scale), dtype=torch.float32))

        def scale(self) -> Any:
            return self.log_scale.exp()

        def forward(self, x: Any) -> Any:
            return fake_quantize(x, self.scale(), self.qmin, self.qmax)

        def qparams(self) -> QParams:
            return QParams(float(self.scale().detach().to(torch.float32)), "uint8" if self.unsigned else "int8")

        def extra_repr(self) -> str:
            return f"{'u8' if self.unsigned else 's8'}, scale={float(self.scale()):.4g}"

    return ActivationQuantizer(qparams)
