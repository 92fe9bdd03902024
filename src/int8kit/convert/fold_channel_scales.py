"""Per-channel activation scales into a depthwise convolution, rewritten exactly onto per-tensor ones.

NNCF quantizes the input of a depthwise convolution per channel (QuantizeLinear/DequantizeLinear with
axis=1 and one scale per channel, its default on CPU). int8kit keeps one encoding per tensor, but a
depthwise convolution reads each input channel only into its own output channels, so the channel scale
s[c] moves through it exactly: conv(s[c] * (q - z), W) == conv(q - z, W * s[c]). The rewrite divides the
tensor by s[c] before a Q/DQ pair of scale 1 (the same integers q, the same saturation) and multiplies
the depthwise weights' scales by s[c]; the division is a channel Mul that the converter runs like any
other. Zero-valued constant Pads between the pair and the convolution commute with the scales.

Any other reader of a per-channel activation pair, or per-channel zero points that differ, has no exact
per-tensor form: that is an error naming the QuantizeLinear (never an approximation).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from int8kit.errors import UnsupportedOpError
from int8kit.ir.graph import (
    add_initializer,
    const_array,
    drop_unused_initializers,
    is_zero_pad,
    take_over,
    taken_names,
)
from int8kit.names import fresh_name

logger = logging.getLogger(__name__)


def _is(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.domain in ("", "ai.onnx") and node.op_type == op


def _axis(node: ir.Node) -> int:
    attr = node.attributes.get("axis")
    return attr.as_int() if attr is not None else 1


def _weight_shape(weight: ir.Value | None) -> tuple | None:
    """The weight's shape, also before shape inference: a constant's, or the constant's behind its DQ."""
    if weight is None:
        return None
    dq = weight.producer()
    source = dq.inputs[0] if _is(dq, "DequantizeLinear") else weight
    array = const_array(source)
    if array is not None:
        return array.shape
    return tuple(weight.shape) if weight.shape is not None else None


class FoldActivationChannelScalesPass(ir.passes.InPlacePass):
    """Per-channel activation Q/DQ pairs feeding depthwise convolutions -> per-tensor pairs of scale 1."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        taken = taken_names(graph)
        rewritten = 0
        for node in list(graph):
            if not _is(node, "QuantizeLinear") or const_array(node.inputs[0]) is not None:
                continue
            scale = const_array(node.inputs[1])
            if scale is None or scale.size == 1:
                continue
            self._rewrite(graph, node, scale.astype(np.float32).reshape(-1), taken)
            rewritten += 1
        if rewritten:
            logger.info("moved per-channel activation scales of %d Q/DQ pairs into depthwise convs", rewritten)
        return ir.passes.PassResult(model, modified=rewritten > 0)

    def _rewrite(self, graph: ir.Graph, quant: ir.Node, scale: np.ndarray, taken: set[str]) -> None:
        tensor = quant.inputs[0].name
        where = f"node {quant.name!r}: per-channel quantization of activation {tensor!r}"
        zp = const_array(quant.inputs[2]) if len(quant.inputs) > 2 and quant.inputs[2] is not None else None
        if zp is not None and np.unique(zp).size > 1:
            raise UnsupportedOpError(f"{where} has different zero points per channel; int8kit needs one per tensor")
        if _axis(quant) not in (1, -3):
            raise UnsupportedOpError(f"{where} is along axis {_axis(quant)}; int8kit takes only the channel axis 1")
        dqs = [use.node for use in quant.outputs[0].uses()]
        if not dqs or quant.outputs[0].is_graph_output():
            raise UnsupportedOpError(f"{where} is not followed by DequantizeLinear")
        convs: dict[int, ir.Node] = {}
        for dq in dqs:
            self._check_pair(dq, quant, scale, zp, where)
            for conv in self._depthwise_readers(dq.outputs[0], scale.size, where):
                convs[id(conv)] = conv
        for conv in convs.values():
            self._scale_weights(graph, conv, scale, taken, where)
        # The tensor divided by its channel scales, then one Q/DQ pair of scale 1 on the same integers: folded
        # into the producing conv where that is exact, else an explicit channel Mul.
        z = int(zp.reshape(-1)[0]) if zp is not None else 0
        qrange = (int(np.iinfo(zp.dtype).min), int(np.iinfo(zp.dtype).max)) if zp is not None else (0, 255)
        if self._fold_into_producer(graph, quant.inputs[0], 1.0 / scale.astype(np.float64), z, qrange, taken, where):
            source = quant.inputs[0]  # the producer now writes the tensor in units of its channel scales
        else:
            source = quant.inputs[0]
            inverse = add_initializer(graph, f"{tensor}_channel_inverse", (1.0 / scale).reshape(1, -1, 1, 1), taken)
            divide = ir.node("Mul", [source, inverse], name=f"{quant.name}/channel_scales")
            divide.outputs[0].name = fresh_name(f"{tensor}_per_channel_units", taken)
            divide.outputs[0].shape, divide.outputs[0].type = source.shape, source.type
            graph.insert_before(quant, divide)
            source = divide.outputs[0]
        one = add_initializer(graph, f"{tensor}_unit_scale", np.array(1.0, np.float32), taken)
        zero = None
        if zp is not None:
            zero = add_initializer(graph, f"{tensor}_unit_zero_point", np.array(zp.reshape(-1)[0], zp.dtype), taken)
        for node in (quant, *dqs):
            if node is quant:
                node.replace_input_with(0, source)
            node.replace_input_with(1, one)
            if zero is not None:
                node.replace_input_with(2, zero)
            node.attributes.pop("axis", None)

    @staticmethod
    def _check_pair(dq: ir.Node, quant: ir.Node, scale: np.ndarray, zp: np.ndarray | None, where: str) -> None:
        dq_scale = const_array(dq.inputs[1]) if _is(dq, "DequantizeLinear") else None
        dq_zp = const_array(dq.inputs[2]) if dq_scale is not None and len(dq.inputs) > 2 else None
        same = (
            dq_scale is not None
            and dq_scale.size == scale.size
            and np.array_equal(dq_scale.astype(np.float32).reshape(-1), scale)
            and (zp is None) == (dq_zp is None)
            and (zp is None or np.array_equal(dq_zp.reshape(-1), zp.reshape(-1)))
            and _axis(dq) == _axis(quant)
        )
        if not same:
            raise UnsupportedOpError(f"{where} is read by {dq.op_type} {dq.name!r} with other parameters")
        if dq.outputs[0].is_graph_output():
            raise UnsupportedOpError(f"{where}: the dequantized tensor is a graph output")

    @staticmethod
    def _depthwise_readers(value: ir.Value, channels: int, where: str) -> list[ir.Node]:
        """The depthwise convs reading `value` (through zero Pads), or an error naming another reader."""
        found, todo = [], [value]
        while todo:
            current = todo.pop()
            if current.is_graph_output():
                raise UnsupportedOpError(f"{where}: the dequantized tensor is a graph output")
            for use in current.uses():
                reader = use.node
                if is_zero_pad(reader) and use.idx == 0:
                    todo.append(reader.outputs[0])
                    continue
                weight = reader.inputs[1] if _is(reader, "Conv") and len(reader.inputs) > 1 else None
                group = reader.attributes.get_int("group", 1) if _is(reader, "Conv") else 0
                shape = _weight_shape(weight)
                depthwise = (
                    use.idx == 0
                    and group == channels
                    and shape is not None
                    and len(shape) >= 2
                    and shape[1] == 1
                    and isinstance(shape[0], int)
                    and shape[0] % channels == 0
                )
                if not depthwise:
                    raise UnsupportedOpError(
                        f"{where} (one scale per channel) is read by {reader.op_type} {reader.name!r}; int8kit "
                        "honours per-channel activation scales only into depthwise convolutions (re-quantize "
                        "with per-tensor activations)"
                    )
                found.append(reader)
        return found

    @staticmethod
    def _scale_weights(graph: ir.Graph, conv: ir.Node, scale: np.ndarray, taken: set[str], where: str) -> None:
        """Multiply the depthwise conv's output channel o by scale[o // multiplier], exactly in its weights' DQ."""
        out_channels = _weight_shape(conv.inputs[1])[0]
        per_output = np.repeat(scale, out_channels // scale.size).astype(np.float64)
        _scale_output_channels(graph, conv, per_output, taken, where)

    @staticmethod
    def _fold_into_producer(
        graph: ir.Graph, t: ir.Value, k: np.ndarray, z: int, qrange: tuple[int, int], taken: set[str], where: str
    ) -> bool:
        """Scale channel c of `t` by k[c] > 0 inside its producer: Conv [-> BatchNormalization] [-> Relu/Clip].

        Relu commutes with a positive scale. A Clip does not, but it is redundant when the Q/DQ pair's own
        saturation already clips at least as tightly in every channel, and then it goes (a Relu when its
        floor is 0). False, changing nothing, when the chain is anything else.
        """
        if _sole_reader(t) is None:
            return False
        act = t.producer()
        lo = hi = None
        if _is(act, "Clip"):
            given = [act.inputs[i] if len(act.inputs) > i else None for i in (1, 2)]
            bounds = [
                const_array(v) if v is not None else np.array(d) for v, d in zip(given, (-np.inf, np.inf), strict=True)
            ]
            if any(b is None or b.size != 1 for b in bounds):
                return False
            lo, hi = (float(b.reshape(-1)[0]) for b in bounds)
            # Round-half-even at the border: lo*k + z rounds to qmin or below, hi*k + z to qmax or above.
            if not (np.all(lo * k + z < qrange[0] + 0.5) and np.all(hi * k + z > qrange[1] - 0.5)):
                return False
        elif not _is(act, "Relu"):
            act = None
        u = act.inputs[0] if act is not None else t
        if act is not None and _sole_reader(u) is not act:
            return False
        producer = u.producer()
        if _is(producer, "BatchNormalization"):
            gamma, beta = const_array(producer.inputs[1]), const_array(producer.inputs[2])
            if gamma is None or beta is None or gamma.size != k.size or len(producer.outputs) != 1:
                return False
            for i, array in ((1, gamma), (2, beta)):
                scaled = (array.astype(np.float64) * k).astype(np.float32)
                new = add_initializer(graph, f"{producer.inputs[i].name}_channel_scaled", scaled, taken)
                producer.replace_input_with(i, new)
        elif _is(producer, "Conv") and _weight_shape(producer.inputs[1]) is not None:
            if _weight_shape(producer.inputs[1])[0] != k.size or not _scalable(producer):
                return False
            _scale_output_channels(graph, producer, k, taken, where)
            if len(producer.inputs) > 2 and producer.inputs[2] is not None:
                bias = (const_array(producer.inputs[2]).astype(np.float64) * k).astype(np.float32)
                producer.replace_input_with(2, add_initializer(graph, f"{producer.name}_bias_scaled", bias, taken))
        else:
            return False
        if _is(act, "Clip"):
            if lo == 0.0:
                relu = ir.node("Relu", [u], name=f"{act.name}/relu")
                graph.insert_before(act, relu)
                relu.outputs[0].shape, relu.outputs[0].type = t.shape, t.type
                u = relu.outputs[0]
            take_over(t, u, rename=True)
            graph.remove(act, safe=True)
        return True


def _sole_reader(value: ir.Value) -> ir.Node | None:
    uses = value.uses()
    if len(uses) != 1 or value.is_graph_output():
        return None
    return uses[0].node


def _scalable(conv: ir.Node) -> bool:
    """A conv whose weights and bias can be scaled per output channel (constants, or weights behind a DQ)."""
    weight = conv.inputs[1]
    dq = weight.producer()
    weights_ok = const_array(weight) is not None or (
        _is(dq, "DequantizeLinear")
        and const_array(dq.inputs[0]) is not None
        and const_array(dq.inputs[1]) is not None
        and (const_array(dq.inputs[1]).size == 1 or _axis(dq) in (0, -4))
    )
    bias = conv.inputs[2] if len(conv.inputs) > 2 else None
    bias_ok = bias is None or (const_array(bias) is not None and const_array(bias).dtype == np.float32)
    return weights_ok and bias_ok


def _scale_output_channels(graph: ir.Graph, conv: ir.Node, per_output: np.ndarray, taken: set[str], where: str) -> None:
    """Multiply the conv's output channel o by per_output[o] (> 0) exactly in its weights (constant or DQ scale)."""
    weight = conv.inputs[1]
    out_channels = _weight_shape(weight)[0]
    dq = weight.producer()
    float_weight = const_array(weight)
    if float_weight is not None:
        scaled = (float_weight * per_output.reshape(-1, *([1] * (float_weight.ndim - 1)))).astype(np.float32)
        conv.replace_input_with(1, add_initializer(graph, f"{weight.name}_channel_scaled", scaled, taken))
        return
    w_scale = const_array(dq.inputs[1]) if _is(dq, "DequantizeLinear") else None
    if w_scale is None or const_array(dq.inputs[0]) is None or (w_scale.size > 1 and _axis(dq) not in (0, -4)):
        raise UnsupportedOpError(
            f"{where}: the weights of conv {conv.name!r} are neither a constant nor a "
            "per-output-channel DequantizeLinear of one, so the channel scales cannot move into them"
        )
    w_zp = const_array(dq.inputs[2]) if len(dq.inputs) > 2 and dq.inputs[2] is not None else None
    new_scale = (np.broadcast_to(w_scale.astype(np.float64).reshape(-1), (out_channels,)) * per_output).astype(
        np.float32
    )
    inputs = [dq.inputs[0], add_initializer(graph, f"{weight.name}_channel_scale", new_scale, taken)]
    if w_zp is not None:
        zp = np.broadcast_to(w_zp.reshape(-1), (out_channels,)).astype(w_zp.dtype)
        inputs.append(add_initializer(graph, f"{weight.name}_channel_zero_point", zp, taken))
    scaled_dq = ir.node("DequantizeLinear", inputs, attributes={"axis": 0}, name=f"{dq.name}/channel_scaled")
    scaled_dq.outputs[0].name = fresh_name(f"{weight.name}_channel_scaled", taken)
    scaled_dq.outputs[0].shape, scaled_dq.outputs[0].type = weight.shape, weight.type
    graph.insert_before(conv, scaled_dq)
    conv.replace_input_with(1, scaled_dq.outputs[0])
    if not dq.outputs[0].uses() and not dq.outputs[0].is_graph_output():
        params = list(dq.inputs)
        graph.remove(dq, safe=True)
        drop_unused_initializers(graph, params)
