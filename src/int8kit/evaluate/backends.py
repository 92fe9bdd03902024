"""The engines `int8kit test` can time: int8kit's Predictor or an onnxruntime InferenceSession.

Both are wrapped in one small protocol: named inputs with their declared shapes, `run(feeds)` returning
the outputs in graph order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from int8kit.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputInfo:
    name: str
    shape: tuple[int | str | None, ...]


class Backend(Protocol):
    name: str
    inputs: list[InputInfo]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


def _load_graph(path: Path):
    import onnx

    from int8kit.paddle import is_paddle_model, load_paddle_model

    if is_paddle_model(path):  # a Paddle model directory: its translation is the ONNX graph
        import onnx_ir as ir

        return ir.serde.serialize_model(load_paddle_model(path))
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError... for a bad file
        raise ModelError(f"{path}: cannot read ONNX model: {exc}") from None


def is_fake_quant(model) -> bool:
    """A QDQ (fake-quant) model: Q/DQ nodes around float ops, not yet turned into INT8 by int8kit convert."""
    from int8kit import ops

    if any(p.key == ops.OPTIMIZED_KEY and p.value == "int8" for p in model.metadata_props):
        return False
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def refuse_fake_quant(path: Path, model) -> None:
    if is_fake_quant(model):
        raise ModelError(
            f"{path}: this is a fake-quant (QDQ) model: convert it with int8kit convert "
            f"(`int8kit convert {path} -o DIR`), or run it with --backend onnxruntime"
        )


def _onnx_inputs(path: Path, model=None) -> list[InputInfo]:
    model = model if model is not None else _load_graph(path)
    initializers = {i.name for i in model.graph.initializer}
    out = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        out.append(InputInfo(value.name, tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)))
    return out


class OnnxRuntimeBackend:
    """onnxruntime on one CPU with `num_threads` intra-op threads; `optimize` = ORT_ENABLE_ALL, else BASIC."""

    name = "onnxruntime"

    def __init__(self, model: Path, num_threads: int, optimize: bool) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("the onnxruntime backend needs onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        level = ort.GraphOptimizationLevel
        options.graph_optimization_level = level.ORT_ENABLE_ALL if optimize else level.ORT_ENABLE_BASIC
        source = _load_graph(model).SerializeToString() if Path(model).is_dir() else str(model)  # Paddle dir
        try:
            self._session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad models
            raise ModelError(f"{model}: onnxruntime cannot load it: {exc}") from None
        self.inputs = [InputInfo(i.name, tuple(i.shape)) for i in self._session.get_inputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._session.run(None, feeds)


class Int8kitBackend:
    """int8kit's own oneDNN runtime (`int8kit.runtime.predictor.Predictor`)."""

    name = "int8kit"

    def __init__(self, model: Path, num_threads: int, optimize: bool, precision: str = "fp32") -> None:
        from int8kit.runtime.predictor import Predictor

        if optimize:
            logger.info("--optimize-fp32-model: the int8kit runtime always runs its own fusions")
        graph = _load_graph(model)
        refuse_fake_quant(model, graph)
        self.inputs = _onnx_inputs(model, graph)
        self._predictor = Predictor(model, num_threads=num_threads, precision=precision)
        self.precision = self._predictor.precision
        self._outputs = list(self._predictor.output_names)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self._predictor.run_dict(feeds)
        return [result[name] for name in self._outputs]


BACKENDS = {"int8kit": Int8kitBackend, "onnxruntime": OnnxRuntimeBackend}


def make_backend(name: str, model: Path, num_threads: int, optimize: bool, precision: str = "fp32") -> Backend:
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    from int8kit.paddle import is_paddle_model

    if not Path(model).is_file() and not is_paddle_model(model):
        raise ModelError(f"{model}: model file not found")
    if name == "int8kit":
        return Int8kitBackend(Path(model), num_threads, optimize, precision)
    if precision != "fp32":
        raise ConfigError(f"precision {precision} runs on the int8kit backend only, not {name}")
    return BACKENDS[name](Path(model), num_threads, optimize)
