"""Per-tensor quantization facts the conversion passes share, kept on the values themselves.

A tensor's INT8 encoding is taken exactly from the QuantizeLinear that quantizes it in the QDQ file:
its data type (uint8 or int8), scale and zero point, so real = scale * (q - zero_point). Nothing is
widened or re-derived: the INT8 model computes what the fake-quant model describes. Encodings live
in value.metadata_props, so they survive fusions (which keep the surviving value's metadata) and show
up in the debug graphs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.metadata import ENCODING_KEY

QRANGE = {ops.UINT8: (0, 255), ops.INT8: (-128, 127)}
NUMPY_DTYPE = {ops.UINT8: np.uint8, ops.INT8: np.int8}


@dataclass(frozen=True)
class Encoding:
    """How a tensor is stored at run time: float, or uint8/int8 with a scale and a zero point."""

    dtype: int  # ops.FLOAT, ops.UINT8 or ops.INT8
    scale: float = 1.0
    zero_point: int = 0

    @property
    def is_int8(self) -> bool:
        return self.dtype != ops.FLOAT

    def real_range(self) -> tuple[float, float]:
        """The smallest and largest real values the encoding represents."""
        lo, hi = QRANGE[self.dtype]
        return (lo - self.zero_point) * self.scale, (hi - self.zero_point) * self.scale

    def encode(self) -> str:
        return f"{self.dtype}:{self.scale!r}:{self.zero_point}"

    @staticmethod
    def decode(text: str) -> Encoding:
        dtype, scale, zero_point = text.split(":")
        return Encoding(int(dtype), float(scale), int(zero_point))


FLOAT = Encoding(ops.FLOAT)


def encoding(value: ir.Value | None) -> Encoding | None:
    """The INT8 encoding recorded for `value`, or None when the QDQ model does not quantize it."""
    if value is None or ENCODING_KEY not in value.metadata_props:
        return None
    return Encoding.decode(value.metadata_props[ENCODING_KEY])


def set_encoding(value: ir.Value, enc: Encoding) -> None:
    value.metadata_props[ENCODING_KEY] = enc.encode()


def copy_encoding(src: ir.Value, dst: ir.Value) -> bool:
    """Give `dst` the encoding of `src`; True when that changed anything."""
    enc = encoding(src)
    if enc is None or encoding(dst) == enc:
        return False
    set_encoding(dst, enc)
    return True


def fake_quant_post_op(value: ir.Value) -> str | None:
    """The "fq" post-op that rounds as the QDQ model does at `value`, or None when it is not quantized."""
    enc = encoding(value)
    if enc is None:
        return None
    qmin, qmax = QRANGE[enc.dtype]
    return ops.PostOp("fq", (enc.scale, float(enc.zero_point), float(qmin), float(qmax))).encode()


def covering(encodings: list[Encoding]) -> Encoding:
    """One encoding that represents every real value any of `encodings` does (for Concat).

    Equal encodings give themselves; otherwise the widest real range, as uint8 when no input is
    negative, else int8, both with a zero point placed to cover it.
    """
    if all(e == encodings[0] for e in encodings):
        return encodings[0]
    lo = min(e.real_range()[0] for e in encodings)
    hi = max(e.real_range()[1] for e in encodings)
    dtype = ops.UINT8 if lo >= 0 else ops.INT8
    qmin, qmax = QRANGE[dtype]
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (qmax - qmin) or 1.0
    zero_point = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return Encoding(dtype, float(scale), zero_point)
