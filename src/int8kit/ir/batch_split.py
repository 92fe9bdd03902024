"""Whether a graph may run a large batch as consecutive slices of it, and how large the slices should be.

A CNN treats every image of a batch on its own, so running 50 images as slices of 8 through one program
compiled for 8 gives the same numbers while its intermediate tensors stay in one core's caches. It pays
where a program runs on one thread, as each stream of the throughput mode does (INT8 at batch 50, two
streams of one thread on Zen 4: MobileNetV2 623 -> 677 images/s, EfficientNet-B0 252 -> 273, ResNet-50 97
-> 95-100), and costs where oneDNN already splits the batch between threads (one program on two threads:
MobileNetV2 627 -> 529-617 at batch 50, 603 -> 546 at 16), so only single-thread programs slice by default.
That holds only when nothing in the graph mixes images, which `split_blocker` proves from the graph
itself, never assumes:

- every value computed from the inputs (a *data* value) has the batch symbol as its first dim and nowhere
  else, so no op changed, moved or broadcast the batch axis;
- no node reads or writes along axis 0 (softmax, concat, gather, split... over the batch keep the shape);
- values computed from input *shapes* alone (Shape -> Gather -> Concat -> Reshape) enter data nodes only as
  shape arguments (a Reshape target, Slice bounds), where each slice's own size is the right value; the
  batch size used as a number (x * N) would differ per slice;
- every op is one whose meaning along the batch is elementwise by nature (`PER_IMAGE_OPS`).
A graph that fails any of these runs whole, with the reason logged.
"""

from __future__ import annotations

import math

import onnx_ir as ir

from int8kit.ops import DOMAIN

PER_IMAGE_OPS = frozenset(
    {
        "Add", "AveragePool", "Cast", "Ceil", "Clip", "Concat", "Constant", "DepthToSpace", "DequantizeLinear", "Div",
        "Dropout", "Equal", "Expand", "Flatten", "Floor", "Gather", "GlobalAveragePool", "GlobalMaxPool", "Greater",
        "HardSigmoid", "HardSwish", "Identity", "LeakyRelu", "Less", "LogSoftmax", "Max", "MaxPool", "Min", "Mul",
        "Neg", "Not", "Pad", "QuantizeLinear", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
        "Relu", "Reshape", "Resize", "Sigmoid", "Slice", "Softmax", "Split", "Squeeze", "Sub", "Tanh", "Transpose",
        "Unsqueeze", "Where", "Conv", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization", "Sqrt", "Exp",
        "Log", "Abs", "Pow", "LRN", "ReduceL1", "ReduceL2", "ReduceSumSquare", "SpaceToDepth",
    }
)  # fmt: skip
SHAPE_OPS = frozenset({"Shape", "Size"})
# Inputs that are shapes, bounds or axes: a value derived from the slice's own shape is right there.
SHAPE_ARGUMENTS = {
    "Reshape": {1},
    "Expand": {1},
    "Slice": {1, 2, 3, 4},
    "Pad": {1, 2, 3},
    "Squeeze": {1},
    "Unsqueeze": {1},
    "ReduceMax": {1},
    "ReduceMean": {1},
    "ReduceMin": {1},
    "ReduceProd": {1},
    "ReduceSum": {1},
    "ReduceL1": {1},
    "ReduceL2": {1},
    "ReduceSumSquare": {1},
    "Resize": {1, 2, 3},
    "Split": {1},
    "Clip": {1, 2},
}
DEFAULT_AXIS_ZERO = frozenset({"Gather", "Split"})  # ops whose axis defaults to 0 when the attribute is absent
# The largest intermediate of one slice. Measured on Zen 4 (1 MB L2 a core), INT8 MobileNetV2 batch 50 on
# single-thread programs: slices of 4-25 images all beat the whole batch; 8 (9.6 MB) was best.
CACHE_BUDGET_BYTES = 10 << 20


def split_blocker(graph: ir.Graph) -> str | None:
    """Why `graph` cannot run in slices of its batch, or None when it can (see the module docstring)."""
    inputs = [v for v in graph.inputs if v.const_value is None]
    batch, reason = _batch_symbol(inputs)
    if reason:
        return reason
    data = {v.name for v in inputs}
    shaped: set[str] = set()  # values computed from input shapes only
    for node in graph:
        names = [v.name if v is not None else "" for v in node.inputs]
        if not any(n in data for n in names):
            if any(n in shaped for n in names):
                shaped.update(v.name for v in node.outputs if v is not None)
            continue
        label = f"node {node.name!r} ({node.op_type})"
        if node.domain in ("", "ai.onnx") and node.op_type in SHAPE_OPS:
            shaped.update(v.name for v in node.outputs if v is not None)
            continue
        if node.domain not in ("", "ai.onnx", DOMAIN) or (node.domain != DOMAIN and node.op_type not in PER_IMAGE_OPS):
            return f"{label}: not known to treat images independently"
        allowed = SHAPE_ARGUMENTS.get(node.op_type, set())
        for i, name in enumerate(names):
            if name in shaped and i not in allowed:
                return f"{label}: uses a size of the batch as data (input {i})"
        if _touches_axis_zero(node):
            return f"{label}: works along the batch axis"
        for value in node.outputs:
            if value is None:
                continue
            reason = _batch_first(value, batch)
            if reason:
                return f"{label}: output {value.name!r} {reason}"
            data.add(value.name)
    for value in graph.outputs:
        if value.name not in data:
            return f"output {value.name!r} is not computed from the images"
    return None


def static_batch(graph: ir.Graph) -> int | None:
    """The batch every input declares as a number (torch.onnx.export without dynamic axes writes 1), or None."""
    dims = {v.shape[0] if v.shape is not None and len(v.shape) else None for v in graph.inputs if v.const_value is None}
    (dim,) = dims if len(dims) == 1 else (None,)
    return dim if isinstance(dim, int) and dim > 0 else None  # paddle2onnx writes a free batch as -1


def slice_size(largest_bytes_per_image: int, num_threads: int) -> int:
    """Images per slice for a program on `num_threads` threads: as many as keep the largest intermediate within
    CACHE_BUDGET_BYTES on one thread; 0 (run whole) on several, where oneDNN already splits the batch."""
    if num_threads > 1:
        return 0
    return max(CACHE_BUDGET_BYTES // max(largest_bytes_per_image, 1), 1)


def slices(batch: int, size: int) -> list[slice]:
    """Consecutive slices of `size` images covering `batch` (the last one may be shorter)."""
    return [slice(start, min(start + size, batch)) for start in range(0, batch, size)]


def _batch_symbol(inputs: list[ir.Value]) -> tuple[str, str | None]:
    """(the batch dim's name, None), or ("", why the inputs have no common named batch dim)."""
    symbols = set()
    for v in inputs:
        if v.shape is None or len(v.shape) == 0 or isinstance(v.shape[0], int) or v.shape[0].value is None:
            return "", f"input {v.name!r} has no named batch dim"
        symbols.add(v.shape[0].value)
    if len(symbols) != 1:
        return "", f"inputs name their batch dims differently: {sorted(symbols)}"
    return symbols.pop(), None


def _batch_first(value: ir.Value, batch: str) -> str | None:
    if value.shape is None or len(value.shape) == 0:
        return "has no known shape"
    dims = [d.value if isinstance(d, ir.SymbolicDim) else d for d in value.shape]
    if dims[0] != batch:
        return f"has first dim {dims[0]!r}, not the batch {batch!r}"
    if batch in dims[1:]:
        return "has the batch in a later dim"
    return None


def _touches_axis_zero(node: ir.Node) -> bool:
    rank = next((len(v.shape) for v in node.inputs if v is not None and v.shape is not None), None)
    axes: list[int] = []
    for name in ("axis", "axes"):
        attr = node.attributes.get(name)
        if attr is None:
            continue
        value = attr.value
        axes.extend(value if isinstance(value, (list, tuple)) else [value])
    if not axes and node.op_type in DEFAULT_AXIS_ZERO and "axis" not in node.attributes:
        return True
    if node.op_type == "Transpose":
        perm = node.attributes.get("perm")
        return perm is None or list(perm.value)[0] != 0
    return any(int(a) == 0 or (rank is not None and int(a) + rank == 0) for a in axes)


def largest_bytes_per_image(graph: ir.Graph) -> int:
    """Bytes per image of the largest value whose non-batch dims are known (the slice's cache footprint)."""
    best = 0
    for node in graph:
        for value in node.outputs:
            if value is None or value.shape is None or value.dtype is None or len(value.shape) == 0:
                continue
            rest = list(value.shape)[1:]
            if all(isinstance(d, int) for d in rest):
                best = max(best, math.prod(rest) * int(value.dtype.itemsize))
    return best
