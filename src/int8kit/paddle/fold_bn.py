"""Fold batch_norm into the conv before it, on the Paddle program, before translation.

Why here and not in int8kit's own BN fold: a fake-quant program puts ranges on both sides of a BN (the conv's
`out_threshold` or observer measures the pre-BN tensor, the BN's the post-BN one). Paddle's reference
converter folds conv+BN (conv_bn_fuse_pass), which removes the pre-BN tensor and keeps the post-BN range on the
fused conv's output. Folding here does the same, so each range stays on the tensor it measured. With an int8
weight the fold keeps it exact: q * s * g = (q * sign g) * (s * |g|) per output channel.
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np

from int8kit.paddle.fake_quant import QuantWeight, Translated
from int8kit.paddle.program import Op

logger = logging.getLogger(__name__)

CONV_OPS = ("conv2d", "depthwise_conv2d")


def _affine(op: Op, params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    names = [op.input(s) for s in ("Scale", "Bias", "Mean", "Variance")]
    if any(n is None or n not in params for n in names):
        return None
    gamma, beta, mean, var = (params[n].astype(np.float64).reshape(-1) for n in names)
    scale = gamma / np.sqrt(var + float(op.attrs.get("epsilon", 1e-5)))
    return scale, beta - mean * scale


def fold_batch_norms(t: Translated, fetched: set[str]) -> int:
    """Fold every conv -> batch_norm pair whose conv output feeds only that BN; returns how many."""
    ops = t.program.ops
    uses = Counter(n for op in ops for names in op.inputs.values() for n in names)
    weight_uses = Counter(op.input("Filter") for op in ops if op.type in CONV_OPS)
    producer = {n: op for op in ops for names in op.outputs.values() for n in names}
    folded: list[Op] = []
    for bn in ops:
        if bn.type != "batch_norm" or bn.attrs.get("data_layout", "NCHW") != "NCHW":
            continue
        x = bn.input("X")
        conv = producer.get(x)
        affine = _affine(bn, t.params)
        wname = conv.input("Filter") if conv is not None and conv.type in CONV_OPS else None
        if wname is None or affine is None or uses[x] != 1 or x in fetched or wname not in t.params:
            continue
        if weight_uses[wname] != 1 or conv.input("Bias"):
            continue
        scale, shift = affine
        new_w = f"{wname}@bnfold"
        if wname in t.qweights:
            qw = t.qweights[wname]
            sign = np.where(scale < 0, -1, 1).astype(np.int8).reshape((-1,) + (1,) * (qw.q.ndim - 1))
            per_channel = np.broadcast_to(qw.scale.astype(np.float64), scale.shape) * np.abs(scale)
            t.qweights[new_w] = QuantWeight((qw.q * sign).astype(np.int8), per_channel.astype(np.float32), 0)
        w = t.params[wname].astype(np.float64)
        t.params[new_w] = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        bias = f"{bn.output('Y')}@bnfold_bias"
        t.params[bias] = shift.astype(np.float32)
        conv.inputs["Filter"] = [new_w]
        conv.inputs["Bias"] = [bias]
        conv.outputs = {**conv.outputs, "Output": [bn.output("Y")]}
        if t.ranges.pop(x, None) is not None:
            logger.debug("range of pre-BN tensor %s dropped with it (folded into %s)", x, conv.describe())
        folded.append(bn)
    t.program.ops = [op for op in ops if not any(op is f for f in folded)]
    if folded:
        logger.info("%d batch_norm ops folded into their convs", len(folded))
    return len(folded)
