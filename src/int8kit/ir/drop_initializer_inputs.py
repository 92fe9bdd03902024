"""Stop listing initializers as graph inputs.

Before IR version 4 every initializer also had to be a graph input, so older exports (the ONNX model
zoo's opset 7-9 classifiers) list all weights as inputs. An input may be overridden at run time, so
such weights do not count as constants and nothing (BN fold, pad fold, quantization) would touch them;
nobody feeds weights to an image classifier, so intake makes them plain initializers.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

logger = logging.getLogger(__name__)

MIN_IR_VERSION = 4  # the first IR version where initializers need not be inputs


class DropInitializerInputsPass(ir.passes.InPlacePass):
    """Removes every initializer from the main graph's inputs (raising ir_version to 4 if older)."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        keep = [v for v in graph.inputs if not v.is_initializer()]
        removed = len(graph.inputs) - len(keep)
        if not removed:
            return ir.passes.PassResult(model, modified=False)
        graph.inputs.clear()
        graph.inputs.extend(keep)
        model.ir_version = max(model.ir_version, MIN_IR_VERSION)
        logger.info("%d initializers were also graph inputs; now they are constants", removed)
        return ir.passes.PassResult(model, modified=True)
