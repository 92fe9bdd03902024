"""Mark chosen float Conv/Dense ops to run in bf16 (ConvertConfig.bf16_nodes / bf16_op_ids).

A layer that INT8 hurts can fall back to bf16 before FP32: on CPUs with AMX or avx512_bf16 a bf16
convolution runs several times faster than FP32, at an 8-bit mantissa. The QDQ file decides what is
float; this pass only sets `precision: "bf16"` on float int8kit.Conv/Dense nodes named by the user (by
the QDQ model's node name or by the id `convert --debug` draws). A name or id that matches nothing, a
node that is not a convolution or matrix product, or one that runs INT8 is an error naming it: a
silently ignored request would leave the user believing a layer runs bf16.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.errors import ConfigError
from int8kit.ir.contract import ContractPass
from int8kit.ir.node_ids import node_id, nodes_by_id
from int8kit.metadata import ABSORBED_KEY, ID_KEY

logger = logging.getLogger(__name__)

PRECISION_ATTR = "precision"  # the node attribute the runtime reads (int8kit.ops, runtime.precision)
COMPUTE_OPS = ops.FUSED_COMPUTE_OPS


def _fused_into(model: ir.Model, name: str) -> str | None:
    """The node that absorbed a node called `name` during fusion, if one did."""
    for node in model.graph:
        if name in node.metadata_props.get(ABSORBED_KEY, "").split(","):
            return node.name
    return None


def _targets(model: ir.Model, names: frozenset[str], op_ids: tuple[int, ...]) -> list[ir.Node]:
    by_name = {node.name: node for node in model.graph if node.name}
    missing = sorted(n for n in names if n not in by_name)
    if missing:
        details = []
        for name in missing:
            host = _fused_into(model, name)
            details.append(f"{name!r} (fused into {host!r})" if host else repr(name))
        raise ConfigError(f"bf16 nodes not in the model: {', '.join(details)}")
    by_id = nodes_by_id(model)
    unknown = [i for i in op_ids if i not in by_id]
    if unknown:
        raise ConfigError(f"bf16 op ids not in the model: {', '.join(map(str, unknown))}")
    chosen = {id(by_name[n]): by_name[n] for n in sorted(names)}
    chosen.update({id(by_id[i]): by_id[i] for i in op_ids})
    return list(chosen.values())


def _check(node: ir.Node) -> None:
    label = f"node {node.name!r} (id {node_id(node)})"
    if node.domain != ops.DOMAIN or node.op_type not in COMPUTE_OPS:
        raise ConfigError(
            f"bf16: {label} is a {node.op_type}; only convolutions and matrix products (Conv, Gemm, MatMul) run bf16"
        )
    weights = node.inputs[1].const_value if len(node.inputs) > 1 and node.inputs[1] is not None else None
    if weights is None:
        raise ConfigError(f"bf16: {label} has no constant weights")
    if weights.numpy().dtype == np.int8:
        raise ConfigError(
            f"bf16: {label} runs INT8 (the QDQ file quantizes it); keep it float first "
            f"(--op-ids-to-skip {node_id(node)}, or exclude it from quantization in the QDQ file)"
        )


class MarkBf16Pass(ContractPass):
    """Sets precision "bf16" on the float Conv/Dense nodes named by `names` or `op_ids`."""

    reads = (ID_KEY,)

    def __init__(self, names: frozenset[str] = frozenset(), op_ids: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.names = frozenset(names)
        self.op_ids = tuple(op_ids)

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        if not self.names and not self.op_ids:
            return ir.passes.PassResult(model, modified=False)
        nodes = _targets(model, self.names, self.op_ids)
        for node in nodes:
            _check(node)
        for node in nodes:
            node.attributes[PRECISION_ATTR] = ir.AttrString(PRECISION_ATTR, "bf16")
        logger.info("bf16: %d layer(s): %s", len(nodes), ", ".join(n.name for n in nodes))
        return ir.passes.PassResult(model, modified=True)
