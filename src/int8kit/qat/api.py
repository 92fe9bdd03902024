"""QAT end to end: FP32 ONNX model + labelled training images -> QDQ ONNX model for `int8kit convert`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir

from int8kit.qat.export import export_qdq
from int8kit.qat.prepare import QatModel, prepare_qat
from int8kit.qat.train import QatConfig, finetune

logger = logging.getLogger(__name__)


@dataclass
class QatResult:
    model: ir.Model  # the QDQ model (save_model writes it)
    qat: QatModel  # the trained module, its plan and FP32 graph
    losses: list[float]


def prepare_from_images(model: str | os.PathLike | onnx.ModelProto, images: np.ndarray, config: QatConfig) -> QatModel:
    """The QAT model, calibrated on a seeded sample of `config.calib_samples` of the images."""
    rng = np.random.default_rng(config.seed)
    pick = np.sort(rng.choice(len(images), size=min(config.calib_samples, len(images)), replace=False))
    return prepare_qat(model, [images[pick]])


def quant_aware_train(
    model: str | os.PathLike | onnx.ModelProto | QatModel,
    images: np.ndarray,
    labels: np.ndarray,
    config: QatConfig | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> QatResult:
    """Calibrate (unless given a prepared QatModel), fine-tune under fake-quant, export the QDQ model."""
    config = config or QatConfig()
    qat = model if isinstance(model, QatModel) else prepare_from_images(model, images, config)
    losses = finetune(qat.module, images, labels, config, on_step)
    return QatResult(export_qdq(qat, config), qat, losses)
