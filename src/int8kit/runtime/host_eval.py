"""Compile-time evaluation of the nodes whose inputs are all known when a program is compiled.

The engine compiles one program per input shape, so a `Shape` is a constant there, and so is every
node computed only from shapes and initializers: the Shape -> Gather -> Unsqueeze -> Concat -> Reshape
arithmetic that exporters write for `x.view(x.size(0), -1)` or a channel shuffle. Such nodes are run
once, on numpy, by onnx's reference evaluator (the spec's own semantics, not a copy of them), and their
results feed the lowerings as constants.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit.ir.evaluate import evaluate  # noqa: F401  (the lowerings' compile-time evaluator)

logger = logging.getLogger(__name__)

# Ops evaluated on the host whenever all their inputs are known; many have no oneDNN lowering at all.
HOST_ONLY_OPS = (
    "Shape",
    "Size",
    "Gather",
    "Cast",
    "ConstantOfShape",
    "Range",
    "Equal",
    "Where",
    "Expand",
    "ReduceProd",
    "Floor",
    "Ceil",
    "Less",
    "Greater",
    "Not",
    "Neg",
    "Constant",
    "Slice",
    "Mod",
    "Cos",  # EdgeNeXt's positional encoding: computed from the feature map's shape only
    "Sin",
    "CumSum",
    "Tile",  # XCiT's positional encoding grid, repeated per image: shape-only data
    "OneHot",  # GC ViT's relative-position index
    "ScatterND",  # ConViT's relative indices, written into zeros from the patch grid
)


def is_standard(node: ir.Node) -> bool:
    return node.domain in ("", "ai.onnx")
