"""Upgrade old-opset models (PaddleOCR exports are opset 11) to opset 17.

Opset 13 changed Softmax's axis semantics and turned the axes/split attributes of Squeeze, Unsqueeze,
Split and ReduceSum into inputs; by moving every model to opset >= 13 the later passes and the runtime
only handle the modern forms. Models already at opset 13 or later are left alone: converting is not
free and newer opsets are handled as they are.
"""

from __future__ import annotations

import logging

import onnx
import onnx_ir as ir
from onnx import version_converter

from int8kit.errors import ModelError

logger = logging.getLogger(__name__)

MIN_OPSET = 13
TARGET_OPSET = 17


class UpgradeOpsetPass(ir.passes.InPlacePass):
    """Converts default-domain opset < `min_opset` to `target_opset` with onnx.version_converter."""

    def __init__(self, min_opset: int = MIN_OPSET, target_opset: int = TARGET_OPSET) -> None:
        super().__init__()
        self.min_opset = min_opset
        self.target_opset = target_opset

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        version = model.opset_imports.get("", model.opset_imports.get("ai.onnx"))
        if version is None or version >= self.min_opset:
            return ir.passes.PassResult(model, modified=False)
        # Weights pass through the converter untouched; afterwards the original tensors (possibly
        # memory-mapped external data) are put back by name so nothing is copied or re-based.
        original = {name: value.const_value for name, value in model.graph.initializers.items()}
        proto = ir.serde.serialize_model(model)
        try:
            converted = version_converter.convert_version(proto, self.target_opset)
        except Exception as exc:
            raise ModelError(
                f"model {model.graph.name!r}: cannot upgrade opset {version} to {self.target_opset}: {exc}"
            ) from exc
        new = ir.serde.deserialize_model(converted)
        for name, value in new.graph.initializers.items():
            if original.get(name) is not None:
                value.const_value = original[name]
        model.graph = new.graph
        min_ir = onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", self.target_opset)])
        model.ir_version = max(model.ir_version, min_ir)
        logger.info("upgraded opset %d -> %d", version, self.target_opset)
        return ir.passes.PassResult(model, modified=True)
