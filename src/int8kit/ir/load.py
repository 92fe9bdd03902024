"""Read ONNX files into onnx_ir models, turning every way a file can be broken into a ModelError.

onnx.load's own errors ("Wire format was corrupt", a KeyError deep in external data) do not say which
file is at fault, and a missing external data file only shows up when a weight is first read; here
each problem is found at load time and reported with the file's path.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import onnx
import onnx_ir as ir
from google.protobuf.message import DecodeError
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from int8kit.errors import ModelError

logger = logging.getLogger(__name__)

__all__ = ["as_ir_model", "load_model"]


def load_model(path: str | os.PathLike) -> ir.Model:
    """Load the ONNX file at `path`; external data files are resolved next to it (memory mapped)."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    if not path.is_file():
        raise ModelError(f"{path}: not a file")
    data = path.read_bytes()
    if not data:
        raise ModelError(f"{path}: empty file, not an ONNX model")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except DecodeError as exc:
        raise ModelError(f"{path}: truncated or corrupt ONNX protobuf ({exc})") from exc
    validate_proto(proto, str(path))
    _check_external_data(proto, path)
    try:
        model = ir.serde.deserialize_model(proto)
    except Exception as exc:  # the deserializer raises many kinds for malformed fields
        raise ModelError(f"{path}: cannot read the ONNX model: {exc}") from exc
    ir.external_data.set_base_dir(model.graph, path.parent)
    logger.info("loaded %s: %d nodes, opsets %s", path, len(model.graph), dict(model.opset_imports))
    return model


def as_ir_model(obj: str | os.PathLike | onnx.ModelProto | ir.Model) -> ir.Model:
    """Accept whatever a caller holds (a path, an onnx ModelProto or an ir.Model) as an ir.Model.

    An ir.Model is returned as is (passes change it in place); a ModelProto is validated and converted.
    """
    if isinstance(obj, ir.Model):
        return obj
    if isinstance(obj, onnx.ModelProto):
        validate_proto(obj, "<in-memory model>")
        return ir.serde.deserialize_model(obj)
    if isinstance(obj, str | os.PathLike):
        return load_model(obj)
    raise TypeError(f"expected a path, onnx.ModelProto or onnx_ir.Model, got {type(obj).__name__}")


def validate_proto(proto: onnx.ModelProto, where: str) -> None:
    """Reject protobufs that parsed but are not (complete) ONNX models.

    Random bytes often parse as a protobuf with a few unknown fields, and a file cut at a field
    boundary parses as a model that lost its tail; both are caught by checking what any model has:
    an IR version, an opset, a graph whose outputs and node inputs are all defined.
    """
    if proto.ir_version <= 0 or not proto.HasField("graph"):
        raise ModelError(f"{where}: not an ONNX model (no IR version or no graph)")
    if not proto.opset_import:
        raise ModelError(f"{where}: not a complete ONNX model (no opset_import; truncated file?)")
    graph = proto.graph
    if not graph.node or not graph.output:
        raise ModelError(f"{where}: ONNX graph has no nodes or no outputs (truncated file?)")
    # Order-independent: unsorted graphs are repaired later by the topological sort pass.
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    defined |= {name for node in graph.node for name in node.output}
    defined.add("")  # an empty name is an omitted optional input
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name not in defined:
                label = node.name or f"#{index}"
                raise ModelError(
                    f"{where}: node {label!r} ({node.op_type}) uses {name!r}, which nothing defines "
                    "(corrupt or truncated file?)"
                )
    for out in graph.output:
        if out.name not in defined:
            raise ModelError(f"{where}: graph output {out.name!r} is not produced by any node")


def _all_tensors(proto: onnx.ModelProto):
    """Initializers and tensor attributes of the model, subgraphs included."""
    from onnx.external_data_helper import _get_all_tensors

    return _get_all_tensors(proto)


def _check_external_data(proto: onnx.ModelProto, path: Path) -> None:
    """Fail now, naming both files, when an external data file is missing or too short."""
    for tensor in _all_tensors(proto):
        if not uses_external_data(tensor):
            continue
        info = ExternalDataInfo(tensor)
        data_path = path.parent / info.location
        if not info.location or not data_path.is_file():
            raise ModelError(f"{path}: external data file {str(data_path)!r} for tensor {tensor.name!r} is missing")
        offset = info.offset or 0
        size = data_path.stat().st_size
        if info.length is not None and offset + info.length > size:
            raise ModelError(
                f"{path}: external data file {str(data_path)!r} is too short for tensor "
                f"{tensor.name!r} (needs {offset + info.length} bytes, has {size})"
            )
