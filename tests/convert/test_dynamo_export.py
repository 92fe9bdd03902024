"""A model exported by torch's dynamo exporter (torch.onnx.export(dynamo=True), its default): opset 18+,
ReduceMean with axes as an input, Reshape heads, Split for chunk; FP32 equal to onnxruntime, and int8kit's
QDQ model converted with its squeeze-excite and residual blocks INT8, matching onnxruntime on that file."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
from torch import nn  # noqa: E402

from int8kit.convert.pipeline import convert  # noqa: E402
from int8kit.quantize.api import quantize_with_report  # noqa: E402
from int8kit.runtime.predictor import Predictor  # noqa: E402

from ._util import SIZE, calib_inputs, cosine_rows, eval_inputs, run_ort  # noqa: E402


class Block(nn.Module):
    """Channel split, conv-bn-relu, squeeze-excite (adaptive pool, hardsigmoid gate), concat and shuffle."""

    def __init__(self, c: int) -> None:
        super().__init__()
        half = c // 2
        self.body = nn.Sequential(nn.Conv2d(half, half, 3, padding=1), nn.BatchNorm2d(half), nn.ReLU())
        self.fc1, self.fc2 = nn.Conv2d(half, 4, 1), nn.Conv2d(4, half, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        b = self.body(b)
        b = b * nn.functional.hardsigmoid(
            self.fc2(nn.functional.relu(self.fc1(nn.functional.adaptive_avg_pool2d(b, 1))))
        )
        y = torch.cat([a, b], dim=1)
        n, c, h, w = y.shape
        return y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.Sequential(Block(16), Block(16))
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.stem(x)) + self.stem(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> onnx.ModelProto:
    torch.manual_seed(0)
    model = Net().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, nn.Conv2d):
                m.bias.uniform_(0.0, 0.3)  # no ReLU dead on every calibration image
    path = tmp_path_factory.mktemp("dynamo") / "net.onnx"
    batch = torch.export.Dim("batch", min=1, max=1024)
    x = torch.randn(2, 3, SIZE, SIZE)
    torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["x"], dynamic_shapes={"x": {0: batch}})
    return onnx.load(str(path))


def test_the_export_is_the_opset_18_form(exported):
    assert max(o.version for o in exported.opset_import if o.domain in ("", "ai.onnx")) >= 18
    means = [n for n in exported.graph.node if n.op_type == "ReduceMean"]
    assert means and all(len(n.input) == 2 for n in means)  # axes as an input


def test_fp32_matches_onnxruntime(exported):
    x = eval_inputs(n=8)
    got, want = Predictor(exported, num_threads=1).run(x), run_ort(exported, x)
    assert float(np.abs(got - want).max() / np.abs(want).max()) <= 1e-4


def test_int8_matches_the_qdq_model_in_onnxruntime(exported):
    qdq = ir.serde.serialize_model(quantize_with_report(exported, calib_inputs()).model)
    result = convert(qdq)
    assert result.summary.int8_ops.get("Binary", 0) >= 2, result.summary.lines()  # the two excite multiplies
    assert "ReduceMean" not in result.summary.fp32_ops, result.summary.lines()
    x = eval_inputs(n=32)
    assert cosine_rows(Predictor(result.model, num_threads=1).run(x), run_ort(qdq, x)).mean() >= 0.999
