"""Give every value a dtype and shape where they can be derived.

The quantizer needs dtypes to pick which tensors to observe, the converter needs ranks (Gemm vs
MatMul, channel axes), and the dot view labels edges with them. onnx's shape inference does the
standard ops; the int8kit-domain ops it does not know get their output dtype from their attributes
(y_type) and their shape from the conv/dense formulas, so converted models are labelled too.
"""

from __future__ import annotations

import logging

import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass

from int8kit.metadata import PROBE_SHAPES_KEY
from int8kit.ops import DOMAIN

logger = logging.getLogger(__name__)


def _conv_shape(node: ir.Node) -> ir.Shape | None:
    """Output shape of an int8kit Conv (2-D, NCHW), from X's and W's shapes and the attributes."""
    x, w = node.inputs[0], node.inputs[1]
    if x is None or w is None or x.shape is None or w.shape is None or len(x.shape) != 4:
        return None
    n, _, *spatial = x.shape
    kernel = list(w.shape)[2:]
    if not all(isinstance(d, int) for d in [*spatial, *kernel]):
        return None
    strides = node.attributes.get_ints("strides", [1, 1])
    pads = node.attributes.get_ints("pads", [0, 0, 0, 0])
    dilations = node.attributes.get_ints("dilations", [1, 1])
    out = [
        (size + pads[i] + pads[i + 2] - dilations[i] * (kernel[i] - 1) - 1) // strides[i] + 1
        for i, size in enumerate(spatial)
    ]
    return ir.Shape([n, w.shape[0], *out])


def _dense_shape(node: ir.Node) -> ir.Shape | None:
    x, w = node.inputs[0], node.inputs[1]
    if x is None or w is None or x.shape is None or w.shape is None or not len(x.shape):
        return None
    axis = node.attributes.get_int("axis", 1)
    return ir.Shape([*list(x.shape)[:axis], w.shape[0]])


def _infer_int8kit(model: ir.Model) -> bool:
    """Output dtype (and shape) of int8kit-domain ops, which onnx's inference does not know."""
    modified = False
    for node in model.graph:
        if node.domain != DOMAIN or not node.outputs:
            continue
        out = node.outputs[0]
        if out.dtype is None:
            y_type = node.attributes.get_int("y_type", None)
            if y_type is not None:
                out.dtype = ir.DataType(y_type)
                modified = True
            elif node.op_type in ("Conv", "Dense"):
                out.dtype = ir.DataType.FLOAT
                modified = True
        if out.shape is None:
            shape = None
            if node.op_type == "Conv":
                shape = _conv_shape(node)
            elif node.op_type == "Dense":
                shape = _dense_shape(node)
            elif node.op_type == "Requantize" and node.inputs[0] is not None:
                shape = node.inputs[0].shape
            if shape is not None:
                out.shape = shape
                modified = True
    return modified


PROBE_SIZES = ((97, 89, 83, 79), (61, 67, 71, 73))  # distinct primes per free dim, two probes


def record_probe_shapes(model: ir.Model) -> None:
    """Concrete shapes of every value under two probe sizes of the inputs' free dims (in Value.meta).

    With dynamic input sizes (paddle2onnx exports H and W as "?"), onnx names every conv output's spatial
    dims with fresh symbols, so two branches of a residual block have "different" shapes. Two values whose
    shapes agree under both probes are the same function of the input size: what the residual-Add
    fusion needs to know. The runtime checks the shapes again when it compiles.
    """
    free = {
        (v.name, i)
        for v in model.graph.inputs
        if v.shape is not None
        for i, d in enumerate(v.shape)
        if not isinstance(d, int)
    }
    # A free batch dim alone keeps its symbol through every op: symbols compare fine, no probes needed.
    if all(i == 0 for _, i in free) or any(n.domain == DOMAIN for n in model.graph):
        return
    import onnx

    proto = ir.serde.serialize_model(model)  # once: the probes differ only in the inputs' dims
    del proto.graph.value_info[:]
    probes: list[dict[str, tuple[int, ...]]] = []
    for sizes in PROBE_SIZES:
        for k, inp in enumerate(proto.graph.input):
            for i, dim in enumerate(inp.type.tensor_type.shape.dim):
                if (inp.name, i) in free:
                    dim.dim_value = sizes[(k + i) % len(sizes)]  # replaces a dim_param (a oneof)
        try:
            inferred = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)
        except Exception as exc:  # a graph that only works at some sizes: no probes, nothing claimed
            logger.debug("probe shape inference failed: %s", exc)
            return
        shapes = {}
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
            dims = vi.type.tensor_type.shape.dim
            if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
                shapes[vi.name] = tuple(d.dim_value for d in dims)
        probes.append(shapes)
    for node in model.graph:
        for v in node.outputs:
            if v is not None and all(v.name in p for p in probes):
                v.meta[PROBE_SHAPES_KEY] = tuple(p[v.name] for p in probes)


class InferShapesPass(ir.passes.InPlacePass):
    """onnx shape inference (non-strict: unknown ops are skipped, not fatal) plus int8kit-op dtypes."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        onnx_pass = ShapeInferencePass(check_type=False, strict_mode=False, data_prop=True)
        modified = onnx_pass(model).modified
        # int8kit ops in order, each followed by onnx inference for the standard ops after it;
        # bounded by the number of int8kit ops, normally one or two rounds as values all resolve.
        for _ in range(sum(1 for n in model.graph if n.domain == DOMAIN)):
            if not _infer_int8kit(model):
                break
            onnx_pass(model)
            modified = True
        record_probe_shapes(model)
        unknown = [v.name for node in model.graph for v in node.outputs if v.dtype is None or v.shape is None]
        if unknown:
            logger.info("%d values still lack dtype or shape, e.g. %s", len(unknown), unknown[:5])
        return ir.passes.PassResult(model, modified=modified)
