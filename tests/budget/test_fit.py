"""Accuracy-driven fallback: layers go back to FP32, worst SQNR first, until the top-1 drop fits the budget."""

import numpy as np
import onnx
import pytest

from int8kit.convert.pipeline import convert
from int8kit.data.seed_format import write_seed
from int8kit.models import zoo
from int8kit.quantize.accuracy_budget import KEEP_FP32_KEY, fit_accuracy_budget, keep_fp32, top1
from int8kit.quantize.api import QuantizeConfig, quantize_model
from int8kit.runtime.predictor import Predictor


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("budget")
    fp32 = tmp / "fp32.onnx"
    onnx.save(zoo.build("resnet_tiny", seed=3), fp32)
    x = np.random.default_rng(0).standard_normal((48, 3, 32, 32)).astype(np.float32)
    labels = Predictor(fp32, num_threads=1).run(x).argmax(1)  # FP32 is 100% right by construction
    data_path = write_seed(tmp / "labelled.bin", x, labels)
    # A deliberately bad calibration (clip at the 60th percentile) so INT8 loses accuracy; the converter honours
    # the file exactly, so every clipped tensor costs accuracy until its layers fall back.
    qdq = quantize_model(fp32, x, QuantizeConfig(method="percentile", percentile=60.0, num_samples=48))
    return fp32, data_path, qdq


def test_keep_fp32_marks_named_nodes_and_rejects_unknown_names(setup):
    _, _, qdq = setup
    conv = next(n.name for n in qdq.graph.node if n.op_type == "Conv")
    marked = keep_fp32(qdq, (conv,))
    node = next(n for n in marked.graph.node if n.name == conv)
    assert {p.key: p.value for p in node.metadata_props}[KEEP_FP32_KEY] == "1"
    assert not any(p.key == KEEP_FP32_KEY for n in qdq.graph.node for p in n.metadata_props)  # a copy
    summary = convert(marked).summary
    assert any(op.name == conv and "kept FP32" in op.reason for op in summary.fp32_reasons)
    with pytest.raises(ValueError, match="no node named nope"):
        keep_fp32(qdq, ("nope",))


def test_layers_fall_back_until_the_budget_is_met(setup):
    from int8kit.data.open_data import open_dataset

    fp32, data_path, qdq = setup
    data = open_dataset(data_path)
    result = fit_accuracy_budget(fp32, qdq, data, max_drop=0.0, batch_size=16, num_threads=1)
    first, last = result.rounds[0], result.rounds[-1]
    assert first.drop > 0, "the bad calibration should lose accuracy before any fallback"
    assert result.met and last.drop <= 0.0 and last.kept_fp32
    # Each round keeps one more layer in FP32, and the final model really runs them in FP32.
    assert [len(r.kept_fp32) for r in result.rounds] == list(range(len(result.rounds)))
    converted = convert(result.model)
    fp32_names = {op.name for op in converted.summary.fp32_reasons}
    assert set(last.kept_fp32) <= fp32_names
    assert top1(converted.model, data, 16, 1, len(data)) == pytest.approx(last.int8_top1)


def test_cli_writes_the_qdq_model_with_the_fallback_layers(setup, tmp_path, capsys):
    from int8kit.cli import main

    fp32, data_path, _ = setup
    out = tmp_path / "qdq.onnx"
    argv = [
        "quantize",
        str(fp32),
        "--calib-data",
        str(data_path),
        "-o",
        str(out),
        "--method",
        "percentile",
        "--percentile",
        "50",
        "--max-accuracy-drop",
        "0",
        "--no-progress",
        "--num-threads",
        "1",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "within the budget" in printed
    marked = [n.name for n in onnx.load(out).graph.node if any(p.key == KEEP_FP32_KEY for p in n.metadata_props)]
    assert marked and all(name in printed for name in marked)
