"""Turn an FP32 ONNX model into a QAT model: intake, PTQ's plan, calibrated initial scales, torch module.

The steps are PTQ's (`int8kit.quantize.api`): the same intake (BN folded, every node named), the same plan
(which tensors get a QDQ pair, which weights become s8, which scales are shared) and min/max ranges turned
into scales by `activation_qparams`, so QAT starts exactly where `int8kit quantize --method minmax` ends.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from int8kit.qat._torch import require_torch
from int8kit.qat.graph_module import TRAINABLE_OPS, make_graph_module
from int8kit.quantize.api import prepare
from int8kit.quantize.plan import QuantPlan, plan_quantization
from int8kit.quantize.scheme import QParams, activation_qparams

logger = logging.getLogger(__name__)


@dataclass
class QatModel:
    """The FP32 graph QAT starts from, its quantization plan and the trainable torch module."""

    fp32: ir.Model
    plan: QuantPlan
    module: Any


def untie_weights(model: ir.Model) -> ir.Model:
    """Give every Conv/Gemm/MatMul its own weight and bias initializers (in place).

    Exporters deduplicate equal constants (all-zero biases of an untrained net, for one), and a tensor that
    two layers share would be trained as one; after untying each layer learns its own values.
    """
    graph = model.graph
    taken = set(graph.initializers) | {o.name for n in graph for o in n.outputs} | {v.name for v in graph.inputs}
    seen: set[str] = set()
    for node in graph:
        if node.op_type not in TRAINABLE_OPS:
            continue
        for k in (1, 2):
            value = node.inputs[k] if len(node.inputs) > k else None
            if value is None or not value.is_initializer() or value.const_value is None:
                continue
            if value.name in seen:
                new, i = f"{value.name}_{node.name}", 1
                while new in taken:
                    new, i = f"{value.name}_{node.name}_{i}", i + 1
                taken.add(new)
                array = value.const_value.numpy().copy()
                copy = ir.Value(name=new, const_value=ir.tensor(array, name=new))
                copy.dtype, copy.shape = value.dtype, ir.Shape(array.shape)
                graph.register_initializer(copy)
                node.replace_input_with(k, copy)
            seen.add(value.name)
    return model


def calibrate_ranges(module: Any, plan: QuantPlan, batches: Iterable[np.ndarray]) -> dict[str, QParams]:
    """Min/max of every planned tensor over `batches` of the FP32 model, as scales per scale group."""
    torch = require_torch()
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}

    def observe(name: str, value: Any) -> None:
        lo[name] = min(lo.get(name, np.inf), float(value.min()))
        hi[name] = max(hi.get(name, -np.inf), float(value.max()))

    module.quantize, module.observer = False, observe
    try:
        with torch.no_grad():
            for batch in batches:
                module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
    finally:
        module.quantize, module.observer = True, None
    qparams: dict[str, QParams] = {}
    for group in plan.groups:
        g_lo = min(lo.get(t, 0.0) for t in group)
        g_hi = max(hi.get(t, 0.0) for t in group)
        qparams.update(dict.fromkeys(group, activation_qparams(g_lo, g_hi, unsigned=group[0] in plan.unsigned)))
    return qparams


def prepare_qat(
    model: str | os.PathLike | onnx.ModelProto | ir.Model, calibration: Iterable[np.ndarray], batch_size: int = 64
) -> QatModel:
    """The QAT model of `model`, its activation scales calibrated (min/max) on `calibration` images."""
    fp32 = untie_weights(prepare(model))
    plan = plan_quantization(fp32)
    placeholder = {t: QParams(1.0, "uint8" if t in plan.unsigned else "int8") for t in plan.activations}
    module = make_graph_module(fp32, plan, placeholder)
    images = np.concatenate([np.asarray(b, dtype=np.float32) for b in calibration])
    batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
    qparams = calibrate_ranges(module, plan, batches)
    module = make_graph_module(fp32, plan, qparams)
    logger.info("QAT model: %d activation tensors calibrated on %d images", len(plan.activations), len(images))
    return QatModel(fp32, plan, module)
