"""Scales around BatchNorm land on the tensors they measure (paddle2onnx puts the pre-BN one after the BN).

PaddleSlim measures both sides of a conv -> batch_norm: the conv's output (`out_threshold` in QAT, an observer
pair in onnx_format PTQ) and the BN's. The reader folds BN into the conv as Paddle's converter does; with
output_scales the fused conv's output must carry the BN's (post-BN) scale, and the pre-BN one must vanish.
"""

from __future__ import annotations

import numpy as np
import pytest
from paddle_fixtures import ARCHS, MODELS

from int8kit.paddle import PaddleReadConfig, load_paddle_model, read_paddle_parts


def _measured(program) -> dict[str, float]:
    """Tensor -> threshold, from out_threshold attributes and observer pairs, read from the program itself."""
    out = {}
    for op in program.ops:
        if op.type == "quantize_linear" and op.attrs.get("only_observer"):
            out[op.input("X")] = None  # value in the parameters
        elif isinstance(op.attrs.get("out_threshold"), float):
            out[op.main_output()] = op.attrs["out_threshold"]
    return out


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("kind", ["qat", "ptq_onnx"])
def test_fused_conv_output_carries_the_post_bn_scale(arch, kind):
    program, params = read_paddle_parts(MODELS / f"{arch}_{kind}")
    measured = _measured(program)
    for op in program.ops:
        if op.type == "quantize_linear" and op.attrs.get("only_observer"):
            measured[op.input("X")] = float(params[op.input("Scale")].reshape(-1)[0])
    producer = {n: op for op in program.ops for names in op.outputs.values() for n in names}
    model = load_paddle_model(MODELS / f"{arch}_{kind}", PaddleReadConfig(output_scales=True))
    values = {v.name: v for node in model.graph for v in node.outputs}
    pairs = 0
    for bn in (op for op in program.ops if op.type == "batch_norm"):
        x = bn.input("X")
        while producer[x].type in ("quantize_linear", "dequantize_linear"):  # observer pair in front of the BN
            x = producer[x].input("X")
        if producer[x].type not in ("conv2d", "depthwise_conv2d"):
            continue
        pre, post = measured.get(x), measured.get(bn.output("Y"))
        assert pre is not None and post is not None and not np.isclose(pre, post)
        fused = values[bn.output("Y")]
        assert fused.producer().op_type == "Conv"
        assert x not in values  # the pre-BN tensor is gone
        quantizers = [u.node for u in fused.uses() if u.node.op_type == "QuantizeLinear"]
        assert len(quantizers) == 1
        scale = float(quantizers[0].inputs[1].const_value.numpy())
        # The BN's measured range, or the fake-quant op's own (moving-average) scale on the same tensor.
        assert scale * 127 == pytest.approx(post, rel=1e-3)
        assert abs(scale * 127 - post) < abs(scale * 127 - pre)
        pairs += 1
    assert pairs >= 4


@pytest.mark.parametrize("arch", ARCHS)
def test_output_scales_only_add_pairs_and_never_on_the_logits(arch):
    plain = load_paddle_model(MODELS / f"{arch}_qat")
    measured = load_paddle_model(MODELS / f"{arch}_qat", PaddleReadConfig(output_scales=True))

    def count(model):
        return sum(n.op_type == "QuantizeLinear" for n in model.graph)

    assert count(measured) > count(plain)
    logits = measured.graph.outputs[0]
    assert logits.producer().op_type != "DequantizeLinear"
