"""Apply the conversion's Scope: nodes out of scope are kept FP32, with the rule that took them out.

Runs on the fused graph, just before placement, so ids are those `--debug` draws and op types are the
ONNX types the nodes had in the file (a Dense that came from a MatMul answers to MatMul). Every rule
must match some node here, so a typo or a stale id is an error naming it, before anything is decided.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit.ir.contract import ContractPass
from int8kit.metadata import FP32_REASON_KEY, ID_KEY, KEEP_FP32_KEY, SOURCE_OP_KEY
from int8kit.scope import Scope, ScopeNode

logger = logging.getLogger(__name__)


class ApplyScopePass(ContractPass):
    """Marks out-of-scope nodes KEEP_FP32 with the reason (place_int8 reads both)."""

    reads = (ID_KEY, SOURCE_OP_KEY)
    writes = (KEEP_FP32_KEY, FP32_REASON_KEY)

    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        if self.scope.includes_all:
            return ir.passes.PassResult(model, modified=False)
        nodes = list(model.graph)
        views = [ScopeNode.of(n) for n in nodes]
        self.scope.check(views, where=f"model {model.graph.name or '(unnamed)'}")
        kept = 0
        for node, view in zip(nodes, views, strict=True):
            reason = self.scope.reason_out(view)
            if reason is not None:
                node.metadata_props[KEEP_FP32_KEY] = "1"
                node.metadata_props[FP32_REASON_KEY] = reason
                kept += 1
        logger.info("scope keeps %d of %d nodes FP32", kept, len(nodes))
        return ir.passes.PassResult(model, modified=bool(kept))
