"""Graphviz view of a model: which nodes run in INT8, which stayed FP32, and what flows between them.

This is the `--debug` picture of a conversion (the seed tool dumped a .dot per pass): each node is a
box labelled with its stable id (the number `--op-ids-to-skip` takes), op type and name, INT8 nodes
filled in one colour and FP32 ones in another, edges labelled with the tensor's dtype and shape.
Weights (initializers) are left out: they would drown the picture.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import onnx_ir as ir

from int8kit import ops
from int8kit.ir.node_ids import node_id

logger = logging.getLogger(__name__)

INT8_COLOR = "#a8dba8"
FP32_COLOR = "#a9c8ea"
IO_COLOR = "#f2f2f2"
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "Requantize"})
INT8_TYPES = frozenset({ir.DataType.UINT8, ir.DataType.INT8})


def _quote(text: str) -> str:
    """A dot double-quoted string; newlines become dot's centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r", "").replace("\n", "\\n") + '"'


def _dtype_of(value: ir.Value | None) -> ir.DataType | None:
    if value is None:
        return None
    if value.dtype is not None:
        return value.dtype
    return value.const_value.dtype if value.const_value is not None else None


def is_int8_node(node: ir.Node) -> bool:
    """True for QDQ/Requantize, int8kit Conv/Dense with int8 weights, and ops reading uint8/int8 data."""
    if node.op_type in QDQ_OPS:
        return True
    fused = node.domain == ops.DOMAIN and node.op_type in ("Conv", "Dense") and len(node.inputs) > 1
    if fused and _dtype_of(node.inputs[1]) == ir.DataType.INT8:
        return True
    return any(_dtype_of(v) in INT8_TYPES for v in node.inputs if v is not None)


def _dtype_name(dtype: ir.DataType | None) -> str:
    if dtype is None:
        return "?"
    try:
        return str(dtype.numpy())  # float32, uint8, ...: the names users know
    except (TypeError, ValueError):  # no numpy equivalent (string, undefined)
        return dtype.name.lower()


def _value_label(value: ir.Value) -> str:
    dtype = _dtype_name(value.dtype)
    if value.shape is None:
        return dtype
    dims = ",".join(str(d) if isinstance(d, int) else str(d.value or "?") for d in value.shape)
    return f"{dtype} [{dims}]"


def _node_label(node: ir.Node) -> str:
    ident = node_id(node)
    head = f"#{ident} {node.op_type}" if ident is not None else node.op_type
    lines = [head, node.name or ""]
    if node.domain == ops.DOMAIN:
        post_ops = node.attributes.get_strings("post_ops", [])
        if post_ops:
            lines.append("+ " + ", ".join(post_ops))
    return "\n".join(lines)


def to_dot(model: ir.Model, title: str | None = None) -> str:
    """Dot text for the model's main graph."""
    graph = model.graph
    heading = title if title is not None else (graph.name or "model")
    lines = [
        "digraph int8kit {",
        f"  graph [rankdir=TB, labelloc=t, fontname=Helvetica, label={_quote(heading)}];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10];',
        "  edge [fontname=Helvetica, fontsize=8];",
        f'  legend [shape=plaintext, style="", label={_quote("INT8: green   FP32: blue")}];',
    ]
    source: dict[int, str] = {}  # id(value) -> dot node that produces it
    for i, value in enumerate(graph.inputs):
        if value.is_initializer():
            continue
        dot_name = f"in{i}"
        source[id(value)] = dot_name
        label = f"{value.name}\n{_value_label(value)}"
        lines.append(f"  {dot_name} [shape=ellipse, fillcolor={_quote(IO_COLOR)}, label={_quote(label)}];")
    for i, node in enumerate(graph):
        dot_name = f"n{i}"
        color = INT8_COLOR if is_int8_node(node) else FP32_COLOR
        lines.append(f"  {dot_name} [label={_quote(_node_label(node))}, fillcolor={_quote(color)}];")
        for out in node.outputs:
            source[id(out)] = dot_name
    edges = []
    for i, node in enumerate(graph):
        for value in node.inputs:
            if value is not None and id(value) in source:
                edges.append(f"  {source[id(value)]} -> n{i} [label={_quote(_value_label(value))}];")
    for i, value in enumerate(graph.outputs):
        dot_name = f"out{i}"
        lines.append(f"  {dot_name} [shape=ellipse, fillcolor={_quote(IO_COLOR)}, label={_quote(value.name or '')}];")
        if id(value) in source:
            edges.append(f"  {source[id(value)]} -> {dot_name} [label={_quote(_value_label(value))}];")
    lines.extend(edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_dot(model: ir.Model, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write `to_dot(model, title)` to path; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_dot(model, title), encoding="utf-8")
    logger.info("wrote graph view %s", path)
    return path
