"""QDQ versions of the zoo models, made once per session: int8kit's quantizer and onnxruntime's
quantize_static (its default asymmetric uint8 activations, and symmetric int8), as users make them."""

from __future__ import annotations

import functools

import onnx
from convert._util import int8kit_qdq, ort_qdq  # tests/convert helpers (tests/ is on sys.path)

from ._zoo import images, onnx_model

PRODUCERS = ("int8kit", "ort_pt_u8", "ort_pc_s8_sym")
CALIBRATION = 8


@functools.cache
def qdq_model(name: str, producer: str) -> onnx.ModelProto:
    calib = images(CALIBRATION, seed=100)
    if producer == "int8kit":
        return int8kit_qdq(onnx_model(name), calib)
    return ort_qdq(onnx_model(name), calib, producer)


@functools.cache
def int8_model(name: str, producer: str):
    from int8kit.convert.pipeline import convert

    return convert(qdq_model(name, producer)).model
