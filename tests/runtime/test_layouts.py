"""FP32 layout policies (runtime.layouts): every policy compiles a GhostNet-style block (channel counts
that are not multiples of 16, a concat and a slice) to the same values as onnxruntime on optimised kernels;
the choice between them keeps the default unless another is clearly faster; the Predictor tunes once per
input shape."""

from __future__ import annotations

import time

import numpy as np
import pytest
from onnx import helper

from int8kit.runtime import layouts
from int8kit.runtime.compile import WeightCache
from int8kit.runtime.lowering import compile_graph
from int8kit.runtime.predictor import Predictor

from ._util import assert_close, init, make_model, run_ort, vinfo


def _ghost_block():
    """conv 16 -> 8, depthwise 8, concat 16, slice back to 12, conv 12 -> 24, twice over."""
    rng = np.random.default_rng(0)

    def w(name, *shape):
        return init(name, (rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))).astype(np.float32))

    nodes, inits, x, c = [], [w("stem", 16, 3, 3, 3)], "s", 16
    nodes.append(helper.make_node("Conv", ["x", "stem"], ["s"], pads=[1, 1, 1, 1], strides=[2, 2]))
    for i in range(2):
        inits += [w(f"p{i}", 8, c, 1, 1), w(f"d{i}", 8, 1, 3, 3), w(f"o{i}", 24, 12, 1, 1)]
        inits += [init(f"st{i}", np.array([0], np.int64)), init(f"en{i}", np.array([12], np.int64))]
        inits += [init(f"ax{i}", np.array([1], np.int64))]
        nodes += [
            helper.make_node("Conv", [x, f"p{i}"], [f"pr{i}"]),
            helper.make_node("Relu", [f"pr{i}"], [f"r{i}"]),
            helper.make_node("Conv", [f"r{i}", f"d{i}"], [f"dw{i}"], group=8, pads=[1, 1, 1, 1]),
            helper.make_node("Concat", [f"r{i}", f"dw{i}"], [f"cat{i}"], axis=1),
            helper.make_node("Slice", [f"cat{i}", f"st{i}", f"en{i}", f"ax{i}"], [f"sl{i}"]),
            helper.make_node("Conv", [f"sl{i}", f"o{i}"], [f"y{i}" if i == 0 else "y"]),
        ]
        x, c = f"y{i}", 24
    return make_model(nodes, [vinfo("x", ["N", 3, 16, 16])], [vinfo("y", None)], inits)


@pytest.mark.parametrize("policy", layouts.POLICIES)
@pytest.mark.parametrize("batch", [1, 4])
def test_every_policy_computes_the_model_on_optimised_kernels(policy, batch):
    import onnx_ir as ir

    from int8kit.runtime.predictor import prepare_model

    model = _ghost_block()
    graph = prepare_model(ir.serde.deserialize_model(model), ()).graph
    x = np.random.default_rng(1).standard_normal((batch, 3, 16, 16)).astype(np.float32)
    prog = compile_graph(graph, {"x": x.shape}, WeightCache(), layout_policy=policy)
    assert not [(label, impl) for label, impl in zip(prog.labels, prog.impls, strict=True) if impl.startswith("ref")]
    assert_close(prog.run({"x": x})["y"], run_ort(model, {"x": x}))


def _class_map_head():
    """An all-conv head: conv 16 -> 24 with ReLU, a 1x1 conv to 10 class maps, their mean over H, W, on a
    7x7 input that a 7x7 conv has reduced to 1x1 (MobileFaceNet-style global conv, NiN heads)."""
    rng = np.random.default_rng(0)
    inits = [init("w0", rng.standard_normal((24, 16, 7, 7)).astype(np.float32) * 0.05)]
    inits.append(init("w1", rng.standard_normal((10, 24, 1, 1)).astype(np.float32) * 0.3))
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1"], ["c1"]),
        helper.make_node("ReduceMean", ["c1"], ["y"], axes=[2, 3], keepdims=1),
    ]
    return make_model(nodes, [vinfo("x", ["N", 16, 7, 7])], [vinfo("y", None)], inits, opset=17)


@pytest.mark.parametrize("policy", layouts.POLICIES)
def test_a_pool_over_one_by_one_keeps_its_source_layout_on_every_policy(policy):
    """[N, 10, 1, 1] channels-last data is also plain to oneDNN's descriptor equality; a pool given a
    channels-last source and the plain destination that equality suggested ran ref:any."""
    import onnx_ir as ir

    from int8kit.runtime.predictor import prepare_model

    model = _class_map_head()
    graph = prepare_model(ir.serde.deserialize_model(model), ()).graph
    x = np.random.default_rng(1).standard_normal((4, 16, 7, 7)).astype(np.float32)
    prog = compile_graph(graph, {"x": x.shape}, WeightCache(), layout_policy=policy)
    assert not [(label, impl) for label, impl in zip(prog.labels, prog.impls, strict=True) if impl.startswith("ref")]
    assert_close(prog.run({"x": x})["y"], run_ort(model, {"x": x}))


def _sleeper(seconds):
    return lambda: time.sleep(seconds)


def test_choice_takes_a_clearly_faster_policy_and_keeps_the_default_within_the_margin():
    slow, fast = 0.004, 0.002
    choice, times = layouts.choose({layouts.BLOCKED: _sleeper(slow), layouts.CHANNELS_LAST: _sleeper(fast)})
    assert choice == layouts.CHANNELS_LAST and times[layouts.CHANNELS_LAST] < times[layouts.BLOCKED]
    choice, _ = layouts.choose({layouts.BLOCKED: _sleeper(slow), layouts.CHANNELS_LAST: _sleeper(slow * 0.97)})
    assert choice == layouts.BLOCKED


def test_predictor_tunes_once_per_shape_and_reuses_the_choice(monkeypatch):
    monkeypatch.setattr(layouts, "TUNE_ABOVE_S", 0.0)  # the block runs in well under a millisecond
    timed = []
    monkeypatch.setattr(layouts, "choose", lambda runs: timed.append(sorted(runs)) or (layouts.KEEP_ARRIVAL, {}))
    p = Predictor(_ghost_block(), num_threads=1)
    x = np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(np.float32)
    assert_close(p.run(x), run_ort(_ghost_block(), {"x": x}))
    assert timed == [sorted(layouts.POLICIES)] and p.layout_policies == {((1, 3, 16, 16),): layouts.KEEP_ARRIVAL}
    compiles = p.compiles
    p._compile(((1, 3, 16, 16),), {"x": (1, 3, 16, 16)})  # a second program of the shape (another stream)
    assert p.compiles == compiles + 1 and len(timed) == 1  # compiled under the choice, not timed again
    pinned = Predictor(_ghost_block(), num_threads=1, layout_policy=layouts.CHANNELS_LAST)
    assert_close(pinned.run(x), run_ort(_ghost_block(), {"x": x}))
    assert set(pinned.layout_policies.values()) == {layouts.CHANNELS_LAST}


def test_an_unknown_layout_policy_is_refused():
    from int8kit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown layout policy 'nchw'"):
        Predictor(_ghost_block(), layout_policy="nchw")
