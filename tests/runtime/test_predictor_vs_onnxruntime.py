"""Whole zoo models: the Predictor's logits match onnxruntime's (its FP32 CPU provider as the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.models import zoo

from ._util import assert_close, ort_session

TINY = ["resnet_tiny", "mobilenetv2_tiny", "hardswish_se_tiny", "concat_tiny"]
FULL = ["resnet50", "mobilenet_v2"]


@pytest.fixture(scope="module")
def models():
    """Each zoo model built once for the module (the full-size ones take ~0.5 s)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = zoo.build(name)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def predictors(models):
    """One Predictor per (model, threads); its compiled programs for each batch are reused."""
    from int8kit.runtime.predictor import Predictor

    cache = {}

    def get(name, threads):
        if (name, threads) not in cache:
            cache[name, threads] = Predictor(models(name), num_threads=threads)
        return cache[name, threads]

    return get


def _input(model, batch: int, seed: int) -> np.ndarray:
    size = model.graph.input[0].type.tensor_type.shape.dim[2].dim_value
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("name", TINY)
def test_tiny_model_matches_onnxruntime(models, predictors, name, batch, threads):
    model = models(name)
    x = _input(model, batch, seed=batch * 10 + threads)
    want = ort_session(model, threads).run(None, {zoo.INPUT: x})[0]
    got = predictors(name, threads).run(x)
    assert got.dtype == np.float32
    assert_close(got, want, rtol=1e-4)


@pytest.mark.parametrize("name", TINY)
def test_batches_are_independent(predictors, models, name):
    """Row i of a batch-7 run equals a batch-1 run of image i (no cross-talk between images or programs)."""
    x = _input(models(name), 7, seed=3)
    pred = predictors(name, 2)
    full = pred.run(x)
    single = pred.run(x[4:5])
    assert_close(single, full[4:5], rtol=1e-5)


@pytest.mark.full_size
@pytest.mark.parametrize("name", FULL)
def test_full_size_model_matches_onnxruntime(models, predictors, name):
    model = models(name)
    x = _input(model, 1, seed=0)
    want = ort_session(model, 2).run(None, {zoo.INPUT: x})[0]
    got = predictors(name, 2).run(x)
    assert got.shape == (1, 1000)
    assert_close(got, want, rtol=1e-4)


def test_model_exported_at_batch_1_runs_any_batch(models):
    """A fixed batch dim in the model does not pin the batch: row i equals onnxruntime's batch-1 run of image i."""
    from int8kit.runtime.predictor import Predictor

    fixed = zoo.build("resnet_tiny")
    fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    for out in fixed.graph.output:
        out.type.tensor_type.shape.dim[0].dim_value = 1
    x = np.random.default_rng(7).standard_normal((5, 3, 32, 32)).astype(np.float32)
    session = ort_session(fixed)
    expected = np.concatenate([session.run(None, {"input": x[i : i + 1]})[0] for i in range(5)])
    assert_close(Predictor(fixed, num_threads=1).run(x), expected)
