"""Per-tensor quantization facts the conversion passes share, kept on the values themselves.

A tensor's calibrated range is one threshold T (|x| <= T) plus whether it is non-negative; the
INT8 encoding follows: u8 with scale T/255 when unsigned, else s8 with scale T/127. Keeping these
in value.metadata_props means they survive fusions (which keep the surviving value's metadata) and
show up in the debug graphs.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_ir as ir

from int8kit import ops

THRESHOLD_KEY = "int8kit.threshold"
UNSIGNED_KEY = "int8kit.unsigned"


@dataclass(frozen=True)
class Encoding:
    """How a tensor is stored at run time: float, or int8/uint8 with a scale (zero point 0)."""

    dtype: int  # ops.FLOAT, ops.UINT8 or ops.INT8
    scale: float = 1.0

    @property
    def is_int8(self) -> bool:
        return self.dtype != ops.FLOAT


FLOAT = Encoding(ops.FLOAT)


def threshold(value: ir.Value | None) -> float | None:
    if value is None or THRESHOLD_KEY not in value.metadata_props:
        return None
    return float(value.metadata_props[THRESHOLD_KEY])


def is_unsigned(value: ir.Value) -> bool:
    return value.metadata_props.get(UNSIGNED_KEY) == "1"


def set_range(value: ir.Value, threshold_value: float, unsigned: bool) -> None:
    value.metadata_props[THRESHOLD_KEY] = repr(float(threshold_value))
    value.metadata_props[UNSIGNED_KEY] = "1" if unsigned else "0"


def copy_range(src: ir.Value, dst: ir.Value) -> None:
    t = threshold(src)
    if t is not None:
        set_range(dst, t, is_unsigned(src))


def int8_encoding(value: ir.Value) -> Encoding | None:
    """The INT8 encoding the value's range calls for, or None when it has no range."""
    t = threshold(value)
    if t is None:
        return None
    t = max(t, 1e-8)
    return Encoding(ops.UINT8, t / 255.0) if is_unsigned(value) else Encoding(ops.INT8, t / 127.0)
