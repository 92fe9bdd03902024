"""The trained models in examples/models: their interface, and their accuracy on real Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from examples import fashion_mnist as fm

ort = pytest.importorskip("onnxruntime")

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
# The top-1 recorded in examples/models/README.md on all 10,000 test images, less a margin for the subset.
DOCUMENTED = {"fashion_mnist_resnet.onnx": 0.922, "fashion_mnist_mobilenetv2.onnx": 0.916}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_interface(name):
    path = MODELS / name
    assert path.stat().st_size < 2 * 1024 * 1024
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "input" and isinstance(dims[0], str) and dims[1:] == [1, 28, 28]
    assert out.name == "logits"


@pytest.mark.skipif(not fm.DEFAULT_ROOT.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_accuracy_on_the_real_test_set(name):
    images, labels = fm.load_split("test")
    images, labels = images[:2000], labels[:2000]
    x = ((images[:, None].astype(np.float32) / 255 - fm.MEAN[0]) / fm.STD[0]).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(MODELS / name), options, providers=["CPUExecutionProvider"])
    top1 = float((session.run(None, {"input": x})[0].argmax(1) == labels).mean())
    assert top1 >= DOCUMENTED[name] - 0.02
