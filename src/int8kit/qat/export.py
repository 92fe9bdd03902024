"""Write a QAT model as a standard QDQ ONNX model with int8kit's own QDQ writer.

The trained float weights go back into the FP32 graph QAT started from, and `write_qdq` writes the PTQ plan
with the learned activation scales; so the file has exactly PTQ's layout (what `int8kit convert` and
onnxruntime read), and its int8 weights are the per-channel rounding the training saw.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

import onnx
from onnx import numpy_helper

from int8kit.qat.prepare import QatModel
from int8kit.quantize.qdq_writer import write_qdq

logger = logging.getLogger(__name__)


def trained_fp32(qat: QatModel) -> onnx.ModelProto:
    """The FP32 graph with the trained weights (what the QDQ model quantizes)."""
    out = onnx.ModelProto()
    out.CopyFrom(qat.fp32)
    weights = qat.module.weights()
    for k, t in enumerate(out.graph.initializer):
        if t.name in weights:
            out.graph.initializer[k].CopyFrom(numpy_helper.from_array(weights[t.name], t.name))
    return out


def export_qdq(qat: QatModel, config: Any = None) -> onnx.ModelProto:
    """The QDQ model of the trained QAT model; `config` (a dataclass) is recorded in the metadata."""
    qdq = write_qdq(trained_fp32(qat), qat.plan, qat.module.qparams())
    meta = {"int8kit.qat": "true"}
    if config is not None:
        meta["int8kit.qat.config"] = json.dumps(asdict(config), default=str)
    keep = [p for p in qdq.metadata_props if p.key not in meta]
    del qdq.metadata_props[:]
    qdq.metadata_props.extend(keep)
    for key, value in meta.items():
        qdq.metadata_props.add(key=key, value=value)
    logger.info(
        "exported QDQ model: %d activation scales, %d int8 weights",
        len(qat.plan.activations),
        len(qat.plan.weight_uses),
    )
    return qdq
