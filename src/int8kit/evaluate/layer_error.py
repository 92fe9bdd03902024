"""Per-layer error of an INT8 model against its FP32 model: SQNR by original node name, worst first.

Both models are run on the same inputs with every fused Conv/Dense output exposed. Those outputs keep
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


def compare_layers(
    fp32_model: str | os.PathLike,
    int8_model: str | os.PathLike,
    batches: Iterable[np.ndarray],
    num_threads: int | None = None,
) -> list[LayerError]:
    """SQNR and cosine of every fused Conv/Dense output, INT8 vs FP32, worst SQNR first."""
    from int8kit.ir.load import load_model
    from int8kit.ir.node_ids import node_id
    from int8kit.ir.optimize import optimize_fp32
    from int8kit.runtime.predictor import Predictor

    reference = optimize_fp32(load_model(fp32_model))
    candidates = {n.outputs[0].name: n for n in reference.graph if n.domain == ops.DOMAIN}
    int8_graph = load_model(int8_model)
    int8_values = {v.name: (v, n) for n in int8_graph.graph for v in n.outputs if v is not None}
    names = [name for name in candidates if name in int8_values]
    if not names:
        from int8kit.errors import ConfigError

        raise ConfigError(f"{int8_model} shares no layer outputs with {fp32_model}: is it converted from it?")
    fp32 = Predictor(fp32_model, num_threads=num_threads, extra_outputs=names)
    int8 = Predictor(int8_model, num_threads=num_threads, extra_outputs=names)
    scales = {name: value_scale(int8_values[name][0]) for name in names}
    refs: dict[str, list] = {n: [] for n in names}
    tests: dict[str, list] = {n: [] for n in names}
    for batch in batches:
        feed = {fp32.input_names[0]: batch}
        a, b = fp32.run_dict(feed), int8.run_dict({int8.input_names[0]: batch})
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
