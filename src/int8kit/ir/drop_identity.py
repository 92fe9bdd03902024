"""Remove Identity, (inference-mode) Dropout and one-input Concat nodes.

All are no-ops at inference (torch's DenseNet concatenates a block's first feature map alone), but
they sit between ops that later passes want to see as neighbours
(Conv -> Identity -> BatchNormalization would not fold). Graph output names never change: when the
removed node produced a graph output, the value feeding it takes over the output's name.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit.ir.graph import const_array

logger = logging.getLogger(__name__)


def _is_noop(node: ir.Node) -> bool:
    if node.domain != "" or not node.inputs or node.inputs[0] is None:
        return False
    if node.op_type == "Identity" or (node.op_type == "Concat" and len(node.inputs) == 1):
        return len(node.outputs) == 1
    if node.op_type != "Dropout":
        return False
    if len(node.outputs) > 1 and (node.outputs[1].uses() or node.outputs[1].is_graph_output()):
        return False  # someone reads the mask
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        training = const_array(node.inputs[2])
        if training is None or bool(training):
            return False  # training mode on, or decided at run time
    return True


class DropIdentityPass(ir.passes.InPlacePass):
    """Rewires the consumers of Identity/Dropout/one-input Concat outputs to their input and removes the nodes."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        count = 0
        for node in list(ir.traversal.RecursiveGraphIterator(model.graph)):
            if _is_noop(node) and self._drop(node):
                count += 1
        if count:
            logger.info("removed %d Identity/Dropout/one-input Concat nodes", count)
        return ir.passes.PassResult(model, modified=bool(count))

    @staticmethod
    def _drop(node: ir.Node) -> bool:
        graph = node.graph
        source = node.inputs[0]
        output = node.outputs[0]
        assert graph is not None and source is not None
        if output.is_graph_output():
            # The source must take the output's name: only possible when it is a plain node output
            # of this same graph that is not already a graph output under its own name.
            producer = source.producer()
            if producer is None or producer.graph is not graph or source.is_graph_output():
                return False
            output.replace_all_uses_with(source, replace_graph_outputs=True)
            name = output.name
            graph.remove(node, safe=True)
            source.name = name
        else:
            output.replace_all_uses_with(source)
            graph.remove(node, safe=True)
        if source.shape is None and output.shape is not None:
            source.shape = output.shape
        if source.type is None and output.type is not None:
            source.type = output.type
        return True
