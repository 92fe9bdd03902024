"""Refuse, up front and all at once, models with ops the engine cannot run.

Finding an unknown op while compiling primitives would report only the first one, deep in the
runtime; listing every unsupported op type with the nodes that use it lets the user decide at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

import onnx_ir as ir

from int8kit.errors import UnsupportedOpError


def op_key(node: ir.Node) -> str:
    """How a node's op is named in a supported-ops list: "Conv" (default domain) or "int8kit::Conv"."""
    return node.op_type if node.domain == "" else f"{node.domain}::{node.op_type}"


def unsupported_ops(model: ir.Model, supported: Collection[str]) -> dict[str, list[str]]:
    """op key -> names (or #index) of the nodes of that op that are not in `supported`, each with the reason the
    pass that would convert it gives for leaving it alone ("'conv3d': 3-D convolution (only 2-D is supported)")."""
    found: dict[str, list[str]] = defaultdict(list)
    for index, node in enumerate(ir.traversal.RecursiveGraphIterator(model.graph)):
        key = op_key(node)
        if key not in supported:
            name = repr(node.name or f"#{index}")
            reason = _known_refusal(node)
            found[key].append(f"{name}: {reason}" if reason else name)
    return dict(found)


def _known_refusal(node: ir.Node) -> str | None:
    """The reason the converting pass gives for leaving this node alone, where there is one (asked again here:
    an INT8 model loaded from a file carries no record of the passes that made it)."""
    if node.op_type == "Conv" and node.domain in ("", "ai.onnx"):
        from int8kit.ir.retype_conv import conv_refusal  # lazily: retype_conv sits above this module

        return conv_refusal(node)
    return None


def check_supported(model: ir.Model, supported: Collection[str]) -> None:
    """Raise UnsupportedOpError naming every unsupported op type and its nodes.

    `supported` holds op keys as `op_key` spells them: bare op types for the ONNX domain,
    "domain::OpType" for others.
    """
    missing = unsupported_ops(model, supported)
    if not missing:
        return
    parts = []
    for key, names in sorted(missing.items()):
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        parts.append(f"{key} (nodes {shown})")
    raise UnsupportedOpError(f"model {model.graph.name!r} has unsupported ops: " + "; ".join(parts))
