"""Architectures beyond issue 8's zoo (tests/zoo/_beyond.py), held to the zoo's bar: FP32 equals onnxruntime,
INT8 computes what each producer's QDQ file says (int8kit, onnxruntime's default uint8 and symmetric int8),
and no model runs a oneDNN reference kernel. These are the blocks a user's model brings that the zoo does
not: before this set existed, ELU/PReLU/Softplus and GroupNorm were refused, ResNeSt's softmax ran ref:any,
a GhostNet's sliced halves and a hard-sigmoid gate's rounding were computed off the file's grid, and
onnxruntime's files of a GELU net (rounding between its Erf, Add and Mul) were refused for want of an Erf;
ECA's Conv1d, Resize and LogSoftmax were refused and RepVGG's identity BN ran ref:any on INT8 data."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest
from convert._util import int8kit_qdq, ort_qdq  # tests/convert helpers (tests/ is on sys.path)

import int8kit
from int8kit.evaluate.metrics import row_cosines

from . import _beyond
from .test_int8kit_int8 import AMPLIFICATION, SLACK, WORST, _ort

NAMES = list(_beyond.MODELS)
PRODUCERS = ("int8kit", "ort_pt_u8", "ort_pc_s8_sym")


def _images(n: int, name: str, seed: int) -> np.ndarray:
    size = _beyond.MODELS[name][1]
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


@functools.cache
def _model(name: str) -> onnx.ModelProto:
    return onnx.load(str(_beyond.onnx_path(name)))


@functools.cache
def _qdq(name: str, producer: str) -> onnx.ModelProto:
    calib = _images(8, name, 100)
    if producer == "int8kit":
        return int8kit_qdq(_model(name), calib)
    return ort_qdq(_model(name), calib, producer, pre_process=name not in _beyond.NO_ORT_PRE_PROCESS)


@pytest.mark.parametrize("name", NAMES)
def test_fp32_matches_onnxruntime(name):
    x = _images(4, name, 5)
    got = int8kit.Predictor(_model(name), num_threads=2).run(x)
    want = _ort(_model(name), x, optimize=True)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("name", NAMES)
def test_int8_computes_what_the_qdq_file_says(name, producer):
    from int8kit.convert.pipeline import convert

    x = _images(8, name, 5)
    qdq = _qdq(name, producer)
    spec, kernels = _ort(qdq, x, optimize=False), _ort(qdq, x, optimize=True)
    got = int8kit.Predictor(convert(qdq).model, num_threads=2).run(x)
    floor = 1.0 - min(0.999, float(row_cosines(kernels, spec).mean()))
    assert float(row_cosines(got, spec).mean()) >= 1.0 - min(WORST, AMPLIFICATION * floor + SLACK)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("name", NAMES)
def test_no_reference_kernels(name, batch):
    from int8kit.convert.pipeline import convert

    shape = (batch, *_images(1, name, 0).shape[1:])
    # onnxruntime's files round inside the GELU (its Erf, Add and Mul stay apart): those run too
    qdq_files = [convert(_qdq(name, p)).model for p in PRODUCERS]
    for model in (_model(name), *qdq_files):
        kernels = int8kit.Predictor(model, num_threads=2).kernels(shape)
        assert not [k for k in kernels if k[1].startswith("ref")]
