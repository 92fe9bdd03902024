"""A graph exported at a fixed batch (torch.onnx.export without dynamic axes writes 1) gets a named batch dim
when it provably treats images independently, so the engine runs any batch through one program.

Left at its fixed batch, the engine runs a larger batch as consecutive runs at that batch (Predictor
`fixed_batch`), which is always right but forgoes batching; a graph whose images could mix (a Reshape that
folds the batch into features before a softmax) must stay there. The proof is `split_blocker`'s.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.ir.batch_split import split_blocker, static_batch
from int8kit.ir.evaluate import evaluate
from int8kit.ir.graph import add_initializer, const_array, taken_names
from int8kit.ir.infer_shapes import InferShapesPass

logger = logging.getLogger(__name__)

FREED_BATCH = "batch"  # the batch dim's name in a graph exported at a fixed batch that runs any batch


def free_static_batch(model: ir.Model) -> str | None:
    """Give a graph declared at a fixed batch a named batch dim when that graph provably treats images
    independently (see `split_blocker`); None when it now has one, else why it stays at its fixed batch.

    An export at batch 1 that flattens with Flatten runs any batch. torch writes `x.view(x.size(0), -1)` and
    a channel shuffle's view at a fixed batch as a Reshape to a constant whose first entry is that batch;
    where the Reshape's input has the batch first and the target keeps it first, the target becomes 0 (copy
    the input's) and the per-image dims, as a dynamic-batch export writes it. Shape arithmetic that does not
    depend on the batch becomes constants. Shapes are then inferred again with a symbol for the batch; when
    the graph does not pass, the targets and shapes are restored exactly as they were.
    """
    graph = model.graph
    inputs = [v for v in graph.inputs if v.const_value is None]
    batch = static_batch(graph)
    saved = {v: v.shape for node in graph for v in node.outputs if v is not None}
    saved.update({v: v.shape for v in inputs})
    opset = model.opset_imports.get("", 17)
    targets: list[tuple[ir.Node, int, ir.Value]] = []
    try:  # whatever goes wrong, the graph stays as it came, at its fixed batch
        for _ in range(MAX_FOLD_ROUNDS):  # each round's constants let static inference reach further shapes
            folded = _fold_batch_free_shape_values(graph, batch, opset)
            if not folded:
                break
            targets += folded
            _infer_again(model)
        targets += _free_reshape_targets(graph, batch)
        for value in saved:
            value.shape = None
        for value in inputs:
            value.shape = ir.Shape([ir.SymbolicDim(FREED_BATCH), *list(saved[value])[1:]])
        InferShapesPass()(model)
        reason = split_blocker(graph)
    except Exception as exc:  # shape inference refusing the graph at another batch is a reason too
        reason = f"shape inference at another batch failed: {exc}"
    if reason is not None:
        for value, shape in saved.items():
            value.shape = shape
        for node, index, original in reversed(targets):
            freed = node.inputs[index]
            node.replace_input_with(index, original)
            if not freed.uses():
                graph.initializers.pop(freed.name, None)
    return reason


# Integer shape arithmetic that a Shape's result flows through on its way to a Reshape target or Slice bound.
SHAPE_ARITHMETIC = frozenset(
    {"Gather", "Add", "Sub", "Mul", "Div", "Concat", "Unsqueeze", "Squeeze", "Slice", "Cast", "Floor", "Ceil",
     "Min", "Max", "Neg", "Abs", "Identity", "ReduceProd", "Equal", "Where", "Mod"}
)  # fmt: skip
PROBE_OFFSETS = (1, 6)  # the batch plus these: a value equal at all three does not depend on the batch
MAX_FOLD_ROUNDS = 64


def _infer_again(model: ir.Model) -> None:
    """Shape inference from the inputs alone (onnx keeps the unknown dims it named in an earlier round)."""
    for node in model.graph:
        for value in node.outputs:
            if value is not None:
                value.shape = None
    InferShapesPass()(model)


def _fold_batch_free_shape_values(graph: ir.Graph, batch: int, opset: int) -> list[tuple[ir.Node, int, ir.Value]]:
    """Replace each value computed from static shapes that is the same at every batch by a constant.

    torch's chunk writes Slice bounds as Shape -> Gather(1) -> Add -> Div -> Mul: the channel count halved.
    Such a value is evaluated (onnx's reference evaluator) at the exported batch and two others; where all
    agree, the data nodes reading it read a constant instead, and shape inference at a named batch sees it.
    Returns (node, input index, the value it read) for each replaced input.
    """
    probes = [batch, *(batch + k for k in PROBE_OFFSETS)]
    known: dict[ir.Value, list[np.ndarray]] = {}  # shape-computed value -> its value at each probe batch
    for node in graph:
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Shape" and node.inputs[0] is not None:
            static = node.inputs[0].shape
            if static is None or not len(static) or not all(isinstance(d, int) and d > 0 for d in static):
                continue
            per_probe = [[np.broadcast_to(np.float32(0), (b, *list(static)[1:]))] for b in probes]
        elif node.op_type in SHAPE_ARITHMETIC and any(v in known for v in node.inputs):
            arrays = [[known[v][i] if v in known else const_array(v) for v in node.inputs] for i in range(len(probes))]
            if any(a is None and v is not None for v, a in zip(node.inputs, arrays[0], strict=True)):
                continue
            per_probe = arrays
        else:
            continue
        try:
            results = [evaluate(node, ins, opset) for ins in per_probe]
        except Exception as exc:  # the reference evaluator raises many types: leave the value to the runtime
            logger.debug("not probing %s (%s): %s", node.name, node.op_type, exc)
            continue
        for k, out in enumerate(node.outputs):
            if out is not None:
                known[out] = [r[k] for r in results]
    replaced = []
    taken = taken_names(graph)
    for value, at_probes in known.items():
        if not all(np.array_equal(at_probes[0], other) for other in at_probes[1:]):
            continue
        readers = [(use.node, use.idx) for use in value.uses() if not _in_shape_arithmetic(use.node, known)]
        if not readers:
            continue
        constant = add_initializer(graph, f"{value.name}_batch_free", at_probes[0], taken)
        for node, index in readers:
            node.replace_input_with(index, constant)
            replaced.append((node, index, value))
    return replaced


def _in_shape_arithmetic(node: ir.Node, known: dict[ir.Value, list[np.ndarray]]) -> bool:
    return all(v in known for v in node.outputs if v is not None) and any(v is not None for v in node.outputs)


def _free_reshape_targets(graph: ir.Graph, batch: int | None) -> list[tuple[ir.Node, int, ir.Value]]:
    """Point each Reshape that keeps a fixed batch first at a target with 0 there; (node, 1, old target) each."""
    changed = []
    taken = taken_names(graph)
    for node in graph:
        if node.op_type != "Reshape" or node.domain not in ("", "ai.onnx") or len(node.inputs) < 2:
            continue
        data, target = node.inputs[0], node.inputs[1]
        if data is None or data.shape is None or not len(data.shape) or data.shape[0] != batch:
            continue
        if target is None or target.const_value is None or target.is_graph_input() or target.shape is None:
            continue
        dims, out = target.const_value.numpy(), node.outputs[0].shape
        if dims.ndim != 1 or not dims.size or int(dims[0]) != batch or node.attributes.get_int("allowzero", 0):
            continue
        if out is None or len(out) != dims.size or not all(isinstance(d, int) for d in out) or out[0] != batch:
            continue
        freed = np.array([0, *list(out)[1:]], dtype=dims.dtype)  # each -1 resolved: onnx then keeps the symbol
        node.replace_input_with(1, add_initializer(graph, f"{target.name}_batch_free", freed, taken))
        changed.append((node, 1, target))
    return changed


class FreeStaticBatchPass(ir.passes.InPlacePass):
    """Inputs declared at a fixed batch -> a named batch dim, where the graph passes split_blocker."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        batch = static_batch(model.graph)
        if batch is None:
            return ir.passes.PassResult(model, modified=False)
        reason = free_static_batch(model)
        if reason is None:
            logger.info("exported at a fixed batch of %d, runs any batch: its images never mix", batch)
        else:
            logger.info("runs at its exported batch of %d only: %s", batch, reason)
        return ir.passes.PassResult(model, modified=reason is None)
