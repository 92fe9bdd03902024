"""Post-training quantization: FP32 ONNX model + calibration data -> standard ONNX QDQ model.

Steps: intake (opset >= 13, constants to initializers, BN folded into convs so the int8 weight scales
are those of the weights that really run), plan (which tensors and weights), calibrate (streaming
observers over a seeded sample; bounded ranges kept whole), scheme (ranges -> scales and zero points),
insert (the InsertQDQPass: QDQ pairs, int8 weights), bias correction (the rounded weights' mean output
shift out of the biases). Everything works on one onnx_ir model; ModelProto appears only at the edges (quantize_model's
return value, save_model).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from int8kit.errors import ConfigError, InputError, Int8kitError, ModelError
from int8kit.ir.save import save_model
from int8kit.metadata import QUANTIZE_CONFIG_KEY, QUANTIZE_SAMPLES_KEY, VERSION_KEY
from int8kit.quantize.bias_correction import CORRECTED_OPS, MeanInputs, apply_corrections, corrections
from int8kit.quantize.calibrate import BACKENDS, ActivationSource, Progress, calibrate
from int8kit.quantize.insert_qdq import InsertQDQPass
from int8kit.quantize.keep_fp32 import keep_fp32
from int8kit.quantize.observers import METHODS
from int8kit.quantize.plan import SUPPORTED_OPS, QuantPlan, plan_quantization
from int8kit.quantize.samples import CalibrationSamples
from int8kit.quantize.scheme import QParams, activation_qparams, bounded_tensors
from int8kit.scope import Scope

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizeConfig:
    """Everything that decides the quantized model; recorded in its metadata."""

    method: str = "minmax"  # one of observers.METHODS
    num_samples: int = 300
    seed: int = 0
    batch_size: int = 8
    percentile: float = 99.99  # for method="percentile"
    scope: Scope = field(default_factory=Scope)  # which nodes to quantize (ONNX op types, names); all by default
    per_channel: bool = True  # per-output-channel weight scales (False: one scale per weight)
    bias_correction: bool = True  # take the mean output shift of rounded weights out of Conv/Gemm biases
    backend: str = "auto"  # where FP32 activations come from: auto, int8kit, onnxruntime
    num_threads: int | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown calibration method {self.method!r}; known: {', '.join(METHODS)}")
        if self.num_samples <= 0:
            raise ConfigError(f"num_samples must be positive, got {self.num_samples}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {self.batch_size}")
        if not 0 < self.percentile <= 100:
            raise ConfigError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; known: {', '.join(BACKENDS)}")
        # Accept lists from callers; keep the dataclass hashable.
        if not isinstance(self.scope, Scope):
            raise ConfigError(f"scope must be an int8kit.scope.Scope, got {type(self.scope).__name__}")
        self.scope.check_supported(SUPPORTED_OPS)


@dataclass(frozen=True)
class TensorQuant:
    """One calibrated activation tensor: its observed range and the resulting quantization."""

    name: str
    lo: float
    hi: float
    qparams: QParams


@dataclass(frozen=True)
class QuantizeResult:
    """The QDQ model, what was calibrated, and the intake'd FP32 model it came from (for the budget: no second
    intake)."""

    model: ir.Model
    tensors: tuple[TensorQuant, ...]
    plan: QuantPlan
    num_samples: int
    config: QuantizeConfig = field(default_factory=QuantizeConfig)
    fp32: ir.Model | None = None

    def to_proto(self) -> onnx.ModelProto:
        return ir.serde.serialize_model(self.model)


def _integer_input_dtype(model: ir.Model) -> np.dtype | None:
    """The numpy type of the model's first input when it is uint8/int8 (preprocessing inside), else None."""
    value = model.graph.inputs[0] if model.graph.inputs else None
    types = {ir.DataType.UINT8: np.uint8, ir.DataType.INT8: np.int8}
    return np.dtype(types[value.dtype]) if value is not None and value.dtype in types else None


def quantize_with_report(
    model: str | os.PathLike | onnx.ModelProto | ir.Model,
    data: Any,
    config: QuantizeConfig | None = None,
    *,
    source: ActivationSource | None = None,
    progress: Progress | None = None,
) -> QuantizeResult:
    """Quantize and return the QDQ model with what was calibrated (for summaries and tests)."""
    config = config or QuantizeConfig()
    fp32 = prepare(model)
    plan = plan_quantization(fp32, config.scope)
    samples = CalibrationSamples(data, config.num_samples, config.seed, _integer_input_dtype(fp32))
    if not config.per_channel:
        plan = _per_tensor(plan)
    means = MeanInputs(_corrected_inputs(fp32, plan) if config.bias_correction else ())
    observed = calibrate(
        fp32,
        [t for g in plan.groups for t in g],
        samples,
        method=config.method,
        percentile=config.percentile,
        batch_size=config.batch_size,
        source=source,
        backend=config.backend,
        num_threads=config.num_threads,
        progress=progress,
        bounded=bounded_tensors(fp32.graph),
        zero_point_ok=plan.zero_point_ok,
        on_batch=means.update if config.bias_correction else None,
    )
    qparams: dict[str, QParams] = {}
    for group in plan.groups:
        lo = min(observed[t][0] for t in group)
        hi = max(observed[t][1] for t in group)
        qp = activation_qparams(
            lo, hi, unsigned=group[0] in plan.unsigned, zero_point_ok=group[0] in plan.zero_point_ok
        )
        _check_range(group, lo, hi, qp, samples)
        qparams.update(dict.fromkeys(group, qp))
    qdq = InsertQDQPass(plan, qparams)(fp32.clone()).model
    if config.bias_correction:
        changed = apply_corrections(qdq, corrections(fp32, plan, means))
        logger.info("bias correction: %d Conv/Gemm biases adjusted", changed)
    if plan.excluded_nodes:
        qdq = keep_fp32(qdq, plan.excluded_nodes)  # so `int8kit convert` keeps them FP32 too
    _record(qdq, config, len(samples))
    tensors = tuple(TensorQuant(t, *observed[t], qparams[t]) for t in plan.activations)
    return QuantizeResult(qdq, tensors, plan, len(samples), config, fp32)


def _check_range(group: tuple[str, ...], lo: float, hi: float, qp: QParams, samples: CalibrationSamples) -> None:
    """A tensor (group) seen only as 0, or so close to 0 its float32 scale underflows, has no usable range."""
    if max(abs(lo), abs(hi)) > 0 and 0 < np.float32(qp.scale) < np.inf:
        return
    names = ", ".join(map(repr, group))
    raise InputError(
        f"tensor {names} has the degenerate calibrated range {lo:g}..{hi:g} on the {len(samples)} samples of "
        f"{samples.label} (a dead activation?); keep its consumers FP32 with --exclude-nodes or use other data"
    )


def quantize_model(
    model_path: str | os.PathLike | onnx.ModelProto | ir.Model,
    data: Any,
    config: QuantizeConfig | None = None,
    output: str | os.PathLike | None = None,
) -> onnx.ModelProto:
    """The QDQ model of `model_path` calibrated on `data`, as a ModelProto (the file edge: what onnxruntime
    and onnx.save take); also saved to `output` when given. `quantize` keeps it as an ir.Model."""
    if output is not None:
        check_output_path(output)
    qdq = quantize_with_report(model_path, data, config).to_proto()
    if output is not None:
        save_model(qdq, output)
    return qdq


def check_output_path(path: str | os.PathLike) -> Path:
    """ConfigError now, before minutes of calibration, if `path` cannot become the output file.

    Refuses a directory, a path under a file, and a folder this process cannot create files in (tried
    with a probe file, which is what counts for root, read-only mounts and ACLs alike).
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; the output must be a file name (e.g. {path / 'model_qdq.onnx'})")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{path}: cannot write the output there: {folder} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".int8kit-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write into {folder}: {exc.strerror or exc}") from None
    return path


def prepare(model: str | os.PathLike | onnx.ModelProto | ir.Model) -> ir.Model:
    """The FP32 model after int8kit's intake (once: an intake'd model is taken as it is), every node named.

    An ir.Model argument is changed in place.
    """
    from int8kit.ir.intake import intake

    try:
        graph_model = intake(model)
    except Int8kitError:
        raise
    except Exception as exc:  # a broken graph the intake passes choke on
        raise ModelError(f"{model if isinstance(model, str | os.PathLike) else 'model'}: {exc}") from exc
    taken = {n.name for n in graph_model.graph}
    for i, node in enumerate(graph_model.graph):
        if not node.name:
            name, k = f"{node.op_type}_{i}", 1
            while name in taken:
                name, k = f"{node.op_type}_{i}_{k}", k + 1
            node.name = name
            taken.add(name)
    return graph_model


def _corrected_inputs(model: ir.Model, plan: QuantPlan) -> list[str]:
    """The activation inputs of the Conv/Gemm nodes whose weights are quantized (bias correction's means)."""
    nodes = {n.name: n for n in model.graph}
    names = []
    for node_name, _, _ in plan.weight_uses:
        node = nodes.get(node_name)
        if node is not None and node.op_type in CORRECTED_OPS and node.inputs[0] is not None:
            names.append(node.inputs[0].name)
    return list(dict.fromkeys(names))


def _per_tensor(plan: QuantPlan) -> QuantPlan:
    """Per-tensor weights are what old runtimes want; axis None means one scale (see insert_qdq)."""
    from dataclasses import replace

    from int8kit.quantize.plan import WeightSpec

    uses = tuple((n, i, WeightSpec(s.name, s.axis, per_channel=False)) for n, i, s in plan.weight_uses)
    return replace(plan, weight_uses=uses)


def _record(model: ir.Model, config: QuantizeConfig, num_samples: int) -> None:
    import json
    from dataclasses import asdict

    import int8kit

    model.metadata_props[VERSION_KEY] = int8kit.__version__
    model.metadata_props[QUANTIZE_CONFIG_KEY] = json.dumps(asdict(config))
    model.metadata_props[QUANTIZE_SAMPLES_KEY] = str(num_samples)
