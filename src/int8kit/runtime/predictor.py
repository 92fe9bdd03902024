"""`Predictor`: load an ONNX model once, run it on numpy arrays with oneDNN.

FP32 models are optimised at load (intake + fusions); models int8kit already optimised or converted
(metadata `int8kit.optimized`) run as they are. A program is compiled per input shape and kept in a
bounded least-recently-used cache, so any batch size works without reconverting and memory stays bounded.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir

from int8kit import ops
from int8kit.errors import ConfigError, InputError
from int8kit.ir import batch_split
from int8kit.runtime import cpu, fork_guard, layouts
from int8kit.runtime.compile import Program, WeightCache
from int8kit.runtime.lowering import compile_graph, supported_ops
from int8kit.runtime.precision import PrecisionPlan, check_precision
from int8kit.runtime.streams import StreamConfig, StreamPool

logger = logging.getLogger(__name__)

# Programs with fewer FP32 convolutions than this are not worth timing layout policies for (a test graph).
MIN_TUNED_CONVS = 4

# What each graph input type is fed as (a model with its preprocessing inside reads uint8 images).
INPUT_DTYPES = {ir.DataType.UINT8: np.dtype(np.uint8), ir.DataType.INT8: np.dtype(np.int8)}

ModelLike = str | os.PathLike | onnx.ModelProto | ir.Model
Inputs = np.ndarray | dict[str, np.ndarray]

# Input shapes whose compiled programs a Predictor keeps (least recently used dropped first). Each program
# holds an arena of intermediate buffers (MBs for a 224x224 CNN at batch 50); the reordered weights are
# shared by all programs and not counted.
DEFAULT_PROGRAM_CACHE_SIZE = 8
MAX_TENSOR_BYTES_ENV = "INT8KIT_MAX_TENSOR_BYTES"


def default_max_tensor_bytes() -> int:
    """$INT8KIT_MAX_TENSOR_BYTES, else half the machine's physical memory (no single tensor may be larger)."""
    env = os.environ.get(MAX_TENSOR_BYTES_ENV)
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise ConfigError(f"{MAX_TENSOR_BYTES_ENV}={env!r} is not a number of bytes") from None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def prepare_model(model: ModelLike, extra_outputs: Sequence[str] = ()) -> ir.Model:
    """The graph the engine runs: loaded, checked, and optimised unless int8kit already did that (a QDQ
    model is converted, as `int8kit convert` would with its defaults, so it runs as the INT8 model it is)."""
    from int8kit.ir.check_supported import check_supported
    from int8kit.ir.load import as_ir_model

    graph_model = as_ir_model(model)
    if extra_outputs:
        _expose_outputs(graph_model, extra_outputs)
    if ops.OPTIMIZED_KEY not in graph_model.metadata_props:
        if _is_qdq(graph_model):
            from int8kit.convert.pipeline import convert

            logger.info("a QDQ (fake-quant) model: converted to INT8 with the default settings first")
            graph_model = convert(graph_model).model
        else:
            from int8kit.ir.optimize import optimize_fp32

            graph_model = optimize_fp32(graph_model)
    check_supported(graph_model, supported_ops())
    return graph_model


def _is_qdq(model: ir.Model) -> bool:
    """A fake-quant model: some DequantizeLinear feeds a weight (input 1) of a Conv, Gemm or MatMul."""
    for node in model.graph:
        if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.inputs) > 1 and node.inputs[1] is not None:
            producer = node.inputs[1].producer()
            if producer is not None and producer.op_type == "DequantizeLinear":
                return True
    return False


def _expose_outputs(model: ir.Model, names: Sequence[str]) -> None:
    """Make intermediate values graph outputs (calibration reads them); fusions then keep them."""
    by_name = {v.name: v for node in model.graph for v in node.outputs if v is not None}
    by_name.update({v.name: v for v in model.graph.inputs})
    present = {v.name for v in model.graph.outputs}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InputError(f"extra outputs not in the model: {', '.join(missing)}")
    for name in names:
        if name not in present:
            model.graph.outputs.append(by_name[name])
            present.add(name)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


@dataclass(frozen=True)
class _ThreadsKey:
    """Program-cache key of programs for another OpenMP thread count (the one-thread parts of a batch)."""

    shapes: tuple
    threads: int


class Predictor:
    """Runs an ONNX image classifier (FP32, or INT8 converted by int8kit) on the CPU with oneDNN.

    Thread-safe by per-run programs, not a lock: a compiled `Program` owns mutable state (its arena of
    intermediate buffers, the input/output pointers of its oneDNN memories), so each run checks one out of a
    per-shape pool and returns it after; a thread that finds the pool empty gets a new program compiled
    against the shared `WeightCache`, so the reordered weights exist once however many threads run. A lock
    would serialise the threads and waste the cores the ctypes calls (which release the GIL) could use;
    the pool costs one arena per concurrent run. Only compilation is serialised (it fills the WeightCache).

    `streams` > 1 adds throughput mode: `submit` / `map` / `run_many` run batches concurrently on that many
    threads of `num_threads` OpenMP threads each, pinned to disjoint cores (see `int8kit.runtime.streams`).
    `program_cache_size` bounds how many input shapes keep their programs (least recently used dropped
    first; default DEFAULT_PROGRAM_CACHE_SIZE = 8); `max_tensor_bytes` refuses a shape whose largest input or
    intermediate tensor would exceed it, naming the tensor, the dimension and the bytes, before anything is
    allocated (default `default_max_tensor_bytes()`: $INT8KIT_MAX_TENSOR_BYTES, else half the RAM).
    In a child forked after a multi-threaded run, the work runs on a fresh thread (see `fork_guard`).
    `slice_images` runs a larger batch as consecutive slices of that many images through one program, so
    its intermediates stay in the caches (see `int8kit.ir.batch_split`); None chooses the size from
    the model's largest intermediate for single-thread programs (each stream of throughput mode) and runs
    batches whole on more threads, 0 never slices. Only graphs proven to treat images independently
    are sliced. `split_batch` (default on) runs a batch of at least `num_threads` images on a single
    stream as `num_threads` parts at once, each on one pinned thread (one program per part): at batch 16
    on 2 cores that ran MobileNetV2, EfficientNet-B0 and MnasNet INT8 8-14% faster than one program on
    two threads, whose every primitive splits its work and synchronises its threads, and ResNet-50 the
    same. Same graphs only as slicing (images independent). `precision` "bf16" runs the float
    convolutions and inner products in bf16 (inputs and outputs stay float32); a converted model's nodes
    marked `precision: "bf16"` run bf16 either way. On a CPU without
    bf16 kernels a warning says so and everything float runs FP32 (`self.precision` is then "fp32").
    """

    def __init__(
        self,
        model: ModelLike,
        num_threads: int | None = None,
        extra_outputs: Sequence[str] = (),
        *,
        streams: int = 1,
        program_cache_size: int = DEFAULT_PROGRAM_CACHE_SIZE,
        max_tensor_bytes: int | None = None,
        pin_streams: bool = True,
        precision: str = "fp32",
        slice_images: int | None = None,
        layout_policy: str = layouts.AUTO,
        split_batch: bool = True,
    ):
        check_precision(precision)
        if program_cache_size < 1:
            raise ConfigError(f"program cache size must be at least 1, got {program_cache_size}")
        self.model = prepare_model(model, extra_outputs)
        self.precision_plan = PrecisionPlan.resolve(precision, self.model.graph)
        self.precision = self.precision_plan.default
        self.num_threads = num_threads or cpu.get_num_threads()
        self.stream_config = StreamConfig(streams, self.num_threads, pin_streams)
        self.program_cache_size = program_cache_size
        if slice_images is not None and slice_images < 0:
            raise ConfigError(f"slice_images must be 0 (never slice) or more, got {slice_images}")
        # A graph still at a fixed batch after the intake (int8kit.ir.free_static_batch) runs a larger batch as
        # consecutive runs at the batch it was exported for: its images may mix at any other.
        self.fixed_batch = batch_split.static_batch(self.model.graph)
        # why images cannot run apart (None: they can), for slicing and split batches alike
        self._split_blocker = batch_split.split_blocker(self.model.graph)
        self.slice_images = self._choose_slice(slice_images)
        self.split_batch = split_batch and self._split_blocker is None
        self.max_tensor_bytes = max_tensor_bytes if max_tensor_bytes is not None else default_max_tensor_bytes()
        graph = self.model.graph
        self._inputs = [v for v in graph.inputs if v.const_value is None]
        self.input_names = [v.name for v in self._inputs]
        self.output_names = [v.name for v in graph.outputs]
        self._weights = WeightCache()
        if layout_policy != layouts.AUTO and layout_policy not in layouts.POLICIES:
            known = ", ".join((layouts.AUTO, *layouts.POLICIES))
            raise ConfigError(f"unknown layout policy {layout_policy!r}; known: {known}")
        self.layout_policy = layout_policy
        self.layout_policies: dict[tuple, str] = {}  # shape key -> the FP32 layout policy its programs use
        self._programs: OrderedDict[tuple, list[Program]] = OrderedDict()  # shape key -> idle programs
        self._lock = threading.Lock()
        self._compile_lock = threading.Lock()
        self._pool: StreamPool | None = None
        self._part_pool: StreamPool | None = None  # one single-thread worker per core, for split batches
        self.compiles = 0  # programs compiled so far (each thread running one shape concurrently needs one)
        fork_guard.on_fork_in_child(self)

    @property
    def streams(self) -> int:
        return self.stream_config.streams

    @property
    def input_dtypes(self) -> dict[str, np.dtype]:
        """Each input's numpy type: float32, or uint8/int8 for a model that preprocesses its own pixels."""
        return {v.name: INPUT_DTYPES.get(v.dtype, np.dtype(np.float32)) for v in self._inputs}

    @property
    def input_shapes(self) -> dict[str, tuple[int | str | None, ...] | None]:
        """Each input's declared dims (ints; symbolic names or None where free)."""
        return {
            v.name: None
            if v.shape is None
            else tuple(d if isinstance(d, int) else (d.value if d is not None else None) for d in v.shape)
            for v in self._inputs
        }

    @property
    def cached_shapes(self) -> list[tuple]:
        """Input-shape keys with compiled programs, least recently used first."""
        with self._lock:
            return [k for k in self._programs if not isinstance(k, _ThreadsKey)]

    # ---- running ---------------------------------------------------------------------------------
    def run(self, x: np.ndarray) -> np.ndarray:
        """Run a single-input model; return its first output."""
        return self.run_dict(self._as_feeds(x))[self.output_names[0]]

    def run_dict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on named inputs; safe to call from several threads at once."""
        feeds = self._check_inputs(inputs)
        return fork_guard.call(self._run_feeds, feeds)

    def submit(self, inputs: Inputs) -> Future:
        """Run one batch on a stream; the Future holds what `run` (array) or `run_dict` (dict) returns."""
        if isinstance(inputs, dict):
            return self.stream_pool().submit(self.run_dict, inputs)
        feeds = self._as_feeds(inputs)
        name = self.output_names[0]
        return self.stream_pool().submit(lambda: self.run_dict(feeds)[name])

    def map(self, batches: Iterable[Inputs], window: int | None = None) -> Iterator:
        """Results of `batches` in order, `streams` of them running at once, at most `window` in flight."""
        window = window or 2 * self.streams
        pending: deque[Future] = deque()
        try:
            for batch in batches:
                pending.append(self.submit(batch))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def run_many(self, batches: Iterable[Inputs]) -> list:
        """`list(self.map(batches))`: every batch run concurrently on the streams, results in order."""
        return list(self.map(batches))

    def close(self) -> None:
        """Stop the stream threads (they are also stopped when the Predictor is collected)."""
        for pool in (self._pool, self._part_pool):
            if pool is not None:
                pool.close()
        self._pool = self._part_pool = None

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stream_pool(self) -> StreamPool:
        """The stream threads (started on first use): `submit(fn, ...)` runs any callable on one."""
        with self._lock:
            if self._pool is None:
                self._pool = StreamPool(self.stream_config)
            return self._pool

    def _run_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = next(iter(feeds.values())).shape[0]
        parts = self._parallel_parts(batch)
        if parts:
            return self._run_parts(feeds, parts)
        cpu.set_num_threads(self.num_threads)
        if self.fixed_batch and batch > self.fixed_batch:  # outputs need not lead with the batch: concatenated
            runs = [
                self._run_program({k: v[p] for k, v in feeds.items()})
                for p in batch_split.slices(batch, self.fixed_batch)
            ]
            return {name: np.concatenate([r[name] for r in runs]) for name in runs[0]}
        if not self.slice_images or batch <= self.slice_images:
            return self._run_program(feeds)
        results: dict[str, np.ndarray] = {}
        for part in batch_split.slices(batch, self.slice_images):
            chunk = {k: v[part] for k, v in feeds.items()}
            if not results:
                first = self._run_program(chunk)
                results = {k: np.empty((batch, *v.shape[1:]), v.dtype) for k, v in first.items()}
                for k, v in first.items():
                    results[k][part] = v
            else:
                self._run_program(chunk, {k: v[part] for k, v in results.items()})
        return results

    def batch_parts(self, batch: int) -> int:
        """How many one-thread parts a batch of this size runs as on a single stream (1: run whole)."""
        parts = self._parallel_parts(batch)
        return len(parts) if parts else 1

    def _parallel_parts(self, batch: int) -> list[slice] | None:
        """The parts a single-stream batch runs as, one per thread (None: run it as one program). Only
        batches that split evenly, or into parts of at least 4 images (at most 1/4 imbalance)."""
        threads = self.num_threads
        if not self.split_batch or self.streams > 1 or threads < 2 or batch < threads:
            return None
        if batch % threads and batch < 4 * threads:
            return None
        return [slice(batch * i // threads, batch * (i + 1) // threads) for i in range(threads)]

    def _run_parts(self, feeds: dict[str, np.ndarray], parts: list[slice]) -> dict[str, np.ndarray]:
        with self._lock:
            if self._part_pool is None:
                self._part_pool = StreamPool(StreamConfig(self.num_threads, 1, self.stream_config.pin))
            pool = self._part_pool
        futures = [pool.submit(self._run_program, {k: v[p] for k, v in feeds.items()}, None, 1) for p in parts]
        results = [f.result() for f in futures]
        return {name: np.concatenate([r[name] for r in results]) for name in results[0]}

    def _run_program(
        self, feeds: dict[str, np.ndarray], outputs: dict[str, np.ndarray] | None = None, threads: int | None = None
    ) -> dict[str, np.ndarray]:
        shapes = {k: v.shape for k, v in feeds.items()}
        key = self._pool_key(self._key(shapes), threads)
        prog = self._checkout(key, shapes)
        try:
            return prog.run(feeds, outputs)
        finally:
            self._release(key, prog)

    def _pool_key(self, key: tuple, threads: int | None) -> tuple | _ThreadsKey:
        """Programs are compiled for one OpenMP thread count: another count has its own cache entries."""
        return key if threads in (None, self.num_threads) else _ThreadsKey(key, threads)

    def _choose_slice(self, requested: int | None) -> int:
        """Images per slice (0: run every batch whole): the request, or the cache budget's choice."""
        if requested == 0:
            return 0
        if self._split_blocker is not None:
            logger.info("batches run whole: %s", self._split_blocker)
            return 0
        if requested is not None:
            return requested
        per_image = batch_split.largest_bytes_per_image(self.model.graph)
        return batch_split.slice_size(per_image, self.num_threads)

    # ---- programs --------------------------------------------------------------------------------
    def program(self, shapes: dict[str, tuple[int, ...]]) -> Program:
        """A compiled program for these input shapes, for inspection (run through `run`/`run_dict`)."""
        key = self._key(shapes)
        prog = fork_guard.call(self._checkout, key, shapes)
        self._release(key, prog)
        return prog

    def kernels(self, x_shape: tuple[int, ...] | None = None) -> list[tuple[str, str]]:
        """(node, oneDNN implementation) for every primitive of the program for one input shape."""
        if x_shape is None and not self.cached_shapes:
            raise InputError("no program compiled yet: pass the input shape to kernels()")
        shape = x_shape or self.cached_shapes[-1][0]
        prog = self.program({self.input_names[0]: tuple(shape)})
        return list(zip(prog.labels, prog.impls, strict=True))

    def _key(self, shapes: dict[str, tuple[int, ...]]) -> tuple:
        return tuple(tuple(int(d) for d in shapes[n]) for n in self.input_names)

    def _checkout(self, key: tuple, shapes: dict[str, tuple[int, ...]]) -> Program:
        with self._lock:
            idle = self._programs.get(key)
            if idle is not None:
                self._programs.move_to_end(key)
                if idle:
                    return idle.pop()
        self._check_sizes(shapes)
        with self._compile_lock:
            cpu.set_num_threads(key.threads if isinstance(key, _ThreadsKey) else self.num_threads)
            prog = self._compile(key, dict(shapes))
        logger.info("compiled %d primitives for input shapes %s", len(prog.steps), key)
        with self._lock:
            self._programs.setdefault(key, [])
            self._programs.move_to_end(key)
            while len(self._programs) > self.program_cache_size:
                evicted, _ = self._programs.popitem(last=False)
                logger.debug("program cache full (%d shapes): dropped %s", self.program_cache_size, evicted)
        return prog

    def _compile(self, key: tuple, shapes: dict[str, tuple[int, ...]]) -> Program:
        """A program under this shape's layout policy: the one given, else (AUTO) the first time the fastest
        (runtime.layouts) for a program with FP32 convolutions whose run takes TUNE_ABOVE_S to TUNE_BELOW_S."""
        policy = self.layout_policies.get(key) or (None if self.layout_policy == layouts.AUTO else self.layout_policy)
        if policy is not None:
            self.layout_policies[key] = policy
            self.compiles += 1
            return self._compile_with(shapes, policy, self._weights)
        trial = self._weights.fork()
        prog = self._compile_with(shapes, layouts.BLOCKED, trial)
        self.compiles += 1
        policy = layouts.BLOCKED
        if self._fp32_convs() >= MIN_TUNED_CONVS:
            feeds = {n: np.zeros(shapes[n], self.input_dtypes[n]) for n in self.input_names}
            prog.run(feeds)
            if layouts.TUNE_ABOVE_S < layouts.best_run_time(lambda: prog.run(feeds), 0.0) < layouts.TUNE_BELOW_S:
                candidates = {layouts.BLOCKED: (prog, trial)}
                for other in layouts.POLICIES[1:]:
                    fork = self._weights.fork()
                    candidates[other] = (self._compile_with(shapes, other, fork), fork)
                runs = {name: (lambda p=p: p.run(feeds)) for name, (p, _) in candidates.items()}
                policy, times = layouts.choose(runs)
                prog, trial = candidates[policy]
                logger.info(
                    "layout policy %s for input shapes %s (%s)",
                    policy,
                    key,
                    ", ".join(f"{name} {t * 1e3:.3f} ms" for name, t in times.items()),
                )
        self._weights.adopt(trial)
        self.layout_policies[key] = policy
        return prog

    def _compile_with(self, shapes: dict[str, tuple[int, ...]], policy: str, weights: WeightCache) -> Program:
        graph = self.model.graph
        return compile_graph(graph, shapes, weights, precision_plan=self.precision_plan, layout_policy=policy)

    def _fp32_convs(self) -> int:
        """FP32 convolutions of the model: the ones a layout policy changes (INT8 and bf16 ones have their own)."""
        convs = [n for n in self.model.graph if n.domain == ops.DOMAIN and n.op_type == "Conv"]
        return sum(1 for n in convs if "x_scale" not in n.attributes and self.precision_plan.of(n) == "fp32")

    def _release(self, key: tuple, prog: Program) -> None:
        with self._lock:
            idle = self._programs.get(key)
            if idle is not None:  # else its shape was evicted meanwhile: let the program go
                idle.append(prog)

    def _check_sizes(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Refuse shapes whose largest tensor would exceed `max_tensor_bytes`, before allocating anything."""
        name, dims, nbytes = self._largest_tensor(shapes)
        if nbytes <= self.max_tensor_bytes:
            return
        axis = int(np.argmax(dims))
        shape = "x".join(str(d) for d in dims)
        raise InputError(
            f"input shapes {self._key(shapes)}: tensor {name!r} of shape {shape} would take {_gib(nbytes)} "
            f"({nbytes} bytes; dimension {axis} is {dims[axis]}), over the limit of {_gib(self.max_tensor_bytes)}"
            f" (Predictor(max_tensor_bytes=...) or ${MAX_TENSOR_BYTES_ENV})"
        )

    def _largest_tensor(self, shapes: dict[str, tuple[int, ...]]) -> tuple[str, tuple[int, ...], int]:
        """(name, dims, bytes) of the largest input or intermediate whose size the graph's shapes determine."""
        best = ("", (), 0)
        batch = next((int(s[0]) for s in shapes.values() if len(s)), 1)
        for value in self._inputs:
            dims = tuple(int(d) for d in shapes[value.name])
            best = max(best, (value.name, dims, math.prod(dims) * 4), key=lambda t: t[2])
        for node in self.model.graph:
            for value in node.outputs:
                if value is None or value.shape is None or value.dtype is None:
                    continue
                dims = list(value.shape)
                if dims and not isinstance(dims[0], int):
                    dims[0] = batch  # the batch dim is always free (see _check_inputs)
                if not all(isinstance(d, int) and d >= 0 for d in dims):
                    continue
                nbytes = math.prod(dims) * int(value.dtype.itemsize)
                if nbytes > best[2]:
                    best = (value.name, tuple(dims), nbytes)
        return best

    def _after_fork_in_child(self) -> None:
        """A parent thread may have held these locks; the parent's stream threads do not exist here."""
        self._lock = threading.Lock()
        self._compile_lock = threading.Lock()
        self._pool = self._part_pool = None

    # ---- inputs ----------------------------------------------------------------------------------
    def _as_feeds(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if len(self.input_names) != 1:
            raise InputError(f"the model has {len(self.input_names)} inputs {self.input_names}: use run_dict")
        return {self.input_names[0]: x}

    def _check_inputs(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        unknown = set(inputs) - set(self.input_names)
        missing = [n for n in self.input_names if n not in inputs]
        if unknown or missing:
            raise InputError(
                f"inputs {sorted(inputs)} do not match the model's {self.input_names}"
                + (f" (missing {missing})" if missing else "")
            )
        feeds = {}
        for value in self._inputs:
            arr = np.asarray(inputs[value.name])
            if self.fixed_batch is not None and arr.ndim and arr.shape[0] % self.fixed_batch:
                raise InputError(
                    f"input {value.name!r}: the model runs only at its exported batch of {self.fixed_batch} "
                    f"(see the log for why); a batch of {arr.shape[0]} is not a multiple of it"
                )
            expected = value.shape
            if expected is not None:
                dims = list(expected)
                # The batch (first) dim is free: programs are compiled per shape, and a graph exported at a
                # fixed batch that cannot run another runs batch-sized slices (`fixed_batch`).
                bad = len(dims) != arr.ndim or any(
                    isinstance(d, int) and d != s for d, s in list(zip(dims, arr.shape, strict=False))[1:]
                )
                if bad:
                    want = "x".join(str(d) if isinstance(d, int) else str(d or "?") for d in dims)
                    raise InputError(f"input {value.name!r}: expected shape [{want}], got {list(arr.shape)}")
            want = INPUT_DTYPES.get(value.dtype, np.dtype(np.float32))
            if arr.dtype != want:
                exact = want == np.float32 or (
                    np.issubdtype(arr.dtype, np.integer)
                    and np.iinfo(want).min <= arr.min() <= arr.max() <= np.iinfo(want).max
                )
                if not np.issubdtype(arr.dtype, np.number) or not exact:
                    raise InputError(f"input {value.name!r}: expected {want} data, got {arr.dtype}")
                arr = arr.astype(want)
            feeds[value.name] = np.ascontiguousarray(arr)
        return feeds
