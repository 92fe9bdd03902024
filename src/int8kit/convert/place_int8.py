"""Decide which ops run in INT8: the ops in scope (convert.apply_scope), minus those without ranges.

Compute ops (fused Conv/Dense) run INT8 when their input has a range; data-movement ops (pools,
reshapes, transposes, concat) when their inputs will arrive in INT8. Every op left in FP32 gets a
reason (out of scope, kept by the quantizer, missing range, unsupported), which the summary prints.
Output encodings are decided here too: an INT8 compute op writes INT8 when its output has a range
and some consumer runs INT8, else it writes float (dequantizing inside the kernel for free).
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from int8kit import op_table, ops
from int8kit.convert.config import ConvertConfig
from int8kit.ir.contract import ContractPass
from int8kit.ir.encoding import encoding
from int8kit.ir.fusion import is_onnx_op, same_value_shapes
from int8kit.ir.graph import is_global_mean, is_zero_pad, reduce_axes  # noqa: F401  (re-exported)
from int8kit.ir.weight_grid import GRID_REFUSED_KEY, grid_of
from int8kit.metadata import ENCODING_KEY, FP32_REASON_KEY, ID_KEY, KEEP_FP32_KEY, OUTPUT_INT8_KEY, PRECISION_KEY

logger = logging.getLogger(__name__)

REASON_KEY = FP32_REASON_KEY

COMPUTE_OPS = ops.FUSED_COMPUTE_OPS
DATA_MOVEMENT_OPS = op_table.op_types(role="data_movement", int8=True)


BINARY_OPS = op_table.op_types(role="binary")


def is_compute(node: ir.Node) -> bool:
    return node.domain == ops.DOMAIN and node.op_type in COMPUTE_OPS


def is_affine(node: ir.Node) -> bool:
    """A per-channel scale and shift with activations (a BatchNorm no conv absorbed)."""
    return node.domain == ops.DOMAIN and node.op_type == "Affine"


# Post-ops an INT8 Affine can run in its output's units (positively homogeneous, or bounds that scale).
AFFINE_INT8_POST_OPS = ("relu", "clip", "leakyrelu", "fq")


def is_binary(node: ir.Node) -> bool:
    """An element-wise Add/Mul of two computed tensors (a residual sum, a squeeze-excite multiply)."""
    return (
        node.domain in ("", "ai.onnx")
        and node.op_type in BINARY_OPS
        and len(node.inputs) == 2
        and all(v is not None and v.const_value is None for v in node.inputs)
    )


def binary_operands(node: ir.Node) -> tuple[ir.Value, ir.Value] | None:
    """(full-shape operand, other operand) of a binary op, or None when neither has the output's shape."""
    out = node.outputs[0]
    a, b = node.inputs
    if out.shape is None or a.shape is None or b.shape is None:
        return None
    if same_value_shapes(a, out):
        return a, b
    if same_value_shapes(b, out):
        return b, a
    return None


def is_data_movement(node: ir.Node) -> bool:
    return node.domain in ("", "ai.onnx") and node.op_type in DATA_MOVEMENT_OPS


def is_int8(node: ir.Node | None) -> bool:
    return node is not None and node.metadata_props.get(PRECISION_KEY) == "int8"


def _kept_fp32(node: ir.Node) -> str | None:
    """Why the scope (convert.apply_scope) or the quantizer keeps the node FP32, or None."""
    if node.metadata_props.get(KEEP_FP32_KEY) != "1":
        return None
    return node.metadata_props.get(REASON_KEY) or "kept FP32 by the quantizer (excluded, or over the accuracy budget)"


def _reads_int8_average(node: ir.Node) -> bool:
    """A global mean or an average pool: on INT8 data they read it directly, whatever their placement
    (insert_borders makes them int8kit.Mean / int8kit.AveragePool, computing the float average exactly)."""
    return is_global_mean(node) or is_onnx_op(node, "AveragePool")


def _produces_int8(value: ir.Value) -> bool:
    producer = value.producer()
    if producer is not None and _reads_int8_average(producer) and encoding(value) is not None:
        # an int8kit.Mean/AveragePool of INT8 data writes its own grid itself
        return encoding(producer.inputs[0]) is not None
    if producer is None or not is_int8(producer):
        return False
    writes_either = is_compute(producer) or is_binary(producer) or is_affine(producer)
    return not writes_either or producer.metadata_props.get(OUTPUT_INT8_KEY) == "1"


def _averages_onto_another_grid(node: ir.Node) -> bool:
    """An average pool whose output the QDQ file quantizes differently from its input.

    oneDNN's INT8 pooling writes the input's type and grid; the file rounds the average onto the output's
    own grid, so INT8 pooling would round twice. Such pools stay FP32 (exactly the file's semantics).
    """
    if node.op_type not in ("AveragePool", "GlobalAveragePool"):
        return False
    e_in, e_out = encoding(node.inputs[0]), encoding(node.outputs[0])
    return e_in is not None and e_out != e_in  # no output encoding: the file averages in float


def _pad_reason(node: ir.Node) -> str | None:
    """Why a Pad cannot run on INT8 data (None when it can): it must fill the real value 0 in constant mode,
    and 0 must be stored as 0 (the runtime pads int8 data with 0; a zero point would need another value)."""
    mode = node.attributes.get_string("mode", "constant")
    if mode != "constant":
        return f"Pad mode {mode!r} has no INT8 kernel"
    if not is_zero_pad(node):
        return "it pads with a value other than 0 (or a computed one)"
    enc = encoding(node.inputs[0])
    if enc is not None and enc.zero_point:
        return "its input has a zero point (INT8 padding fills 0)"
    return None


def _weights_reason(node: ir.Node, config: ConvertConfig) -> str | None:
    """Why a compute op's weights cannot run INT8 as the QDQ file says (None when they can)."""
    w = node.inputs[1] if len(node.inputs) > 1 else None
    if w is None or w.const_value is None or grid_of(w) is not None or config.quantize_float_weights:
        return None
    refused = w.meta.get(GRID_REFUSED_KEY)
    if refused:
        return refused
    return "the QDQ model leaves its weights in float (set quantize_float_weights to quantize them anyway)"


def _binary_reason(node: ir.Node) -> str | None:
    """Why an Add/Mul cannot run INT8 (None when it can).

    INT8 binary ops take int8 operands with zero point 0 (oneDNN's binary primitive has scales but no
    zero points); the other operand of a Mul may stay float when it broadcasts (the squeeze-excite gate).
    """
    operands = binary_operands(node)
    if operands is None:
        return "neither operand has the output's shape"
    a, b = operands
    encs = {"output": encoding(node.outputs[0]), "input": encoding(a)}
    if node.op_type == "Add" or same_value_shapes(a, b):
        encs["second input"] = encoding(b)
    for what, enc in encs.items():
        if enc is None:
            return f"no calibrated range for its {what}"
        if enc.zero_point:
            return f"its {what} has a zero point (oneDNN's binary kernels have none)"
    if not _produces_int8(a):
        return "input arrives in FP32 (an INT8 op here would only add quantize/dequantize)"
    return None


def _affine_reason(node: ir.Node) -> str | None:
    attr = node.attributes.get("post_ops")
    kinds = [ops.PostOp.decode(p).kind for p in (attr.as_strings() if attr is not None else [])]
    bad = [k for k in kinds if k not in AFFINE_INT8_POST_OPS]
    if bad:
        return f"post-ops {bad} do not run in INT8 units"
    if encoding(node.inputs[0]) is None:
        return f"no calibrated range for input {node.inputs[0].name}"
    if not _produces_int8(node.inputs[0]):
        return "input arrives in FP32 (an INT8 op here would only add quantize/dequantize)"
    return None


def _decide(node: ir.Node, config: ConvertConfig) -> str | None:
    """None when the node runs INT8, else the reason it stays FP32."""
    if is_affine(node):
        return _kept_fp32(node) or _affine_reason(node)
    if is_binary(node):
        return _kept_fp32(node) or _binary_reason(node)
    if not (is_compute(node) or is_data_movement(node)):
        return "no INT8 kernel for this op"
    kept = _kept_fp32(node)
    if kept:
        return kept
    inputs = [v for v in node.inputs[: 1 if is_compute(node) else None] if v is not None]
    if is_data_movement(node) and node.op_type != "Concat":
        inputs = inputs[:1]
    if is_compute(node):
        reason = _weights_reason(node, config)
        if reason:
            return reason
    missing = [v.name for v in inputs if encoding(v) is None]
    if missing:
        return f"no calibrated range for input {', '.join(missing)}"
    if node.op_type == "Pad":
        reason = _pad_reason(node)
        if reason:
            return reason
    if node.op_type == "Concat" and encoding(node.outputs[0]) is None:
        return "inputs on different grids and no encoding for the output: the file concatenates in float"
    if _averages_onto_another_grid(node):
        return (
            "its output has its own encoding: INT8 pooling would round onto the input's grid (a global "
            "average then reads INT8 directly into a float mean)"
        )
    # A Concat runs INT8 when any input arrives INT8: its float inputs have encodings (checked above), and
    # the file rounds them onto those anyway, so quantizing them is the border it needs (DenseNet's pooled
    # transition output joins INT8 conv outputs; otherwise every later Concat of the block would be FP32).
    arrives = any if node.op_type == "Concat" else all
    if is_data_movement(node) and not arrives(_produces_int8(v) for v in inputs):
        return "input arrives in FP32 (an INT8 op here would only add quantize/dequantize)"
    return None


LONE_DEPTHWISE_REASON = (
    "a lone depthwise conv between FP32 layers: INT8 would add a quantize pass over its input, which costs "
    "more than its INT8 kernel saves (it runs FP32 on the file's rounded values)"
)


def _lone_depthwise(node: ir.Node) -> bool:
    """An INT8 depthwise conv whose input an FP32 conv writes (and could round itself) and whose output only
    FP32 ops read: in INT8 it needs a quantize pass over its (large, expanded) input for a kernel that is
    memory-bound either way, so FP32 is faster (measured on MobileNetV2 with every other conv skipped)."""
    if not (is_compute(node) and is_int8(node) and node.op_type == "Conv"):
        return False
    weight = node.inputs[1]
    group = node.attributes.get_int("group", 1)
    if group <= 1 or weight is None or weight.shape is None or len(weight.shape) < 2 or weight.shape[1] != 1:
        return False
    if node.metadata_props.get(OUTPUT_INT8_KEY) != "0":
        return False
    x = node.inputs[0]
    producer = x.producer()
    if producer is None or _produces_int8(x) or is_int8(producer) or x.is_graph_output():
        return False
    return (is_compute(producer) or is_affine(producer)) and producer.outputs[0] is x


class PlaceInt8Pass(ContractPass):
    """Marks every node INT8 or FP32 (with a reason), and INT8 compute outputs as INT8 or float."""

    reads = (ENCODING_KEY, ID_KEY, KEEP_FP32_KEY)
    writes = (PRECISION_KEY, FP32_REASON_KEY, OUTPUT_INT8_KEY)

    def __init__(self, config: ConvertConfig):
        super().__init__()
        self.config = config

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        nodes = list(model.graph)
        self.demoted: dict[ir.Node, str] = {}
        for _ in range(2):  # once more when lone depthwise convs were moved to FP32
            self._sweeps(nodes)
            lone = {n: LONE_DEPTHWISE_REASON for n in nodes if n not in self.demoted and _lone_depthwise(n)}
            if not lone:
                break
            self.demoted.update(lone)
        return ir.passes.PassResult(model, modified=True)

    def _reason(self, node: ir.Node) -> str | None:
        return self.demoted.get(node) or _decide(node, self.config)

    def _sweeps(self, nodes: list[ir.Node]) -> None:
        for _ in range(3):  # later sweeps see the output decisions made for later consumers
            for node in nodes:
                reason = self._reason(node)
                node.metadata_props[PRECISION_KEY] = "fp32" if reason else "int8"
                if reason:
                    node.metadata_props[REASON_KEY] = reason
                else:
                    node.metadata_props.pop(REASON_KEY, None)
            for node in nodes:
                if is_compute(node) or is_binary(node) or is_affine(node):
                    out = node.outputs[0]
                    wants = encoding(out) is not None and any(self._reads_int8(u.node, u.idx) for u in out.uses())
                    node.metadata_props[OUTPUT_INT8_KEY] = "1" if (is_int8(node) and wants) else "0"

    def _reads_int8(self, node: ir.Node, index: int) -> bool:
        """Whether `node` will want its input `index` in INT8."""
        if is_compute(node):
            if index == 3:  # a residual: INT8 when the consumer writes INT8
                return is_int8(node) and node.metadata_props.get(OUTPUT_INT8_KEY) == "1"
            return index == 0 and self._reason(node) is None
        if is_affine(node):
            return index == 0 and self._reason(node) is None
        if _reads_int8_average(node):
            return index == 0  # read INT8 directly into a float average (int8kit.Mean/AveragePool)
        if is_data_movement(node) or is_binary(node):
            reason = _decide(node, self.config)
            return reason is None or reason.startswith("input arrives in FP32")
        return False
