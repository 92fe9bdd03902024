"""Shared fixtures for the Paddle reader tests: the committed models, their reference logits, hand-built programs."""

from __future__ import annotations

import json
import struct
from functools import cache
from pathlib import Path

import numpy as np

from int8kit.evaluate.metrics import row_cosines
from int8kit.paddle.proto import messages

MODELS = Path(__file__).parent / "models"
ARCHS = ("mbv2", "resnet")
QUANT_KINDS = ("ptq", "ptq_onnx", "qat")
FP32_DTYPE = 5  # VarType.FP32 in framework.proto


@cache
def reference() -> dict[str, np.ndarray]:
    with np.load(MODELS / "reference.npz") as data:
        return {k: data[k] for k in data.files}


def images() -> np.ndarray:
    ref = reference()
    return ((ref["images"].astype(np.float32) / 255.0 - ref["mean"]) / ref["std"])[:, None].astype(np.float32)


def metrics() -> dict:
    return json.loads((MODELS / "metrics.json").read_text())


cosine = row_cosines


def tensor_bytes(array: np.ndarray, dtype_code: int = FP32_DTYPE) -> bytes:
    """One parameter as paddle's SerializeToStream writes it, built from the layout, not the reader."""
    desc = bytearray()
    desc += bytes([0x08, dtype_code])  # field 1 (data_type), varint
    for d in array.shape:
        desc += bytes([0x10]) + _varint(d)  # field 2 (dims), varint, unpacked (proto2)
    head = struct.pack("<IQIi", 0, 0, 0, len(desc))
    return head + bytes(desc) + np.ascontiguousarray(array, dtype="<f4").tobytes()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def program(ops: list[tuple[str, dict, dict, dict]], variables: dict[str, tuple[list[int], bool]]) -> bytes:
    """A serialized ProgramDesc: ops as (type, inputs, outputs, attrs), vars as name -> (dims, persistable).

    Attributes: int -> INT, float -> FLOAT, str -> STRING, list of int -> INTS, bool -> BOOLEAN.
    """
    m = messages()
    prog = m["ProgramDesc"]()
    block = prog.blocks.add(idx=0, parent_idx=-1)
    for name in ("feed", "fetch"):
        block.vars.add(name=name).type.type = 9 if name == "feed" else 10
    for name, (dims, persistable) in variables.items():
        var = block.vars.add(name=name, persistable=persistable)
        var.type.type = 7
        var.type.dense_tensor.tensor.data_type = FP32_DTYPE
        var.type.dense_tensor.tensor.dims.extend(dims)
    for op_type, inputs, outputs, attrs in ops:
        op = block.ops.add(type=op_type)
        for slot, names in inputs.items():
            op.inputs.add(parameter=slot, arguments=names)
        for slot, names in outputs.items():
            op.outputs.add(parameter=slot, arguments=names)
        for key, value in attrs.items():
            a = op.attrs.add(name=key)
            if isinstance(value, bool):
                a.type, a.b = 6, value
            elif isinstance(value, int):
                a.type, a.i = 0, value
            elif isinstance(value, float):
                a.type, a.f = 1, value
            elif isinstance(value, str):
                a.type, a.s = 2, value.encode()
            else:
                a.type = 3
                a.ints.extend(value)
    return prog.SerializeToString()
