"""Lowering dispatch: a graph -> a Program, each node through the lowering registered for its op.

The Builder (runtime.compile) keeps the bookkeeping (values, steps, layouts, constants); this module
walks the graph, folds shape arithmetic on the host, looks each node up in the registry (filled by
importing the lowering modules below) and finishes the program.
"""

from __future__ import annotations

import onnx_ir as ir

from int8kit.errors import UnsupportedOpError
from int8kit.runtime import (  # noqa: F401
    dnnl,
    layouts,
    lowering_compute,
    lowering_layout,
    lowering_matmul,
    lowering_normalize,
    lowering_pointwise,
    lowering_resize,
    lowering_shape,
    precision,
)
from int8kit.runtime.compile import Builder, Program, WeightCache
from int8kit.runtime.registry import LOWERINGS


def supported_ops() -> set[str]:
    """Every op the engine lowers, as check_supported spells them ("Conv", "int8kit::Conv")."""
    return {op if not dom else f"{dom}::{op}" for dom, op in LOWERINGS}


def compile_graph(
    graph: ir.Graph,
    input_shapes: dict[str, tuple[int, ...]],
    weights: WeightCache,
    *,
    opset: int = 17,
    precision_plan: precision.PrecisionPlan | None = None,
    layout_policy: str = layouts.BLOCKED,
) -> Program:
    """Compile `graph` for these input shapes into a Program (reordered weights shared through `weights`;
    FP32 convolution layouts by `layout_policy`, see runtime.layouts)."""
    b = Builder(graph, input_shapes, weights, opset=opset, precision_plan=precision_plan, layout_policy=layout_policy)
    for index, node in enumerate(graph):
        b.node_index = index
        if b.fold_on_host(node):
            continue
        fn = LOWERINGS.get((node.domain or "", node.op_type))
        if fn is None:
            raise UnsupportedOpError(
                f"node {node.name!r}: op {node.domain + '.' if node.domain else ''}{node.op_type} "
                "is not supported by the int8kit engine"
            )
        try:
            fn(b, node)
        except dnnl.DnnlError as exc:
            raise UnsupportedOpError(f"node {node.name!r} ({node.op_type}): {exc}") from exc
    return b.finish()
