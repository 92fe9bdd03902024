"""End to end: the INT8 model int8kit converts from a QDQ model agrees with that QDQ model run in
onnxruntime (the reference semantics of the fake-quant graph), for QDQ models from onnxruntime's
quantize_static (per-channel and per-tensor weights; asymmetric u8 and symmetric s8 activations) and
from int8kit's own quantizer."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from int8kit.convert.pipeline import convert

from ._util import ORT_VARIANTS, assert_agrees, eval_inputs, run_int8kit, run_int8kit_output, run_ort

MODELS = ("resnet_tiny", "mobilenetv2_tiny", "hardswish_se_tiny", "concat_tiny")
VARIANTS = (*ORT_VARIANTS, "int8kit")


def _logits_name(int8_model) -> str | None:
    """The tensor a final Softmax reads: near-uniform probabilities would hide logit errors, and
    onnxruntime also quantizes the Softmax output, so compare the logits (same name in both models)."""
    last = [n for n in int8_model.graph if n.op_type == "Softmax"]
    return last[-1].inputs[0].name if last else None


def _with_output(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return model


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", MODELS)
def test_int8_model_agrees_with_qdq_model_in_onnxruntime(name, variant, qdq):
    model = qdq(name, variant)
    result = convert(model)
    assert result.summary.int8_compute_ops >= 5, "\n".join(result.summary.lines())
    x = eval_inputs()
    logits = _logits_name(result.model)
    if logits is None:
        got, want = run_int8kit(result.model, x), run_ort(model, x)
    else:
        got = run_int8kit_output(result.model, x, logits)
        want = run_ort(_with_output(model, logits), x)
    # Zero points are executed, not widened away: asymmetric models are matched as closely as symmetric ones.
    assert_agrees(got, want)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_conv_and_dense_runs_int8_for_plain_cnns(variant, qdq, fp32):
    # resnet_tiny has only Conv/BN/Relu/Add/MaxPool/GAP/Flatten/Gemm: every Conv and Gemm runs INT8.
    from int8kit.ir.load import as_ir_model
    from int8kit.ir.optimize import optimize_fp32

    fused = optimize_fp32(as_ir_model(fp32("resnet_tiny")))
    expected = sum(1 for n in fused.graph if n.op_type in ("Conv", "Dense"))
    s = convert(qdq("resnet_tiny", variant)).summary
    assert s.int8_compute_ops == expected
    # The only FP32 op: the global average, which the QDQ file rounds onto its own output grid, so it
    # reads the INT8 data directly into a float mean that it writes onto that grid itself (int8kit.Mean);
    # the Flatten and the Gemm then stay INT8. The one border is the model input.
    assert {op.op_type for op in s.fp32_reasons} <= {"GlobalAveragePool"}, s.fp32_reasons
    assert dict(s.conversions) == {"QuantizeLinear": 1}
