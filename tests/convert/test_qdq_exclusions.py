"""An op the QDQ tool left unquantized (no Q/DQ on its weights) stays FP32: the file is honoured.

onnxruntime's `nodes_to_exclude` keeps those nodes' weights float; the INT8 model must keep exactly
those ops in FP32 (with the reason in the summary) and still match the QDQ model run in onnxruntime.
"""

from __future__ import annotations

import onnx

from int8kit.convert.config import ConvertConfig
from int8kit.convert.pipeline import convert

from ._util import assert_agrees, calib_inputs, eval_inputs, ort_qdq, run_int8kit, run_ort


def _conv_names(model: onnx.ModelProto) -> list[str]:
    return [n.name for n in model.graph.node if n.op_type == "Conv"]


def test_convs_excluded_by_the_qdq_tool_stay_fp32(fp32):
    model = fp32("resnet_tiny")
    excluded = tuple(_conv_names(model)[1:4])
    qdq = ort_qdq(model, calib_inputs(), "ort_pc_s8_sym", exclude=excluded)
    result = convert(qdq)
    fp32_convs = {op.name for op in result.summary.fp32_reasons if op.op_type == "Conv"}
    assert fp32_convs == set(excluded), "\n".join(result.summary.lines())
    reasons = {op.reason for op in result.summary.fp32_reasons if op.name in excluded}
    assert all("leaves its weights in float" in r for r in reasons), reasons
    x = eval_inputs()
    assert_agrees(run_int8kit(result.model, x), run_ort(qdq, x))


def test_quantize_float_weights_overrides_the_file_when_asked(fp32):
    model = fp32("resnet_tiny")
    excluded = tuple(_conv_names(model)[1:2])
    qdq = ort_qdq(model, calib_inputs(), "ort_pc_s8_sym", exclude=excluded)
    result = convert(qdq, ConvertConfig(quantize_float_weights=True))
    assert not [op for op in result.summary.fp32_reasons if op.op_type == "Conv"]


def test_fp32_neighbours_round_inside_the_producer_not_through_a_qdq_pair(fp32):
    """Two excluded convs in a row: the file rounds the first one's output; the first conv rounds it
    itself (an "fq" post-op), so mixed-precision models pay no Quantize -> Dequantize between FP32 layers."""
    model = fp32("resnet_tiny")
    excluded = tuple(_conv_names(model)[1:4])
    qdq = ort_qdq(model, calib_inputs(), "ort_pc_s8_sym", exclude=excluded)
    result = convert(qdq)
    graph = result.model.graph

    def qdq_pair_after_conv(n):
        q = n.inputs[0].producer() if n.op_type == "DequantizeLinear" else None
        src = q.inputs[0].producer() if q is not None and q.op_type == "QuantizeLinear" else None
        return src is not None and src.op_type == "Conv"

    pairs = [n for n in graph if qdq_pair_after_conv(n)]
    assert not pairs, [n.name for n in pairs]
    rounding = (
        [
            n.name
            for n in graph
            if n.name in excluded and any(p.startswith("fq:") for p in n.attributes["post_ops"].as_strings())
        ]
        if excluded
        else []
    )
    assert rounding, "no excluded conv rounds its output"
    x = eval_inputs()
    assert_agrees(run_int8kit(result.model, x), run_ort(qdq, x))
