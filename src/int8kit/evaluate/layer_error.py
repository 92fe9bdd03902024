"""Per-layer error of an INT8 model against its FP32 model: SQNR by original node name, worst first.

Both models are run on the same inputs with every fused Conv/Dense output exposed (files, models or
Predictors built once by `layer_predictors`). Those outputs keep
the name of the last original tensor they absorbed in both pipelines, so they line up by name; INT8
tensors are dequantized with the scale their producer wrote them at.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from int8kit import ops
from int8kit.convert.place_int8 import DATA_MOVEMENT_OPS
from int8kit.errors import ConfigError
from int8kit.runtime.predictor import ModelLike, Predictor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerError:
    name: str  # the tensor (= the fused node's final original output)
    op_type: str
    node_id: int | None
    int8: bool
    sqnr_db: float
    cosine: float


def value_scale(value: ir.Value) -> float | None:
    """The scale of an INT8 tensor of a converted model (None for float tensors)."""
    node = value.producer()
    while node is not None:
        if node.domain == ops.DOMAIN and node.op_type in ("Conv", "Dense", "Requantize"):
            attr = node.attributes.get("y_scale")
            return None if attr is None else float(attr.as_float())
        if node.op_type == "QuantizeLinear":
            return float(node.inputs[1].const_value.numpy().reshape(-1)[0])
        if node.op_type in DATA_MOVEMENT_OPS:
            node = node.inputs[0].producer()
            continue
        return None
    return None


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    noise = float(np.sum((ref.astype(np.float64) - test) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    if noise == 0:
        return math.inf
    return 10 * math.log10(max(signal, 1e-30) / noise)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(np.dot(a.ravel(), b.ravel()) / (na * nb)) if na and nb else float(na == nb)


def layer_outputs(fp32_model: ir.Model) -> list[str]:
    """The layer outputs compare_layers reads: every fused int8kit op's output in an optimised FP32 graph."""
    return [n.outputs[0].name for n in fp32_model.graph if n.domain == ops.DOMAIN]


def layer_predictors(
    fp32_model: ModelLike, int8_model: ModelLike, num_threads: int | None = None
) -> tuple[Predictor, Predictor]:
    """FP32 and INT8 Predictors exposing every layer output the two graphs share, for compare_layers.

    Each model is loaded and optimised once (an ir.Model argument is used, and changed, in place); callers
    that compare repeatedly keep these Predictors so nothing is recompiled.
    """
    from int8kit.ir.load import as_ir_model
    from int8kit.ir.optimize import optimize_fp32

    reference = as_ir_model(fp32_model)
    if ops.OPTIMIZED_KEY not in reference.metadata_props:
        reference = optimize_fp32(reference)
    converted = as_ir_model(int8_model)
    present = {v.name for n in converted.graph for v in n.outputs if v is not None}
    names = [name for name in layer_outputs(reference) if name in present]
    if not names:
        raise ConfigError(
            f"{_label(int8_model)} shares no layer outputs with {_label(fp32_model)}: is it converted from it?"
        )
    return (
        Predictor(reference, num_threads=num_threads, extra_outputs=names),
        Predictor(converted, num_threads=num_threads, extra_outputs=names),
    )


def _label(model: ModelLike) -> str:
    return str(model) if isinstance(model, str | os.PathLike) else f"the {type(model).__name__}"


def compare_layers(
    fp32_model: ModelLike | Predictor,
    int8_model: ModelLike | Predictor,
    batches: Iterable[np.ndarray],
    num_threads: int | None = None,
) -> list[LayerError]:
    """SQNR and cosine of every fused Conv/Dense output, INT8 vs FP32, worst SQNR first.

    Takes files, models or the Predictors `layer_predictors` builds (reused as they are: no reload, no
    re-optimisation, no temporary files).
    """
    from int8kit.ir.node_ids import node_id

    if isinstance(fp32_model, Predictor) and isinstance(int8_model, Predictor):
        fp32, int8 = fp32_model, int8_model
    elif isinstance(fp32_model, Predictor) or isinstance(int8_model, Predictor):
        raise ConfigError("compare_layers takes two Predictors (from layer_predictors) or two models, not one of each")
    else:
        fp32, int8 = layer_predictors(fp32_model, int8_model, num_threads)
    candidates = {n.outputs[0].name: n for n in fp32.model.graph if n.domain == ops.DOMAIN}
    int8_values = {v.name: (v, n) for n in int8.model.graph for v in n.outputs if v is not None}
    exposed = set(fp32.output_names) & set(int8.output_names)
    names = [name for name in candidates if name in int8_values and name in exposed]
    if not names:
        raise ConfigError(
            "the two Predictors expose no shared layer outputs: build them with layer_predictors(fp32, int8)"
        )
    scales = {name: value_scale(int8_values[name][0]) for name in names}
    refs: dict[str, list] = {n: [] for n in names}
    tests: dict[str, list] = {n: [] for n in names}
    for batch in batches:
        a = fp32.run_dict({fp32.input_names[0]: batch})
        b = int8.run_dict({int8.input_names[0]: batch})
        for name in names:
            refs[name].append(a[name].astype(np.float32).ravel())
            got = b[name].astype(np.float32)
            if scales[name] is not None and b[name].dtype != np.float32:
                got = got * scales[name]
            tests[name].append(got.ravel())
    results = []
    for name in names:
        ref, test = np.concatenate(refs[name]), np.concatenate(tests[name])
        node = candidates[name]
        int8_node = int8_values[name][1]
        is_int8 = int8_node.inputs[1] is not None and int8_node.inputs[1].dtype == ir.DataType.INT8
        results.append(
            LayerError(
                node.name or name,
                node.op_type,
                node_id(int8_node),
                is_int8,
                sqnr_db(ref, test),
                _cosine(ref, test),
            )
        )
    return sorted(results, key=lambda r: r.sqnr_db)
