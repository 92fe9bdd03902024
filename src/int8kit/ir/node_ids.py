"""Stable integer ids for nodes, the handles users pass to `int8kit convert --op-ids-to-skip`.

Ids live in node.metadata_props[ID_KEY] so they survive saving and reloading; a pass that fuses nodes
keeps the id of the main node (conv/gemm) via `copy_node_id`. Numbering only touches nodes without an
id, continuing after the largest id in use, so ids a user has seen never move between runs.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit.errors import ModelError
from int8kit.ir.contract import ContractPass
from int8kit.metadata import ID_KEY

logger = logging.getLogger(__name__)


def node_id(node: ir.Node) -> int | None:
    """The node's id, or None if it has none yet."""
    text = node.metadata_props.get(ID_KEY)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ModelError(f"node {node.name!r} ({node.op_type}): bad {ID_KEY} {text!r}, expected an integer") from None


def set_node_id(node: ir.Node, value: int) -> None:
    node.metadata_props[ID_KEY] = str(int(value))


def copy_node_id(source: ir.Node, target: ir.Node) -> None:
    """Give `target` (a fused replacement) the id of `source` (the main node it replaces), if any."""
    value = node_id(source)
    if value is not None:
        set_node_id(target, value)


def nodes_by_id(model: ir.Model) -> dict[int, ir.Node]:
    """Map id -> node over the whole model (subgraphs included); nodes without id are left out."""
    found: dict[int, ir.Node] = {}
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        value = node_id(node)
        if value is not None:
            found.setdefault(value, node)
    return found


class AssignNodeIdsPass(ContractPass):
    """Numbers, in graph (topological) order, the nodes that have no id, starting after the max id."""

    writes = (ID_KEY,)

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        nodes = list(ir.traversal.RecursiveGraphIterator(model.graph))
        existing = [i for i in (node_id(n) for n in nodes) if i is not None]
        next_id = max(existing, default=-1) + 1
        count = 0
        for node in nodes:
            if node_id(node) is None:
                set_node_id(node, next_id)
                next_id += 1
                count += 1
        if count:
            logger.debug("assigned ids to %d nodes", count)
        return ir.passes.PassResult(model, modified=bool(count))
