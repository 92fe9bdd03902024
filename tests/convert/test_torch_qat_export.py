"""PyTorch as a QDQ producer: an eager-mode torch.ao QAT model (fused Conv-BN-ReLU, FakeQuantize with uint8
affine activations and per-channel symmetric int8 weights, a quantized residual add) exported by
torch.onnx.export. torch writes each fused ConvBn as Conv(fake-quantized W * gamma / std) -> Div(gamma /
std) -> BatchNormalization; the Div folds into the weights' grid with the BN, so every conv runs INT8 and
the INT8 model computes what the QDQ file says (onnxruntime, optimisations off, is the reference)."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest

from int8kit.convert.pipeline import convert

from ._util import cosine_rows, run_int8kit, run_ort

torch = pytest.importorskip("torch")


def _qat_export(path) -> onnx.ModelProto:
    import torch.ao.quantization as tq
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
            self.c1, self.b1, self.r1 = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
            self.c2, self.b2, self.r2 = (
                nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
                nn.BatchNorm2d(16),
                nn.ReLU(),
            )
            self.c3, self.b3 = nn.Conv2d(16, 16, 1, bias=False), nn.BatchNorm2d(16)
            self.add = nn.quantized.FloatFunctional()
            self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(16, 10)

        def forward(self, x):
            y = self.r1(self.b1(self.c1(self.quant(x))))
            y = self.add.add(y, self.b3(self.c3(self.r2(self.b2(self.c2(y))))))
            return self.dequant(self.fc(torch.flatten(self.pool(y), 1)))

    torch.manual_seed(0)
    m = Net().train()
    tq.fuse_modules_qat(m, [["c1", "b1", "r1"], ["c2", "b2", "r2"], ["c3", "b3"]], inplace=True)
    m.qconfig = tq.QConfig(  # FakeQuantize (the fused default observer op has no ONNX export)
        activation=tq.FakeQuantize.with_args(
            observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8
        ),
        weight=tq.FakeQuantize.with_args(
            observer=tq.MovingAveragePerChannelMinMaxObserver,
            quant_min=-128,
            quant_max=127,
            dtype=torch.qint8,
            qscheme=torch.per_channel_symmetric,
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq.prepare_qat(m, inplace=True)
        with torch.no_grad():
            for _ in range(8):
                m(torch.randn(8, 3, 32, 32))
        m.eval().apply(tq.disable_observer)
        torch.onnx.export(
            m,
            torch.randn(1, 3, 32, 32),
            str(path),
            opset_version=17,
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        )
    return onnx.load(str(path))


def test_torch_qat_export_runs_every_conv_int8_and_matches_the_file(tmp_path):
    qdq = _qat_export(tmp_path / "qat.onnx")
    assert {"Div", "BatchNormalization"} <= {n.op_type for n in qdq.graph.node}  # torch's ConvBn spelling
    result = convert(qdq)
    assert result.summary.int8_ops["Conv"] == 3
    assert not {"Div", "BatchNormalization", "Affine"} & set(result.summary.fp32_ops), result.summary.fp32_ops
    x = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    assert cosine_rows(run_int8kit(result.model, x), run_ort(qdq, x, optimize=False)).min() >= 0.9999
