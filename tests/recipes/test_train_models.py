"""The example classifiers: shapes, building blocks, ONNX export against torch, and a tiny training run."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest

from examples import train as tr
from int8kit.errors import ConfigError

from ._idx import write_split

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def randomize_batchnorm(model, seed: int = 0):
    """Non-trivial BN statistics, so that the export must fold them correctly."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model.eval()


@pytest.mark.parametrize("arch", tr.ARCHS)
@pytest.mark.parametrize("size", [28, 32])
def test_forward_shapes(arch, size):
    model = tr.build_model(arch).eval()
    with torch.no_grad():
        out = model(torch.zeros(3, 1, size, size))
    assert out.shape == (3, 10)


def test_architectures_have_the_layers_the_converter_must_handle():
    mnv2 = list(tr.build_model("mobilenetv2").modules())
    depthwise = [m for m in mnv2 if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1]
    assert depthwise and any(isinstance(m, torch.nn.ReLU6) for m in mnv2)
    assert sum(type(m).__name__ == "InvertedResidual" and m.residual for m in mnv2) >= 3
    resnet = list(tr.build_model("resnet").modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in resnet)
    assert sum(type(m).__name__ == "BasicBlock" for m in resnet) == 6


@pytest.mark.parametrize("arch", tr.ARCHS)
def test_onnx_export_matches_torch_with_another_batch_size(arch, tmp_path):
    model = randomize_batchnorm(tr.build_model(arch))
    path = tr.export_onnx(model, tmp_path / f"{arch}.onnx")
    proto = onnx.load(path)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [tr.OPSET]
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["logits"]
    assert not any(n.op_type == "BatchNormalization" for n in proto.graph.node)
    x = np.random.default_rng(1).standard_normal((5, 1, 28, 28)).astype(np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_tiny_training_run_reports_the_exported_models_accuracy(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "fm"
    write_split(root, "train", rng.integers(0, 256, (96, 28, 28), np.uint8), rng.integers(0, 10, 96, np.uint8))
    test_x = rng.integers(0, 256, (40, 28, 28), np.uint8)
    test_y = rng.integers(0, 10, 40, np.uint8)
    write_split(root, "test", test_x, test_y)
    config = tr.TrainConfig(arch="resnet", epochs=1, batch_size=32, threads=1, data_root=root)
    result = tr.train(config)
    path = tr.export_onnx(result.model, tmp_path / "m.onnx")
    x = (test_x[:, None].astype(np.float32) / 255 - 0.2860405969887955) / 0.35302424451492237
    logits = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert result.test_top1 == pytest.approx(float((logits.argmax(1) == test_y).mean()), abs=1 / 40)
    assert result.parameters == sum(p.numel() for p in tr.build_model("resnet").parameters())


def test_unknown_architecture():
    with pytest.raises(ConfigError, match="unknown architecture 'vgg'"):
        tr.build_model("vgg")
    with pytest.raises(ConfigError, match="unknown architecture"):
        tr.TrainConfig(arch="vgg")


def test_missing_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ConfigError, match="pip install"):
        tr.build_model("resnet")
