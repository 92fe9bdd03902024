"""Lowerings of the shape ops: their results are compile-time values, never oneDNN primitives.

`Shape` and `Size` read the dims of the tensor as compiled; the ops of host_eval.HOST_ONLY_OPS run on
the host when their inputs are known (Builder folds them before any lowering is looked up). Reaching
one of those lowerings means an input is computed at run time, which the engine does not support.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from int8kit.errors import UnsupportedOpError
from int8kit.runtime.compile import Builder
from int8kit.runtime.host_eval import HOST_ONLY_OPS
from int8kit.runtime.registry import lowering


@lowering("Shape")
def shape(b: Builder, node: ir.Node) -> None:
    dims = np.array(b.input(node, 0).dims, dtype=np.int64)
    rank = len(dims)
    start = node.attributes.get_int("start", 0)
    end = node.attributes.get_int("end", rank)
    b.host[node.outputs[0].name] = dims[slice(start, end)]


@lowering("Size")
def size(b: Builder, node: ir.Node) -> None:
    b.host[node.outputs[0].name] = np.array(int(np.prod(b.input(node, 0).dims)), dtype=np.int64)


def _runtime_data(b: Builder, node: ir.Node) -> None:
    raise UnsupportedOpError(
        f"node {node.name!r}: {node.op_type} on data computed at run time is not supported by the int8kit engine "
        "(only on shapes and constants, which are folded when the model is compiled)"
    )


lowering(*(op for op in HOST_ONLY_OPS if op not in ("Shape", "Size", "Slice", "Gather", "Cast", "Expand", "Tile")))(
    _runtime_data
)
