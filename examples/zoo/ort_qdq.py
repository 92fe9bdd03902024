"""QDQ files the way onnxruntime users make them: quant_pre_process, then quantize_static (QDQ format).

Shared by the converter tests and the benchmarks, so both convert exactly what a user of onnxruntime's
quantization tool would hand int8kit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

# quantize_static variants: (per_channel, activation type, extra_options)
ORT_VARIANTS = {
    "ort_pc_u8": (True, "QUInt8", {}),  # onnxruntime's default: asymmetric uint8 activations
    "ort_pt_u8": (False, "QUInt8", {}),
    "ort_pc_s8_sym": (True, "QInt8", {"ActivationSymmetric": True}),
}


def ort_qdq(
    model: onnx.ModelProto,
    calib: np.ndarray,
    variant: str,
    exclude: tuple[str, ...] = (),
    pre_process: bool = True,
) -> onnx.ModelProto:
    """`model` quantized by onnxruntime (int8 weights), calibrated one image of `calib` at a time, with the
    nodes in `exclude` left float (its nodes_to_exclude); `pre_process=False` skips quant_pre_process
    (whose symbolic shape inference fails on some exports, as users then do too)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    per_channel, act_type, extra = ORT_VARIANTS[variant]
    input_name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calib)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {input_name: x[None]}

    with tempfile.TemporaryDirectory() as d:
        fp, pre, q = Path(d, "fp.onnx"), Path(d, "pre.onnx"), Path(d, "q.onnx")
        onnx.save(model, fp)
        if pre_process:
            quant_pre_process(str(fp), str(pre))
        else:
            pre = fp
        quantize_static(
            str(pre),
            str(q),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=getattr(QuantType, act_type),
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(exclude),
            extra_options=extra,
        )
        return onnx.load(str(q))
