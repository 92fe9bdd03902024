"""Zoo models for the tests, exported once at a small size (cached across runs under build/zoo/)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from examples.zoo import export as zoo_export

SIZE = 64  # every zoo model runs at 64x64 (final feature maps 2x2), and the whole zoo exports in ~30 s
NAMES = list(zoo_export.MODELS)


@functools.cache
def onnx_path(name: str) -> Path:
    return zoo_export.export(name, SIZE)


@functools.cache
def onnx_model(name: str) -> onnx.ModelProto:
    return onnx.load(str(onnx_path(name)))


@functools.cache
def torch_model(name: str) -> torch.nn.Module:
    return zoo_export.build(name)


@functools.cache
def ort_session(name: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(onnx_path(name)), options, providers=["CPUExecutionProvider"])


def images(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, SIZE, SIZE)).astype(np.float32)


def run_ort(name: str, x: np.ndarray) -> np.ndarray:
    (y,) = ort_session(name).run(["logits"], {"input": x})
    return y


def relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """max |actual - reference| over max |reference|: the issue's FP32 agreement measure."""
    return float(np.abs(actual - reference).max() / np.abs(reference).max())
