"""Compile an optimised ONNX graph, for one set of input shapes, into a list of oneDNN primitives.

The result is a `Program`: prepared primitives with their argument arrays, weights already reordered
into the layouts oneDNN chose, intermediate tensors placed in one arena (`memory_plan`), and one
shared scratchpad. Running it is nothing but `execute` calls. The per-op lowerings live in
`lowering_*.py`; this module holds the bookkeeping they share.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from int8kit.errors import UnsupportedOpError
from int8kit.runtime import dnnl, host_eval, layouts, memory_plan, precision

logger = logging.getLogger(__name__)

NUMPY_TO_DNNL = {
    np.dtype(np.float32): dnnl.DT_F32,
    np.dtype(np.uint8): dnnl.DT_U8,
    np.dtype(np.int8): dnnl.DT_S8,
    np.dtype(np.int32): dnnl.DT_S32,
}
DNNL_TO_NUMPY = {v: k for k, v in NUMPY_TO_DNNL.items()}
ONNX_TO_DNNL = {1: dnnl.DT_F32, 2: dnnl.DT_U8, 3: dnnl.DT_S8}


@dataclass(eq=False)
class Storage:
    """Bytes that one or more tensors (views, in-place results) live in."""

    size: int
    external: bool = False  # graph inputs and outputs: the caller's arrays
    first: int = 1 << 30
    last: int = -1
    offset: int = -1


@dataclass(eq=False)
class Tensor:
    md: dnnl.MemoryDesc
    storage: Storage
    memory: dnnl.Memory | None = None
    reorders: list[Tensor] = field(default_factory=list)  # cached copies of this tensor in other layouts

    @property
    def dims(self) -> tuple[int, ...]:
        return self.md.dims

    @property
    def dtype(self) -> int:
        return self.md.dtype


@dataclass(eq=False)
class Const:
    """A constant oneDNN memory (weights, bias, scales) and the numpy buffer it points into."""

    memory: dnnl.Memory
    buffer: np.ndarray


@dataclass(eq=False)
class Step:
    primitive: dnnl.Primitive
    args: list[tuple[int, Tensor | Const]]
    label: str
    scratchpad: int = 0


@dataclass(eq=False)
class Program:
    """Everything needed to run the graph for one set of input shapes."""

    steps: list[tuple[dnnl.Primitive, object]]
    inputs: dict[str, Tensor]
    outputs: dict[str, Tensor]
    arena: np.ndarray
    labels: list[str]
    impls: list[str]
    stream: dnnl.Stream
    keep_alive: list[object]
    # (primitive handle, argument count, argument array) per step, bound once: a small model at batch 1 runs
    # ~100 primitives of a few microseconds each, where per-call Python work is a measurable share.
    calls: list[tuple] = field(init=False, repr=False)
    _execute: Callable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.calls = [(prim.handle, ctypes.c_int(len(args)), args) for prim, args in self.steps]
        self._execute = dnnl.execute_function()

    def run(self, feeds: dict[str, np.ndarray], outputs: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Run on C-contiguous `feeds`; write into `outputs` (C-contiguous, of the outputs' shapes) if given."""
        for name, tensor in self.inputs.items():
            tensor.memory.set_pointer(feeds[name].ctypes.data)
        results = {}
        for name, tensor in self.outputs.items():
            out = outputs[name] if outputs is not None else np.empty(tensor.dims, dtype=DNNL_TO_NUMPY[tensor.dtype])
            tensor.memory.set_pointer(out.ctypes.data)
            results[name] = out
        execute, stream = self._execute, self.stream.handle
        for handle, count, args in self.calls:
            status = execute(handle, stream, count, args)
            if status:
                dnnl.check(status, "execute")
        self.stream.wait()
        return results

    def profile(self, feeds: dict[str, np.ndarray]) -> list[tuple[str, str, float]]:
        """(label, implementation, seconds) per primitive for one run: where the time goes."""
        import time

        for name, tensor in self.inputs.items():
            tensor.memory.set_pointer(feeds[name].ctypes.data)
        keep = []
        for tensor in self.outputs.values():
            keep.append(np.empty(tensor.dims, dtype=DNNL_TO_NUMPY[tensor.dtype]))
            tensor.memory.set_pointer(keep[-1].ctypes.data)
        times = []
        for (prim, args), label, impl in zip(self.steps, self.labels, self.impls, strict=True):
            t0 = time.perf_counter()
            dnnl.execute(prim, self.stream, args)
            self.stream.wait()
            times.append((label, impl, time.perf_counter() - t0))
        return times


class WeightCache:
    """Reordered constants shared by the programs of one model (one per input shape).

    A fork reads its parent's entries and keeps its own apart, so a program compiled on trial (a layout
    policy being timed) adds nothing to the shared cache unless it is adopted."""

    def __init__(self, parent: WeightCache | None = None) -> None:
        self._entries: dict[str, list[tuple[dnnl.MemoryDesc, Const]]] = {}
        self._parent = parent

    def get(self, key: str, md: dnnl.MemoryDesc) -> Const | None:
        own = next((c for m, c in self._entries.get(key, []) if m == md), None)
        return own if own is not None or self._parent is None else self._parent.get(key, md)

    def put(self, key: str, md: dnnl.MemoryDesc, const: Const) -> None:
        self._entries.setdefault(key, []).append((md, const))

    def fork(self) -> WeightCache:
        return WeightCache(self)

    def adopt(self, fork: WeightCache) -> None:
        """Take over the entries `fork` added."""
        for key, entries in fork._entries.items():
            self._entries.setdefault(key, []).extend(entries)


class Builder:
    """State shared by the lowerings while one graph is compiled."""

    def __init__(
        self,
        graph: ir.Graph,
        input_shapes: dict[str, tuple[int, ...]],
        weights: WeightCache,
        opset: int = 17,
        precision_plan: precision.PrecisionPlan | None = None,
        layout_policy: str = layouts.BLOCKED,
    ):
        self.graph = graph
        self.layout_policy = layout_policy
        self.precision = precision_plan or precision.PrecisionPlan()
        self._graph_outputs = {v.name for v in graph.outputs}
        self._bf16_values: dict[str, bool] = {}
        self.opset = graph.opset_imports.get("", opset)
        self.host: dict[str, np.ndarray] = {}  # values known at compile time (shape arithmetic)
        # Zero Pads whose amounts were only known at compile time, left to the Conv reading them (value name
        # -> [top, left, bottom, right]); see lowering_layout.pad
        self.conv_pads: dict[str, list[int]] = {}
        self.weights = weights
        self.steps: list[Step] = []
        self.values: dict[str, Tensor] = {}
        self.keep_alive: list[object] = []
        self.node_index = 0
        self._last_use = self._last_uses(graph)
        self._compile_stream = dnnl.new_stream()
        self.inputs: dict[str, Tensor] = {}
        for value in graph.inputs:
            if value.const_value is not None:
                continue
            dtype = ONNX_TO_DNNL.get(int(value.dtype) if value.dtype is not None else 1, dnnl.DT_F32)
            md = dnnl.MemoryDesc.plain(input_shapes[value.name], dtype)
            tensor = self._external_tensor(md)
            self.values[value.name] = tensor
            self.inputs[value.name] = tensor

    @staticmethod
    def _last_uses(graph: ir.Graph) -> dict[str, int]:
        last: dict[str, int] = {}
        for i, node in enumerate(graph):
            for v in node.inputs:
                if v is not None:
                    last[v.name] = i
        for v in graph.outputs:
            last[v.name] = 1 << 30
        return last

    # ---- finishing (runtime.lowering walks the nodes) -------------------------------------------
    def finish(self) -> Program:
        """The graph outputs as plain float32/int8 tensors, then the finished program."""
        outputs = {}
        for value in self.graph.outputs:
            src = self.values.get(value.name) or self._host_tensor(value.name)
            dtype = dnnl.DT_F32 if src.dtype == dnnl.DT_BF16 else src.dtype  # outputs stay float32
            out = self._external_tensor(dnnl.MemoryDesc.plain(src.dims, dtype))
            self.reorder(src, out, label=f"output {value.name}")
            outputs[value.name] = out
        return self._finish(outputs)

    def _finish(self, outputs: dict[str, Tensor]) -> Program:
        for i, step in enumerate(self.steps):
            for _, t in step.args:
                if isinstance(t, Tensor):
                    t.storage.first = min(t.storage.first, i)
                    t.storage.last = max(t.storage.last, i)
        storages = {id(t.storage): t.storage for s in self.steps for _, t in s.args if isinstance(t, Tensor)}
        internal = [s for s in storages.values() if not s.external]
        buffers = [memory_plan.Buffer(s.size, s.first, s.last) for s in internal]
        arena_size = memory_plan.plan(buffers)
        arena = _aligned_empty(max(arena_size, 1))
        for s, b in zip(internal, buffers, strict=True):
            s.offset = b.offset
        scratch = max((s.scratchpad for s in self.steps), default=0)
        scratch_buf = _aligned_empty(max(scratch, 1))
        scratch_mem = dnnl.Memory(dnnl.MemoryDesc.plain((max(scratch, 1),), dnnl.DT_U8), scratch_buf.ctypes.data)
        prepared, labels, impls = [], [], []
        for step in self.steps:
            pairs = []
            for arg, t in step.args:
                if isinstance(t, Tensor) and t.memory is None:
                    ptr = None if t.storage.external else arena.ctypes.data + t.storage.offset
                    t.memory = dnnl.Memory(t.md, ptr)
                pairs.append((arg, t.memory))
            if step.scratchpad:
                pairs.append((dnnl.ARG_SCRATCHPAD, scratch_mem))
            prepared.append((step.primitive, dnnl.exec_args(pairs)))
            labels.append(step.label)
            impls.append(step.primitive.pd.impl_info())
        logger.debug("compiled %d primitives, arena %.1f MiB", len(prepared), arena_size / 2**20)
        return Program(
            steps=prepared,
            inputs=self.inputs,
            outputs=outputs,
            arena=arena,
            labels=labels,
            impls=impls,
            stream=dnnl.new_stream(),
            keep_alive=[self.steps, scratch_buf, scratch_mem, self.keep_alive],
        )

    def fold_on_host(self, node: ir.Node) -> bool:
        """Evaluate `node` now when every input is known at compile time (see host_eval)."""
        if not host_eval.is_standard(node) or not node.outputs:
            return False
        arrays = []
        for i in range(len(node.inputs)):
            if node.inputs[i] is None:
                arrays.append(None)
                continue
            known = self.constant_array(node, i)
            if known is None:
                return False
            arrays.append(known)
        if not arrays and node.op_type not in host_eval.HOST_ONLY_OPS:
            return False
        try:
            results = host_eval.evaluate(node, arrays, self.opset)
        except Exception as exc:  # the reference evaluator raises many types; name the node
            raise UnsupportedOpError(f"node {node.name!r} ({node.op_type}): cannot evaluate: {exc}") from exc
        for value, result in zip(node.outputs, results, strict=False):
            if value is not None:
                self.host[value.name] = result
        return True

    def _host_tensor(self, name: str) -> Tensor:
        """A compile-time value as a (constant) tensor, for a lowering or a graph output that needs one."""
        array = self.host.get(name)
        if array is None:
            raise UnsupportedOpError(f"value {name!r} is not computed by any node")
        if array.dtype not in NUMPY_TO_DNNL:
            if not np.issubdtype(array.dtype, np.number):
                raise UnsupportedOpError(f"value {name!r}: {array.dtype} data is not supported by the engine")
            array = array.astype(np.float32)
        const = self.const(array)
        self.keep_alive.append(const)
        return Tensor(const.memory.md, Storage(const.memory.md.size, external=True), memory=const.memory)

    # ---- helpers for lowerings ---------------------------------------------------------------
    def _external_tensor(self, md: dnnl.MemoryDesc) -> Tensor:
        t = Tensor(md, Storage(md.size, external=True))
        t.memory = dnnl.Memory(md, None)
        return t

    def input(self, node: ir.Node, i: int) -> Tensor:
        value = node.inputs[i]
        if value is not None and value.name not in self.values and value.name in self.host:
            self.values[value.name] = self._host_tensor(value.name)
        if value is None or value.name not in self.values:
            raise UnsupportedOpError(f"node {node.name!r} ({node.op_type}): input {i} is not a computed tensor")
        tensor = self.values[value.name]
        if tensor.dtype == dnnl.DT_BF16 and not self.reads_bf16(node):
            return self.as_md(tensor, tensor.md.like(dnnl.DT_F32), node.name)  # converted once, then cached
        return tensor

    # ---- bf16 ----------------------------------------------------------------------------------
    def runs_bf16(self, node: ir.Node) -> bool:
        """A float int8kit.Conv/Dense that the precision plan puts in bf16."""
        if not precision.is_compute(node) or self.precision.of(node) != "bf16":
            return False
        weights = self.constant_array(node, 1)
        return weights is None or weights.dtype != np.int8

    def reads_bf16(self, node: ir.Node) -> bool:
        """Whether `node`'s lowering takes bf16 inputs as they are (else Builder.input converts them)."""
        key = (node.domain or "", node.op_type)
        return key in precision.BF16_PASSTHROUGH or key in precision.SHAPE_READERS or self.runs_bf16(node)

    def bf16_output(self, node: ir.Node, i: int = 0) -> bool:
        """Whether output `i` of a bf16 node may stay bf16: not a graph output, and every reader takes bf16
        data, directly (a bf16 Conv/Dense, a shape query) or through ops whose outputs may stay bf16 in turn.
        Otherwise the producer writes f32 itself, which costs nothing, rather than a reorder after it."""
        value = node.outputs[i]
        if value is None:
            return False
        known = self._bf16_values.get(value.name)
        if known is not None:
            return known
        self._bf16_values[value.name] = False  # a cycle cannot happen in a DAG; this only guards recursion
        ok = value.name not in self._graph_outputs and bool(value.uses())
        for user, _ in value.uses() if ok else ():
            key = (user.domain or "", user.op_type)
            if key in precision.SHAPE_READERS or self.runs_bf16(user):
                continue
            if key not in precision.BF16_PASSTHROUGH or not all(
                self.bf16_output(user, j)
                for j, out in enumerate(user.outputs)
                if out is not None and (out.uses() or out.name in self._graph_outputs)
            ):
                ok = False
                break
        self._bf16_values[value.name] = ok
        return ok

    def set_output(self, node: ir.Node, tensor: Tensor, i: int = 0) -> None:
        self.values[node.outputs[i].name] = tensor

    def new_tensor(self, md: dnnl.MemoryDesc) -> Tensor:
        return Tensor(md, Storage(md.size))

    def view(self, tensor: Tensor, md: dnnl.MemoryDesc) -> Tensor:
        """Another descriptor over the same bytes (reshape of a plain tensor, in-place results).

        The caller's arrays (graph inputs) are copied into the arena first: their memory objects are
        re-pointed at every run, and a view would not follow.
        """
        if tensor.storage.external:
            copy = self.new_tensor(tensor.md)
            self.reorder(tensor, copy, label="copy of a graph input")
            tensor = copy
        return Tensor(md, tensor.storage)

    def is_last_use(self, node: ir.Node, i: int) -> bool:
        value = node.inputs[i]
        return value is not None and self._last_use.get(value.name, -1) <= self.node_index

    def add_step(self, pd: dnnl.PrimitiveDesc, args: list[tuple[int, Tensor | Const]], label: str) -> None:
        self.steps.append(Step(dnnl.Primitive(pd), args, label, pd.scratchpad_size()))

    def reorder(
        self,
        src: Tensor,
        dst: Tensor,
        label: str,
        src_scale: float | None = None,
        dst_scale: float | None = None,
        src_zero_point: int = 0,
        dst_zero_point: int = 0,
    ) -> None:
        both_plain = src.md.is_plain() and dst.md.is_plain()
        same_layout = both_plain or (src.md.tag() is not None and src.md.tag() == dst.md.tag())
        if (src_zero_point or dst_zero_point) and not same_layout:
            # oneDNN 3.2's jit reorder drops a destination zero point while it changes the layout for many
            # channel counts (f32 nchw -> u8 nhwc of more than 16 channels not a multiple of 4, 16x16 and up:
            # every value off by the zero point; tests/runtime/test_zero_point_reorder.py): zero points only
            # in reorders that keep the layout, the layout changes in reorders without attributes.
            plain_src = self.as_plain(src, label)
            plain_dst = dst if dst.md.is_plain() else self.new_tensor(dnnl.MemoryDesc.plain(dst.dims, dst.dtype))
            self.reorder(plain_src, plain_dst, label, src_scale, dst_scale, src_zero_point, dst_zero_point)
            if plain_dst is not dst:
                self.reorder(plain_dst, dst, f"{label} (layout)")
            return
        scales, zero_points = {}, {}
        args: list[tuple[int, Tensor | Const]] = [(dnnl.ARG_SRC, src), (dnnl.ARG_DST, dst)]
        for arg, scale, zp in ((dnnl.ARG_SRC, src_scale, src_zero_point), (dnnl.ARG_DST, dst_scale, dst_zero_point)):
            if scale is not None:
                scales[arg] = 0
                args.append((dnnl.ARG_ATTR_SCALES | arg, self.scales([scale])))
            if zp:
                zero_points[arg] = 0
                args.append((dnnl.ARG_ATTR_ZERO_POINTS | arg, self.zero_points([zp])))
        pd = dnnl.reorder_pd(src.md, dst.md, dnnl.Attr(scales, None, zero_points))
        self.add_step(pd, args, label)

    def as_md(self, tensor: Tensor, md: dnnl.MemoryDesc, label: str) -> Tensor:
        """`tensor` in layout `md`: itself when it already is, else a (cached) reordered copy."""
        if tensor.md == md:
            return tensor
        for copy in tensor.reorders:
            if copy.md == md:
                return copy
        copy = self.new_tensor(md)
        self.reorder(tensor, copy, label=f"reorder for {label}")
        tensor.reorders.append(copy)
        return copy

    def as_plain(self, tensor: Tensor, label: str) -> Tensor:
        return self.as_md(tensor, dnnl.MemoryDesc.plain(tensor.dims, tensor.dtype), label)

    def const(self, array: np.ndarray, dims: tuple[int, ...] | None = None, md: dnnl.MemoryDesc | None = None) -> Const:
        """A constant memory over a private copy of `array` (plain, or in layout `md`)."""
        buf = np.ascontiguousarray(array, dtype=array.dtype).copy()
        plain = dnnl.MemoryDesc.plain(dims or buf.shape or (1,), NUMPY_TO_DNNL[buf.dtype])
        if md is None or md == plain:
            return Const(dnnl.Memory(plain, buf.ctypes.data), buf)
        out = _aligned_empty(md.size)
        dst = Const(dnnl.Memory(md, out.ctypes.data), out)
        self._reorder_now(Const(dnnl.Memory(plain, buf.ctypes.data), buf), dst)
        return dst

    def scales(self, values) -> Const:
        return self.const(np.asarray(values, dtype=np.float32).reshape(-1))

    def zero_points(self, values) -> Const:
        return self.const(np.asarray(values, dtype=np.int32).reshape(-1))

    def reordered_const(self, key: str, array: np.ndarray, dims: tuple[int, ...], md: dnnl.MemoryDesc) -> Const:
        """Weights reordered once into the layout a primitive chose (cached across input shapes)."""
        cached = self.weights.get(key, md)
        if cached is not None:
            return cached
        src = self.const(array, dims)
        buf = _aligned_empty(md.size)
        dst = Const(dnnl.Memory(md, buf.ctypes.data), buf)
        self._reorder_now(src, dst)
        self.weights.put(key, md, dst)
        return dst

    def _reorder_now(self, src: Const, dst: Const) -> None:
        """Reorder a constant into another layout at compile time."""
        md = dst.memory.md
        prim = dnnl.Primitive(dnnl.reorder_pd(src.memory.md, md, dnnl.Attr()))
        scratch = _aligned_empty(max(prim.pd.scratchpad_size(), 1))
        scratch_mem = dnnl.Memory(dnnl.MemoryDesc.plain((scratch.size,), dnnl.DT_U8), scratch.ctypes.data)
        dnnl.execute(
            prim,
            self._compile_stream,
            dnnl.exec_args(
                [(dnnl.ARG_SRC, src.memory), (dnnl.ARG_DST, dst.memory), (dnnl.ARG_SCRATCHPAD, scratch_mem)]
            ),
        )
        self._compile_stream.wait()

    def constant_array(self, node: ir.Node, i: int) -> np.ndarray | None:
        value = node.inputs[i] if i < len(node.inputs) else None
        if value is None:
            return None
        if value.const_value is not None:
            return value.const_value.numpy()
        return self.host.get(value.name)

    def first_fast(
        self, label: str, candidates: list[Callable[[], dnnl.PrimitiveDesc]], fallback: bool = True
    ) -> dnnl.PrimitiveDesc | None:
        """The first candidate primitive oneDNN implements with an optimised kernel.

        Candidates differ in the layouts they ask for; oneDNN only has a reference kernel for some
        layout combinations (grouped convolutions in nChw16c, eltwise on padded blocks, broadcasts
        across blocked/plain), and those run 10-1000x slower. The lowering then reorders its inputs into
        the layouts of the primitive chosen here. When every candidate is a reference kernel, the first is
        used and a warning names the node; with `fallback=False`, None is returned instead (the lowering
        then tries another formulation).
        """
        first, error = None, None
        for make in candidates:
            try:
                pd = make()
            except dnnl.DnnlError as exc:
                error = error or exc
                continue
            if not pd.impl_info().startswith("ref"):
                return pd
            first = first or pd
        if not fallback:
            return None
        if first is None:
            raise error or UnsupportedOpError(f"{label}: no primitive")
        logger.warning("%s: only oneDNN's reference kernel (%s) implements it", label, first.impl_info())
        return first


def layout_variants(md: dnnl.MemoryDesc) -> list[dnnl.MemoryDesc]:
    """`md` itself, then the channels-last and plain layouts of the same dims (the ones every kernel has)."""
    variants = [md]
    tags = [dnnl.TAG_ACDB, dnnl.PLAIN_TAG[4]] if md.ndims == 4 else [dnnl.PLAIN_TAG.get(md.ndims)]
    for tag in tags:
        if tag is None:
            continue
        other = dnnl.MemoryDesc.with_tag(md.dims, md.dtype, tag)
        if all(other != v for v in variants):
            variants.append(other)
    return variants


def with_layout_of(dims: tuple[int, ...], dtype: int, like: dnnl.MemoryDesc) -> dnnl.MemoryDesc:
    """A descriptor of `dims` in `like`'s layout when it is a known tag of the same rank, else plain."""
    tag = like.tag() if like.ndims == len(dims) else None
    return dnnl.MemoryDesc.with_tag(dims, dtype, tag if tag is not None else dnnl.PLAIN_TAG[len(dims)])


def _aligned_empty(nbytes: int, alignment: int = 64) -> np.ndarray:
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = (-raw.ctypes.data) % alignment
    return raw[start : start + nbytes]
