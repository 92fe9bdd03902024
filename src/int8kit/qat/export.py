"""Write a QAT model as a standard QDQ ONNX model with int8kit's own QDQ insertion pass.

The trained float weights go back into the FP32 graph QAT started from, and `InsertQDQPass` writes the PTQ plan
with the learned activation scales; so the file has exactly PTQ's layout (what `int8kit convert` and
onnxruntime read), and its int8 weights are the per-channel rounding the training saw.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

import onnx_ir as ir

from int8kit.metadata import QAT_CONFIG_KEY, QAT_KEY
from int8kit.qat.prepare import QatModel
from int8kit.quantize.insert_qdq import InsertQDQPass

logger = logging.getLogger(__name__)


def trained_fp32(qat: QatModel) -> ir.Model:
    """A copy of the FP32 graph with the trained weights (what the QDQ model quantizes)."""
    out = qat.fp32.clone()
    for name, array in qat.module.weights().items():
        value = out.graph.initializers[name]
        value.const_value = ir.tensor(array, name=name)
    return out


def export_qdq(qat: QatModel, config: Any = None) -> ir.Model:
    """The QDQ model of the trained QAT model; `config` (a dataclass) is recorded in the metadata."""
    qdq = InsertQDQPass(qat.plan, qat.module.qparams())(trained_fp32(qat)).model
    qdq.metadata_props[QAT_KEY] = "true"
    if config is not None:
        qdq.metadata_props[QAT_CONFIG_KEY] = json.dumps(asdict(config), default=str)
    logger.info(
        "exported QDQ model: %d activation scales, %d int8 weights",
        len(qat.plan.activations),
        len(qat.plan.weight_uses),
    )
    return qdq
