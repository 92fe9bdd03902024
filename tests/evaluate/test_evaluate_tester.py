"""run_test against a direct computation: a tiny ONNX model run on the whole array, top-k by argsort."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from int8kit.data import write_compact, write_seed
from int8kit.errors import ConfigError, DataError, InputError
from int8kit.evaluate.metrics import Accuracy, topk_correct
from int8kit.evaluate.tester import TestConfig, run_test

CLASSES = 7


def tiny_model(path, channels=3, classes=CLASSES, batch="N", dim="D", accuracy_layer=False, seed=0):
    """GlobalAveragePool -> Flatten -> MatMul -> Add; optionally the seed's accuracy outputs."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(size=(channels, classes)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(classes,)).astype(np.float32), "B")
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["scores"]),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, channels, dim, dim])]
    outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, classes])]
    inits = [weight, bias]
    if accuracy_layer:
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, [batch, 1]))
        for k in (1, 5):
            inits.append(numpy_helper.from_array(np.array([k], dtype=np.int64), f"k{k}"))
            nodes += [
                helper.make_node("TopK", ["scores", f"k{k}"], [f"v{k}", f"i{k}"], axis=1),
                helper.make_node("Equal", [f"i{k}", "label"], [f"eq{k}"]),
                helper.make_node("Cast", [f"eq{k}"], [f"f{k}"], to=TensorProto.FLOAT),
                helper.make_node("ReduceMax", [f"f{k}"], [f"hit{k}"], axes=[1], keepdims=0),
                helper.make_node("ReduceMean", [f"hit{k}"], [f"acc{k}"], keepdims=0),
            ]
            outputs.append(helper.make_tensor_value_info(f"acc{k}", TensorProto.FLOAT, []))
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def direct_scores(model_path, images):
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(["scores"], {"x": images.astype(np.float32)})[0]


def reference_topk(scores, labels, k):
    order = np.argsort(-scores, axis=1)[:, :k]
    return int(sum(label in row for row, label in zip(order, labels, strict=True)))


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(5)
    images = rng.normal(size=(23, 3, 6, 6)).astype(np.float32)
    labels = rng.integers(0, CLASSES, 23)
    return tmp_path, images, labels, write_seed(tmp_path / "d.bin", images, labels)


def test_metrics_match_argsort():
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(40, 9)), rng.integers(0, 9, 40)
    for k in (1, 3, 5):
        assert topk_correct(scores, labels, k) == reference_topk(scores, labels, k)
    acc = Accuracy()
    acc.update(scores[:25], labels[:25])
    acc.update(scores[25:], labels[25:])
    assert acc.count == 40 and acc.rate(5) == reference_topk(scores, labels, 5) / 40
    nan_scores = scores.copy()
    nan_scores[0, labels[0]] = np.nan
    assert topk_correct(nan_scores[:1], labels[:1], 9) == 0


@pytest.mark.parametrize("batch_size", [5, 23, 50])
def test_accuracy_counts_every_image_once(dataset, batch_size):
    folder, images, labels, data = dataset
    model = tiny_model(folder / "m.onnx")
    result = run_test(TestConfig(model, data, batch_size=batch_size, backend="onnxruntime", warmup_iter=1))
    scores = direct_scores(model, images)
    assert result.images == 23
    assert result.iterations == -(-23 // batch_size)
    assert result.top1 == pytest.approx(reference_topk(scores, labels, 1) * 100 / 23)
    assert result.top5 == pytest.approx(reference_topk(scores, labels, 5) * 100 / 23)


def test_iterations_limit_and_timing_fields(dataset):
    folder, images, labels, data = dataset
    model = tiny_model(folder / "m.onnx")
    result = run_test(TestConfig(model, data, batch_size=4, iterations=3, backend="onnxruntime"))
    scores = direct_scores(model, images[:12])
    assert result.images == 12 and result.iterations == 3
    assert result.top1 == pytest.approx(reference_topk(scores, labels[:12], 1) * 100 / 12)
    assert result.batch_latency_ms == pytest.approx(result.total_time_s * 1000 / 3)
    assert result.sample_latency_ms == pytest.approx(result.batch_latency_ms / 4)
    assert result.fps == pytest.approx(1000 / result.sample_latency_ms)
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms
    record = json.loads(json.dumps(result.to_dict()))
    assert record["config"]["batch_size"] == 4 and record["environment"]["versions"]["numpy"] == np.__version__


def test_compact_file_gives_same_accuracy(tmp_path):
    rng = np.random.default_rng(6)
    pixels = rng.integers(0, 256, size=(17, 3, 5, 5), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, 17)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)
    data = write_compact(tmp_path / "c.bin", pixels, labels, mean, std)
    model = tiny_model(tmp_path / "m.onnx")
    result = run_test(TestConfig(model, data, batch_size=6, backend="onnxruntime"))
    floats = (pixels / 255.0 - np.reshape(mean, (3, 1, 1))) / np.reshape(std, (3, 1, 1))
    scores = direct_scores(model, floats)
    assert result.images == 17
    assert result.top1 == pytest.approx(reference_topk(scores, labels, 1) * 100 / 17)
    assert result.top5 == pytest.approx(reference_topk(scores, labels, 5) * 100 / 17)


def test_fixed_batch_model_pads_last_batch(dataset):
    folder, images, labels, data = dataset
    model = tiny_model(folder / "m.onnx", batch=5, dim=6)
    result = run_test(TestConfig(model, data, batch_size=5, backend="onnxruntime"))
    scores = direct_scores(tiny_model(folder / "dyn.onnx"), images)
    assert result.images == 23 and result.top1 == pytest.approx(reference_topk(scores, labels, 1) * 100 / 23)
    with pytest.raises(ConfigError, match="fixed batch size of 5"):
        run_test(TestConfig(model, data, batch_size=4, backend="onnxruntime"))


def test_with_accuracy_layer(dataset):
    folder, images, labels, data = dataset
    model = tiny_model(folder / "acc.onnx", accuracy_layer=True)
    result = run_test(
        TestConfig(model, data, batch_size=5, backend="onnxruntime", with_accuracy_layer=True, warmup_iter=0)
    )
    scores = direct_scores(tiny_model(folder / "m.onnx"), images)  # same weights without the accuracy outputs
    assert result.images == 23
    assert result.top1 == pytest.approx(reference_topk(scores, labels, 1) * 100 / 23)
    assert result.top5 == pytest.approx(reference_topk(scores, labels, 5) * 100 / 23)
    with pytest.raises(InputError, match="expected 2"):
        run_test(TestConfig(tiny_model(folder / "m.onnx"), data, backend="onnxruntime", with_accuracy_layer=True))


def test_model_and_data_disagree(dataset):
    folder, images, labels, data = dataset
    with pytest.raises(InputError, match=r"wants images of \(1, 'D', 'D'\).*d\.bin holds \(3, 6, 6\)"):
        run_test(TestConfig(tiny_model(folder / "g.onnx", channels=1), data, backend="onnxruntime"))
    with pytest.raises(DataError, match=r"d\.bin: images 0\.\.4: labels must lie in \[0, 3\)"):
        run_test(TestConfig(tiny_model(folder / "k3.onnx", classes=3), data, batch_size=5, backend="onnxruntime"))


def test_truncated_data_is_a_clear_error(dataset):
    folder, images, labels, data = dataset
    data.write_bytes(data.read_bytes()[:-3])
    with pytest.raises(DataError, match=r"d\.bin.*truncated|d\.bin.*not a seed"):
        run_test(TestConfig(tiny_model(folder / "m.onnx"), data, backend="onnxruntime"))


def test_bad_config_values(dataset):
    with pytest.raises(ConfigError, match="batch-size must be at least 1"):
        TestConfig("m.onnx", "d.bin", batch_size=0)


def test_int8kit_backend_matches(dataset):
    pytest.importorskip("int8kit.runtime.predictor")
    folder, images, labels, data = dataset
    model = tiny_model(folder / "m.onnx")
    result = run_test(TestConfig(model, data, batch_size=5, backend="int8kit"))
    scores = direct_scores(model, images)
    assert result.images == 23
    assert result.top1 == pytest.approx(reference_topk(scores, labels, 1) * 100 / 23)
    assert result.top5 == pytest.approx(reference_topk(scores, labels, 5) * 100 / 23)


def test_npy_images_without_labels(tmp_path):
    images = np.random.default_rng(8).normal(size=(9, 3, 4, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", images)
    result = run_test(
        TestConfig(tiny_model(tmp_path / "m.onnx"), tmp_path / "x.npy", batch_size=4, backend="onnxruntime")
    )
    assert result.top1 is None and result.top5 is None
    assert result.images == 9 and result.iterations == 3
    with pytest.raises(ConfigError, match="no labels"):
        run_test(TestConfig(tmp_path / "m.onnx", tmp_path / "x.npy", backend="onnxruntime", with_accuracy_layer=True))


class SlowBackend:
    """onnxruntime, plus a known sleep per call; records how many images each call really got."""

    def __init__(self, model, delay_s=0.02):
        from int8kit.evaluate.backends import make_backend

        self._inner = make_backend("onnxruntime", model, 1, False)
        self.name, self.inputs, self.delay_s, self.fed = "slow", self._inner.inputs, delay_s, []

    def run(self, feeds):
        import time

        time.sleep(self.delay_s)
        self.fed.append(len(next(iter(feeds.values()))))
        return self._inner.run(feeds)


@pytest.mark.parametrize(("batch_size", "fed"), [(1000, [23]), (5, [5, 5, 5, 5, 3]), (23, [23])])
def test_speed_counts_the_images_actually_run(dataset, batch_size, fed):
    """Issue 9: `--batch-size 1000` on a small file overstated images/s (it divided by the batch size)."""
    folder, images, labels, data = dataset
    backend = SlowBackend(tiny_model(folder / "m.onnx"))
    result = run_test(TestConfig(folder / "m.onnx", data, batch_size=batch_size, warmup_iter=0), backend=backend)
    assert backend.fed == fed and result.timed_images == 23 == result.images
    assert result.fps == pytest.approx(23 / result.total_time_s)
    assert result.sample_latency_ms == pytest.approx(result.total_time_s * 1000 / 23)
    assert result.batch_latency_ms == pytest.approx(result.total_time_s * 1000 / len(fed))
    # Each call sleeps 20 ms, so no more than 23 images per 20 ms x calls can have been run.
    assert result.fps <= 23 / (0.02 * len(fed)) * 1.0001


def test_fixed_batch_padding_is_not_counted_as_speed(dataset):
    folder, images, labels, data = dataset
    backend = SlowBackend(tiny_model(folder / "m5.onnx", batch=5, dim=6))
    result = run_test(TestConfig(folder / "m5.onnx", data, batch_size=5, warmup_iter=0), backend=backend)
    assert backend.fed == [5] * 5  # the last batch of 3 is padded to the model's 5
    assert result.timed_images == 23 and result.fps == pytest.approx(23 / result.total_time_s)


def test_nan_and_inf_images_are_warned_about(tmp_path, caplog):
    rng = np.random.default_rng(9)
    images = rng.normal(size=(12, 3, 4, 4)).astype(np.float32)
    images[3, 0, 1, 1] = np.nan
    images[7, 2, 0, 0] = np.inf
    labels = rng.integers(0, CLASSES, 12)
    data = write_seed(tmp_path / "n.bin", images, labels)
    with caplog.at_level("WARNING", logger="int8kit.evaluate.tester"):
        result = run_test(TestConfig(tiny_model(tmp_path / "m.onnx"), data, batch_size=5, backend="onnxruntime"))
    assert result.nonfinite_images == 2
    (record,) = [r for r in caplog.records if "NaN" in r.getMessage()]
    assert "2 image(s) hold NaN or inf values (first: image 3)" in record.getMessage()
    clean = write_seed(tmp_path / "c.bin", np.nan_to_num(images, nan=0, posinf=0), labels)
    caplog.clear()
    assert run_test(TestConfig(tmp_path / "m.onnx", clean, backend="onnxruntime")).nonfinite_images == 0
    assert not [r for r in caplog.records if "NaN" in r.getMessage()]


def test_result_names_the_model_by_hash(dataset):
    import hashlib

    folder, images, labels, data = dataset
    model = tiny_model(folder / "m.onnx")
    result = run_test(TestConfig(model, data, backend="onnxruntime"))
    assert result.to_dict()["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
