"""Graph helpers the passes share: constant lookup, fresh names, rewiring (take_over), cleanup."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx_ir as ir

from int8kit.metadata import ENCODING_KEY
from int8kit.names import fresh_name


def const_array(value: ir.Value | None) -> np.ndarray | None:
    """The value's data when it is a true constant, else None.

    An initializer that is also a graph input can be overridden at run time, so it does not count.
    A Constant node's output counts, so passes also work before constants are lifted.
    """
    if value is None:
        return None
    if value.const_value is not None and not value.is_graph_input():
        return value.const_value.numpy()
    producer = value.producer()
    if producer is not None and producer.op_type == "Constant" and producer.domain == "":
        attr = producer.attributes.get("value")
        if attr is not None:
            return attr.as_tensor().numpy()
    return None


def const_scalar(value: ir.Value | None) -> float | None:
    """The value of a one-element constant, or None."""
    array = const_array(value)
    return float(array.reshape(-1)[0]) if array is not None and array.size == 1 else None


def sole_reader(value: ir.Value) -> ir.Node | None:
    """The one node reading `value`, when nothing else (a graph output included) does."""
    uses = value.uses()
    return uses[0].node if len(uses) == 1 and not value.is_graph_output() else None


def other_input(node: ir.Node, value: ir.Value) -> ir.Value | None:
    """The other input of two-input `node` when `value` is one of them, else None."""
    if len(node.inputs) != 2:
        return None
    if node.inputs[0] is value:
        return node.inputs[1]
    return node.inputs[0] if node.inputs[1] is value else None


def taken_names(graph: ir.Graph) -> set[str]:
    """Every value name in the graph: inputs, initializers and node outputs."""
    names = {v.name for v in graph.inputs if v.name}
    names.update(n for n in graph.initializers if n)
    names.update(out.name for node in graph for out in node.outputs if out.name)
    return names


def add_initializer(graph: ir.Graph, base_name: str, array: np.ndarray, taken: set[str]) -> ir.Value:
    """Register `array` as a new initializer under a name derived from base_name."""
    name = fresh_name(base_name, taken)
    array = np.asarray(array)
    tensor = ir.tensor(np.ascontiguousarray(array).reshape(array.shape), name=name)  # a scalar stays 0-D
    value = ir.Value(name=name, shape=tensor.shape, type=ir.TensorType(tensor.dtype), const_value=tensor)
    graph.register_initializer(value)
    return value


def drop_unused_initializers(graph: ir.Graph, values: Iterable[ir.Value | None]) -> None:
    """Remove those of `values` that are initializers nobody reads any more."""
    for value in values:
        if value is None or not value.is_initializer() or value.is_graph_input() or value.is_graph_output():
            continue
        if not value.uses() and value.name in graph.initializers:
            graph.initializers.pop(value.name)


def drop_unused_constant_nodes(graph: ir.Graph, values: Iterable[ir.Value | None]) -> None:
    """Remove Constant nodes whose output (among `values`) nobody reads any more."""
    for value in values:
        producer = value.producer() if value is not None else None
        if producer is None or producer.op_type != "Constant" or producer.graph is not graph:
            continue
        if not value.uses() and not value.is_graph_output():
            graph.remove(producer, safe=True)


def take_over(old: ir.Value, new: ir.Value, *, rename: bool = False, carry_facts: bool = False) -> None:
    """Let every reader of `old` (graph outputs included) read `new`: the one rewiring helper passes share.

    Names: `new` takes `old`'s name when `rename` is set, and always when `old` was a graph output (so
    the model's outputs keep their names) unless `new` is a graph input or initializer, whose name is
    part of the interface too. carry_facts: `new` also takes `old`'s metadata and known shape, as when a
    fusion removes the node that wrote `old`; its encoding becomes `old`'s or none (never its own, which
    described a tensor that no longer exists).
    """
    name, was_output = old.name, old.is_graph_output()
    meta, shape = dict(old.metadata_props), old.shape
    old.replace_all_uses_with(new, replace_graph_outputs=True)
    fixed_name = new.is_graph_input() or new.is_initializer()
    if (rename or was_output) and not fixed_name:
        old.name = None
        new.name = name
    if carry_facts:
        new.metadata_props.pop(ENCODING_KEY, None)
        new.metadata_props.update(meta)
        if shape is not None:
            new.shape = shape


def replace_chain(graph: ir.Graph, old: list[ir.Node], new: ir.Node) -> None:
    """Put `new` in place of the chain `old`, whose last node's output it computes: inserted before that node,
    its output taking over that output's readers, name, type, shape and metadata (an encoding the QDQ file
    gave it included); then the chain is removed."""
    last = old[-1]
    new.metadata_props.update(last.metadata_props)
    graph.insert_before(last, new)
    out = last.outputs[0]
    dtype = out.type
    take_over(out, new.outputs[0], rename=True, carry_facts=True)
    new.outputs[0].type = dtype
    graph.remove(old, safe=True)


def reduce_axes(node: ir.Node) -> list[int] | None:
    """A ReduceMean's axes, sorted and non-negative: the attribute (opset < 18) or the constant input 1
    (opset 18+, what torch's dynamo exporter writes); None when they are not known constants."""
    if node.inputs[0] is None or node.inputs[0].shape is None:
        return None
    rank = len(node.inputs[0].shape)
    if "axes" in node.attributes:
        values = node.attributes["axes"].as_ints()
    elif len(node.inputs) > 1 and node.inputs[1] is not None:
        array = const_array(node.inputs[1])
        if array is None:
            return None
        values = [int(a) for a in array.reshape(-1)]
    else:
        return None  # every axis (or none, with noop_with_empty_axes): not a spatial mean
    return sorted(int(a) % rank for a in values)


def is_zero_pad(node: ir.Node) -> bool:
    """A constant-mode Pad that fills the real value 0 (attribute form of opset < 11 too), whatever its
    amounts: it commutes with any per-tensor or per-channel scale, and 0 is exact on every quantized grid."""
    if node.domain not in ("", "ai.onnx") or node.op_type != "Pad":
        return False
    if node.attributes.get_string("mode", "constant") != "constant":
        return False
    if "value" in node.attributes:
        return node.attributes.get_float("value", 0.0) == 0.0
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        value = const_array(node.inputs[2])
        return value is not None and not np.any(value)
    return True


def is_global_mean(node: ir.Node) -> bool:
    """GlobalAveragePool, or a ReduceMean over all spatial axes with constant axes."""
    if node.domain not in ("", "ai.onnx"):
        return False
    if node.op_type == "GlobalAveragePool":
        return True
    if node.op_type != "ReduceMean":
        return False
    axes = reduce_axes(node)
    return axes is not None and axes == list(range(2, len(node.inputs[0].shape)))
