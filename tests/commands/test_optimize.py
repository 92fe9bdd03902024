"""`int8kit optimize`: the FP32-optimised model (marked optimised, fused ops) computes what onnxruntime
computes on the original, and --debug writes one .dot per pass."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from int8kit.cli import main
from int8kit.ir.optimize import fp32_passes
from int8kit.ir.pipeline import pass_names
from int8kit.models import zoo
from int8kit.runtime.predictor import Predictor


def test_optimize_writes_the_fused_model_and_a_dot_per_pass(tmp_path, capsys):
    fp32, out, debug = tmp_path / "net.onnx", tmp_path / "net_opt.onnx", tmp_path / "dots"
    onnx.save(zoo.build("resnet_tiny", seed=3), fp32)
    assert main(["optimize", str(fp32), "-o", str(out), "--debug", str(debug)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    saved = onnx.load(out)
    assert {m.key: m.value for m in saved.metadata_props}["int8kit.optimized"] == "fp32"
    assert any(n.domain == "int8kit" for n in saved.graph.node)
    assert [f.stem.split("_", 1)[1] for f in sorted(debug.glob("*.dot"))] == pass_names(fp32_passes())
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(Predictor(str(out), num_threads=1).run(x), want, rtol=1e-4, atol=1e-4)


def test_stop_after_by_name_stops_before_the_fusions(tmp_path):
    fp32, out = tmp_path / "net.onnx", tmp_path / "intake.onnx"
    onnx.save(zoo.build("resnet_tiny", seed=3), fp32)
    assert main(["optimize", str(fp32), "-o", str(out), "--stop-after", "assign_node_ids"]) == 0
    assert not any(n.domain == "int8kit" for n in onnx.load(out).graph.node)
