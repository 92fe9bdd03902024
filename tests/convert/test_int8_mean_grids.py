"""INT8 averages written onto another INT8 grid (int8kit.Mean over H, W and int8kit.AveragePool without
padding), as oneDNN's int8 pooling with the requantization as a post-op.

That pooling writes only its source's type, so an s8 source read by a u8 consumer (SiLU output -> squeeze-
excite mean -> conv) is pooled onto s8 codes 128 lower and moved onto u8; each case here is checked code by
code against numpy's rounding of the QDQ file's float average (the spec), odd zero points included, and the
whole net against onnxruntime.
"""

from __future__ import annotations

import numpy as np
import pytest

from int8kit.convert.pipeline import convert

from ._util import QDQGraph, assert_agrees, eval_inputs, run_int8kit, run_int8kit_output, run_ort

GRIDS = [  # (source type, source zero point, destination type, destination zero point)
    (np.int8, 0, np.uint8, 21),
    (np.uint8, 7, np.int8, -3),
    (np.int8, 0, np.int8, 5),
    (np.uint8, 0, np.uint8, 20),
]


def _net(op: str, x_type, x_zp: int, y_type, y_zp: int):
    g = QDQGraph(shape=("N", 3, 16, 16), seed=3)
    x = g.qdq("input", 0.05, 0, np.int8)
    a = g.qdq(g.conv(x, 3, 24, name="producer"), 0.03, x_zp, x_type)
    if op == "GlobalAveragePool":
        m = g.node("GlobalAveragePool", [a], "avg", name="pool")
    elif op == "AveragePool":
        m = g.node("AveragePool", [a], "avg", name="pool", kernel_shape=[2, 2], strides=[2, 2])
    else:  # torch's AvgPool2d(3, 1, 1): padding counted as zeros
        m = g.node("AveragePool", [a], "avg", name="pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)
    m = g.qdq(m, 0.004, y_zp, y_type)
    return g.build([g.conv(m, 24, 8, k=1, name="reader")])


@pytest.mark.parametrize("op", ["GlobalAveragePool", "AveragePool", "AveragePoolPadded"])
@pytest.mark.parametrize(("x_type", "x_zp", "y_type", "y_zp"), GRIDS)
def test_average_onto_another_int8_grid_rounds_like_the_spec(op, x_type, x_zp, y_type, y_zp):
    qdq = _net(op, x_type, x_zp, y_type, y_zp)
    model = convert(qdq).model
    pool = next(n for n in model.graph if n.name == "pool")
    assert pool.attributes.get_int("y_type") == (2 if y_type == np.uint8 else 3)
    x = eval_inputs(size=16, n=8)
    q = run_int8kit_output(model, x, pool.inputs[0].name).astype(np.float64)
    assert q.dtype == np.float64 and np.unique(q).size > 20  # real INT8 codes, many of them
    n, c, h, w = q.shape
    if op == "GlobalAveragePool":
        centred = (q - x_zp).mean(axis=(2, 3), keepdims=True)
    elif op == "AveragePool":
        centred = (q - x_zp).reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    else:
        padded = np.pad(q - x_zp, [(0, 0), (0, 0), (1, 1), (1, 1)])
        centred = sum(padded[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9
    real = pool.attributes.get_float("x_scale") * centred
    exact = real / pool.attributes.get_float("y_scale") + y_zp
    info = np.iinfo(y_type)
    want = np.clip(np.rint(exact), info.min, info.max)
    got = run_int8kit_output(model, x, pool.outputs[0].name).astype(np.float64)
    assert got.shape == want.shape
    tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-4  # a float tie may round either way
    assert np.array_equal(got[~tie], want[~tie]), np.abs(got - want).max()
    assert np.abs(got - want).max() <= 1
    assert_agrees(run_int8kit(model, x), run_ort(qdq, x, optimize=False), cos=0.9999)
