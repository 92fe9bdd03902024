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
        from int8kit.paddle import is_paddle_model, load_paddle_model  # lazily: only for Paddle models

        return load_paddle_model(obj) if is_paddle_model(obj) else load_model(obj)
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
    cycle = find_cycle(graph)
    if cycle:
        loop = " -> ".join(repr(n) for n in [*cycle, cycle[0]])
        raise ModelError(f"{where}: the graph has a cycle: {loop} (an ONNX graph must be acyclic)")


def find_cycle(graph: onnx.GraphProto) -> list[str]:
    """Labels of the nodes on one cycle of the graph's data flow, in flow order; [] if it is acyclic.

    Kahn's algorithm removes every node not on or behind a cycle; walking producers from what remains
    must come back to a node already seen, and the walk from there is a cycle.
    """
    producer = {name: i for i, node in enumerate(graph.node) for name in node.output if name}
    preds = [sorted({producer[n] for n in node.input if n in producer}) for node in graph.node]
    users: list[list[int]] = [[] for _ in graph.node]
    for i, ps in enumerate(preds):
        for j in ps:
            users[j].append(i)
    waiting = [len(ps) for ps in preds]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    while ready:
        for j in users[ready.pop()]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    left = {i for i, w in enumerate(waiting) if w > 0}
    if not left:
        return []
    walk, seen, i = [], {}, min(left)
    while i not in seen:
        seen[i] = len(walk)
        walk.append(i)
        i = next(j for j in preds[i] if j in left)  # a node still waiting has a predecessor left
    loop = walk[seen[i] :][::-1]  # the walk went against the flow
    return [graph.node[k].name or f"#{k}" for k in loop]


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
        _check_inside(path, info.location, tensor.name)
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


def _check_inside(path: Path, location: str, tensor: str) -> None:
    """Refuse an external data location that leaves the model's folder, from the string alone.

    Nothing outside is touched (not even stat()ed): an absolute location or one whose `..` parts climb
    above the folder is refused as written, and a symlink inside the folder that points out is caught
    by resolving the (inside) path.
    """
    folder = path.parent
    refuse = ModelError(
        f"{path}: external data location {location!r} for tensor {tensor!r} is outside the model's folder "
        f"{str(folder)!r}; refused"
    )
    if not location:
        return  # reported as a missing file by the caller
    if os.path.isabs(location) or Path(location).drive:
        raise refuse
    normal = os.path.normpath(location)
    if normal == os.pardir or normal.startswith(os.pardir + os.sep):
        raise refuse
    if not (folder / normal).resolve().is_relative_to(folder.resolve()):
        raise refuse
