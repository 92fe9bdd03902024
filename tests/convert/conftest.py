"""Shared, built-once models for the converter tests: zoo FP32 models and their QDQ versions."""

from __future__ import annotations

import functools

import onnx
import pytest

from ._util import calib_inputs, int8kit_qdq, ort_qdq


@functools.cache
def fp32_model(name: str) -> onnx.ModelProto:
    from int8kit.models import zoo

    return zoo.build(name)


@functools.cache
def qdq_model(name: str, variant: str) -> onnx.ModelProto:
    """The QDQ model of zoo model `name` made by `variant` (an ORT_VARIANTS key or "int8kit")."""
    calib = calib_inputs()
    if variant == "int8kit":
        return int8kit_qdq(fp32_model(name), calib)
    return ort_qdq(fp32_model(name), calib, variant)


@pytest.fixture(scope="session")
def qdq():
    return qdq_model


@pytest.fixture(scope="session")
def fp32():
    return fp32_model
