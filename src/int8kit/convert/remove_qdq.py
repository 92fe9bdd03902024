"""Remove the fake quantize/dequantize ops; constant ones become plain float constants.

Activation Q->DQ pairs are bypassed (their ranges were gathered before). DequantizeLinear on an
initializer (int8 weights, int32 biases) becomes the float initializer it stands for, and a Q->DQ
pair on a float constant becomes the fake-quantized constant, so conv+bn folding and the weight
quantization later work on float weights exactly as the fake-quant model saw them.

A weight the model computes from constants through several fake-quant steps (NF-Net's weight
standardisation in onnxruntime's QDQ: int8 weight -> DQ -> BatchNormalization -> Q -> DQ -> Reshape ->
Q -> DQ -> Conv) folds step by step: each DQ of a constant, then each node whose inputs became constant,
until nothing changes. Every rounding of the file is applied; the grid the weight keeps is its last one.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.ir.contract import ContractPass
from int8kit.ir.encoding import encoding
from int8kit.ir.fold_constants import fold_constant_nodes
from int8kit.ir.graph import add_initializer, const_array, drop_unused_initializers, take_over, taken_names
from int8kit.ir.weight_grid import WeightGrid, set_grid
from int8kit.metadata import ENCODING_KEY, GRID_KEY, GRID_REFUSED_KEY

logger = logging.getLogger(__name__)


def _is(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.domain in ("", "ai.onnx") and node.op_type == op


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int) -> np.ndarray:
    """numpy DequantizeLinear: per-tensor, or per-axis along `axis`."""
    shape = [1] * q.ndim
    if scale.size > 1:
        shape[axis % q.ndim] = scale.size
    s = scale.astype(np.float32).reshape(shape)
    zp = 0 if zero_point is None else zero_point.astype(np.float32).reshape(shape if zero_point.size > 1 else [])
    return ((q.astype(np.float32) - zp) * s).astype(np.float32)


def quantize(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int) -> np.ndarray:
    """numpy QuantizeLinear (round half to even, saturate)."""
    dtype = zero_point.dtype if zero_point is not None else np.dtype(np.uint8)
    info = np.iinfo(dtype)
    shape = [1] * x.ndim
    if scale.size > 1:
        shape[axis % x.ndim] = scale.size
    zp = 0 if zero_point is None else zero_point.astype(np.float32).reshape(shape if zero_point.size > 1 else [])
    q = np.rint(x / scale.astype(np.float32).reshape(shape)) + zp
    return np.clip(q, info.min, info.max).astype(dtype)


def _qparams(node: ir.Node) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    scale = const_array(node.inputs[1])
    zp = const_array(node.inputs[2]) if len(node.inputs) > 2 else None
    axis_attr = node.attributes.get("axis")
    return scale, zp, axis_attr.as_int() if axis_attr is not None else 1


class RemoveQDQPass(ContractPass):
    """Bypass activation Q->DQ pairs; fold DQ(constant) and Q->DQ(constant) into float constants."""

    reads = (ENCODING_KEY,)
    writes = (
        GRID_KEY,
        GRID_REFUSED_KEY,
    )

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        taken = taken_names(graph)
        removed = 0
        while True:  # a chain of constant computations with fake-quant steps folds one step per round
            folded = sum(
                self._fold_constant_dq(graph, node, taken)
                for node in list(graph)
                if _is(node, "DequantizeLinear") and node.graph is not None
            )
            if not folded:
                break
            removed += folded + fold_constant_nodes(model)
            taken = taken_names(graph)
        for node in list(graph):
            if _is(node, "QuantizeLinear") and node.graph is not None:
                removed += self._bypass_pair(graph, node)
        return ir.passes.PassResult(model, modified=removed > 0)

    def _fold_constant_dq(self, graph: ir.Graph, node: ir.Node, taken: set[str]) -> int:
        q = const_array(node.inputs[0])
        scale, zp, axis = _qparams(node)
        producer = node.inputs[0].producer()
        if q is None and _is(producer, "QuantizeLinear") and const_array(producer.inputs[0]) is not None:
            # Q -> DQ over a float constant: the fake-quantized constant.
            pscale, pzp, paxis = _qparams(producer)
            if pscale is None:
                return 0
            q = quantize(const_array(producer.inputs[0]), pscale, pzp, paxis)
        if q is None or scale is None:
            return 0
        value = dequantize(q, scale, zp, axis)
        base = node.inputs[0].name or node.name or "dequantized"
        new = add_initializer(graph, f"{base}_float", value, taken)
        if q.dtype in (np.int8, np.uint8) and q.ndim >= 2:
            self._keep_grid(new, q, scale, zp, axis, node)
        inputs = list(node.inputs) + (list(producer.inputs) if producer is not None else [])
        take_over(node.outputs[0], new)
        graph.remove(node, safe=True)
        if producer is not None and _is(producer, "QuantizeLinear") and not producer.outputs[0].uses():
            graph.remove(producer, safe=True)
        drop_unused_initializers(graph, inputs)
        return 1

    @staticmethod
    def _keep_grid(new: ir.Value, q, scale, zp, axis: int, node: ir.Node) -> None:
        """Record a quantized weight's grid (see int8kit.ir.weight_grid) when int8 can hold it exactly.

        Symmetric int8 weights always fit. With zero points, q - zero_point must fit int8 (oneDNN has no
        weight zero points); otherwise the weight gets no grid and its op stays FP32, saying why.
        """
        shifted = q.astype(np.int32)
        if zp is not None and np.any(zp):
            shape = [1] * q.ndim
            if zp.size > 1:
                shape[axis % q.ndim] = zp.size
            shifted = shifted - zp.astype(np.int32).reshape(shape if zp.size > 1 else [])
        if shifted.min() < -128 or shifted.max() > 127:
            new.meta[GRID_REFUSED_KEY] = (
                f"weights {node.inputs[0].name!r} are asymmetric beyond the int8 range (q - zero_point in "
                f"[{shifted.min()}, {shifted.max()}]); oneDNN has no weight zero points"
            )
            return
        set_grid(new, WeightGrid(scale.astype(np.float64).reshape(-1), axis % q.ndim if scale.size > 1 else 0))

    def _bypass_pair(self, graph: ir.Graph, quant: ir.Node) -> int:
        src = quant.inputs[0]
        dqs = [u.node for u in quant.outputs[0].uses()]
        if not dqs or not all(_is(d, "DequantizeLinear") for d in dqs) or quant.outputs[0].is_graph_output():
            logger.warning("%s: QuantizeLinear not followed only by DequantizeLinear; left in place", quant.name)
            return 0
        params = list(quant.inputs[1:])
        for dq in dqs:
            params += list(dq.inputs[1:])
            after = dq.outputs[0]
            requantized = encoding(after) is not None and encoding(after) != encoding(src)
            if requantized or after.is_graph_output():
                # Q -> DQ -> Q' -> DQ': the file requantizes here. An Identity keeps the tensor after this
                # pair apart from the one before, so each keeps its own encoding and the border between
                # them rounds again, as the file does. A graph output the file dequantizes is kept apart
                # the same way: the model outputs the rounded values, whatever else reads the tensor.
                keep = ir.node("Identity", [src], name=f"{dq.name}/requantized")
                graph.insert_before(dq, keep)
                keep.outputs[0].metadata_props.update(after.metadata_props)
                keep.outputs[0].shape, keep.outputs[0].type = src.shape, src.type
                take_over(after, keep.outputs[0])
            else:
                take_over(after, src)
            graph.remove(dq, safe=True)
        graph.remove(quant, safe=True)
        drop_unused_initializers(graph, params)
        return 1 + len(dqs)
