"""Run the FP32 model over the calibration sample and feed one streaming observer per tensor.

Only the current batch's activations are ever held; observers keep fixed-size histograms, so memory
does not grow with the number of samples. Where the activations come from is one function,
`activation_source`: int8kit's own runtime by default, onnxruntime as the fallback and for tests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

import numpy as np
import onnx
import onnx_ir as ir

from int8kit.errors import ConfigError, InputError, UnsupportedOpError
from int8kit.quantize.observers import Observer, make_observer
from int8kit.quantize.samples import CalibrationSamples

logger = logging.getLogger(__name__)

ActivationSource = Callable[[np.ndarray], Mapping[str, np.ndarray]]
Progress = Callable[[int, int], None]  # (samples done, samples total)
BACKENDS = ("auto", "int8kit", "onnxruntime")


def activation_source(
    model: ir.Model, names: Sequence[str], backend: str = "auto", num_threads: int | None = None
) -> ActivationSource:
    """A callable batch -> {name: array} for the model's graph outputs plus `names`.

    "int8kit" uses int8kit.runtime's Predictor; "onnxruntime" adds `names` as graph outputs of a copy;
    "auto" prefers int8kit's runtime and falls back to onnxruntime when it is not available or
    cannot run one of the model's ops.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown calibration backend {backend!r}; known: {', '.join(BACKENDS)}")
    input_name = model_input(model).name
    if backend in ("auto", "int8kit"):
        try:
            from int8kit.runtime.predictor import Predictor
        except ImportError:
            if backend == "int8kit":
                raise
            logger.info("int8kit runtime not available; calibrating with onnxruntime")
        else:
            try:
                # A copy: the Predictor fuses its graph, the caller's FP32 model must stay as it is.
                predictor = Predictor(model.clone(), num_threads=num_threads, extra_outputs=list(names))
            except UnsupportedOpError as exc:
                if backend == "int8kit":
                    raise
                logger.warning("int8kit runtime cannot run the model (%s); using onnxruntime", exc)
            else:
                return lambda batch: predictor.run_dict({input_name: batch})
    return _onnxruntime_source(model, names, input_name, num_threads)


def _onnxruntime_source(
    model: ir.Model, names: Sequence[str], input_name: str, num_threads: int | None
) -> ActivationSource:
    import onnxruntime as ort

    probe = ir.serde.serialize_model(model)  # onnxruntime's edge: it takes a serialized model
    present = {o.name for o in probe.graph.output}
    for name in names:
        if name not in present:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
    options.log_severity_level = 3
    # The graph as written: onnxruntime's fusions may drop a tensor calibration reads (timm's FastViT sums
    # re-parameterisable conv branches; its Conv + Add fusion then fails to find the exposed Conv output).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    output_names = [o.name for o in session.get_outputs()]

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(output_names, session.run(output_names, {input_name: batch}), strict=True))

    return run


def model_input(model: ir.Model) -> ir.Value:
    """The one data input of an image classifier (initializers listed as inputs do not count)."""
    inputs = [v for v in model.graph.inputs if not v.is_initializer()]
    if len(inputs) != 1:
        raise InputError(
            f"calibration needs a model with exactly one input, this one has {len(inputs)}: "
            f"{', '.join(v.name for v in inputs)}"
        )
    return inputs[0]


def input_shape(value: ir.Value) -> tuple[int | str | None, ...]:
    if value.shape is None:
        return ()
    return tuple(d if isinstance(d, int) else d.value for d in value.shape.dims)


def calibrate(
    model: ir.Model,
    names: Iterable[str],
    samples: CalibrationSamples,
    *,
    method: str = "minmax",
    percentile: float = 99.99,
    batch_size: int = 8,
    source: ActivationSource | None = None,
    backend: str = "auto",
    num_threads: int | None = None,
    progress: Progress | None = None,
    bounded: Collection[str] = (),
    zero_point_ok: Collection[str] = (),
    on_batch: Callable[[Mapping[str, np.ndarray]], None] | None = None,
) -> dict[str, tuple[float, float]]:
    """Observed (lo, hi) of every tensor in `names` (graph inputs included) over the sample.

    Tensors in `bounded` (an op of the graph bounds them: scheme.bounded_tensors) keep their full observed
    range whatever the method: clipping them would move the values saturated at the bound, not outliers.
    Tensors in `zero_point_ok` may get a zero point (plan.zero_point_ok): the clipping searches use that grid.
    `on_batch` sees every batch's tensors (the model input included), for statistics beyond ranges.
    """
    names = list(dict.fromkeys(names))
    inp = model_input(model)
    shape = input_shape(inp)
    samples.check_fits(inp.name, shape)
    fixed_batch = shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else None
    if fixed_batch is not None:
        if len(samples) % fixed_batch:
            raise InputError(
                f"model input {inp.name!r} has a fixed batch of {fixed_batch}, which does not divide the "
                f"{len(samples)} calibration samples; choose a multiple of {fixed_batch}"
            )
        if fixed_batch != batch_size:
            logger.info("model input %r has a fixed batch of %d; using it", inp.name, fixed_batch)
        batch_size = fixed_batch
    if batch_size <= 0:
        raise ConfigError(f"batch size must be positive, got {batch_size}")
    # The model input is the user's own data: its full range is meaningful, and entropy/percentile
    # cuts on a bimodal input (image background vs foreground) clipped whole objects away.
    full_range, zp_ok = {inp.name, *bounded}, set(zero_point_ok)
    observers: dict[str, Observer] = {
        n: make_observer("minmax" if n in full_range else method, percentile, zero_point_ok=n in zp_ok) for n in names
    }
    observers.setdefault(inp.name, make_observer("minmax"))  # always seen: constant or NaN data is refused
    fetched = [n for n in names if n != inp.name]
    run = source or activation_source(model, fetched, backend, num_threads)
    total, done = len(samples), 0
    logger.info("calibrating %d tensors on %d samples (%s)", len(names), total, method)
    for batch in samples.batches(batch_size):
        acts = run(batch)
        for name, obs in observers.items():
            obs.update(batch if name == inp.name else acts[name])
        if on_batch is not None:
            on_batch({**acts, inp.name: batch})
        done += len(batch)
        if progress is not None:
            progress(done, total)
    ranges = {n: tuple(map(float, o.range())) for n, o in observers.items()}
    _check_ranges(ranges, inp.name, samples)
    return {n: ranges[n] for n in names}  # type: ignore[misc]


def _check_ranges(ranges: Mapping[str, tuple[float, float]], input_name: str, samples: CalibrationSamples) -> None:
    """InputError for data no range can come from: non-finite or constant input, non-finite tensors."""
    lo, hi = ranges[input_name]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(
            f"{samples.label}: the {len(samples)} calibration samples hold no finite values for model input "
            f"{input_name!r} (all NaN or inf)"
        )
    if lo == hi:
        raise InputError(
            f"{samples.label}: the calibration data is constant ({lo:g} in every value of {len(samples)} "
            f"samples) for model input {input_name!r}; calibrate on real images"
        )
    bad = [n for n, (lo, hi) in ranges.items() if not (math.isfinite(lo) and math.isfinite(hi))]
    if bad:
        raise InputError(
            f"calibration saw no finite values for tensor(s) {', '.join(map(repr, bad[:5]))} "
            f"(NaN or inf from the model on {samples.label})"
        )


def rich_progress() -> tuple[Progress, Callable[[], None]]:
    """A rich progress bar with ETA on stderr: (update callback, close)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("calibrating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("calibrate", total=total)
        bar.update(task, completed=done)

    return update, bar.stop
