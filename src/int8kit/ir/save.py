"""The one way int8kit writes a model: atomically, from an onnx_ir Model or an onnx ModelProto.

The file appears under its name only when complete (written beside it under a temporary name, then
renamed), so an interrupted run never leaves half a model. Above protobuf's 2 GB limit the weights go
to `NAME.data` next to it, written the same way (data first, so the model never points at a missing
or partial data file).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import onnx
import onnx_ir as ir

from int8kit.data.atomic_file import AtomicFile

logger = logging.getLogger(__name__)

PROTOBUF_LIMIT = 2**31 - 2**20


def save_model(model: ir.Model | onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Write `model` to `path` (whole or not at all); returns the path."""
    proto = model if isinstance(model, onnx.ModelProto) else ir.serde.serialize_model(model)
    path = Path(path)
    if proto.ByteSize() <= PROTOBUF_LIMIT:
        out = AtomicFile(path)
        try:
            out.file.write(proto.SerializeToString())
            out.commit()
        except BaseException:
            out.abort()
            raise
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
            staged = Path(tmp) / path.name
            onnx.save_model(proto, staged, save_as_external_data=True, location=path.name + ".data")
            os.replace(staged.with_name(path.name + ".data"), path.with_name(path.name + ".data"))
            os.replace(staged, path)
    logger.info("wrote %s", path)
    return path
