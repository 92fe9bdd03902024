"""The zoo models are valid ONNX, run in onnxruntime, and match the architectures they are named after."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from int8kit.errors import ConfigError
from int8kit.models import zoo

TINY = ["resnet_tiny", "mobilenetv2_tiny", "hardswish_se_tiny", "concat_tiny"]
FULL = ["resnet50", "mobilenet_v2"]

# torchvision's published parameter counts (sum of p.numel() for p in model.parameters())
TORCHVISION_PARAMS = {"resnet50": 25_557_032, "mobilenet_v2": 3_504_872}
CONV_COUNT = {"resnet50": 53, "mobilenet_v2": 52}


@pytest.fixture(scope="module", params=TINY + FULL)
def built(request) -> tuple[str, onnx.ModelProto]:
    return request.param, zoo.build(request.param)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _trainable_params(model: onnx.ModelProto) -> int:
    """Initializer elements minus BN running statistics (torch buffers) and Clip bounds (constants)."""
    stats = {n.input[i] for n in model.graph.node if n.op_type == "BatchNormalization" for i in (3, 4)}
    stats |= {n.input[i] for n in model.graph.node if n.op_type == "Clip" for i in (1, 2)}
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.name not in stats)


def test_valid_onnx_with_the_agreed_interface(built):
    name, model = built
    onnx.checker.check_model(model, full_check=True)
    assert [o.domain for o in model.opset_import] == [""] and model.opset_import[0].version == 17
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "input" and dims[0].dim_param == "N" and dims[1].dim_value == 3
    assert [o.name for o in model.graph.output] == ["logits"]


def test_runs_in_onnxruntime_at_batch_1_and_3(built):
    name, model = built
    sess = _session(model)
    size = model.graph.input[0].type.tensor_type.shape.dim[2].dim_value
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, size, size)).astype(np.float32)
    (y3,) = sess.run(None, {"input": x})
    (y1,) = sess.run(None, {"input": x[:1]})
    classes = 1000 if name in FULL else 10
    assert y3.shape == (3, classes) and y1.shape == (1, classes)
    assert np.isfinite(y3).all()
    np.testing.assert_allclose(y1, y3[:1], rtol=1e-4, atol=1e-4)  # batch-independent
    # activations stay O(1): logits neither explode nor collapse to one value
    assert np.abs(y3).max() < 1e3
    assert (y3.std(axis=1) > 1e-2 * (1 if name != "hardswish_se_tiny" else 0.1)).all()


def test_every_bn_has_nontrivial_statistics_and_follows_a_conv(built):
    name, model = built
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers = Counter(i for n in model.graph.node for i in n.input)
    bns = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    assert bns
    for bn in bns:
        gamma, beta, mean, var = (inits[bn.input[i]] for i in range(1, 5))
        assert np.abs(mean).max() > 0.01 and np.abs(var - 1).max() > 0.05 and np.abs(gamma - 1).max() > 0.05
        assert (var > 0).all()
        assert producer[bn.input[0]].op_type == "Conv"
    for conv in (n for n in model.graph.node if n.op_type == "Conv"):
        (out,) = conv.output
        users = [n for n in model.graph.node if out in n.input]
        if len(conv.input) == 3:  # squeeze-excite convs: a bias, no BN (MobileNetV3)
            assert name == "hardswish_se_tiny"
            continue
        assert consumers[out] == 1 and users[0].op_type == "BatchNormalization"


@pytest.mark.parametrize("name", FULL)
def test_full_models_match_torchvision_sizes(name):
    model = zoo.build(name)
    assert Counter(n.op_type for n in model.graph.node)["Conv"] == CONV_COUNT[name]
    params = _trainable_params(model)
    assert params == TORCHVISION_PARAMS[name]


def _ops(model):
    return Counter(n.op_type for n in model.graph.node)


def _attr(node, key):
    return next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == key), None)


def test_tiny_models_hold_the_ops_they_exist_to_exercise():
    r = _ops(zoo.resnet_tiny())
    assert r["Add"] == 3 and r["MaxPool"] == 1 and r["GlobalAveragePool"] == 1 and r["Gemm"] == 1
    strided_1x1 = [
        n
        for n in zoo.resnet_tiny().graph.node
        if n.op_type == "Conv" and _attr(n, "kernel_shape") == [1, 1] and _attr(n, "strides") == [2, 2]
    ]
    assert len(strided_1x1) == 1

    mnv2 = zoo.mobilenetv2_tiny()
    m = _ops(mnv2)
    assert m["Pad"] >= 1 and m["Clip"] > 0 and m["Reshape"] == 1 and m["Gemm"] == 1 and m["Add"] >= 1
    depthwise = [n for n in mnv2.graph.node if n.op_type == "Conv" and (_attr(n, "group") or 1) > 1]
    assert depthwise
    producer = {o: n for n in mnv2.graph.node for o in n.output}
    pad_then_strided = [
        n
        for n in mnv2.graph.node
        if n.op_type == "Conv" and n.input[0] in producer and producer[n.input[0]].op_type == "Pad"
    ]
    assert any(_attr(n, "strides") == [2, 2] for n in pad_then_strided)

    h = _ops(zoo.hardswish_se_tiny())
    for op in ("HardSwish", "HardSigmoid", "Mul", "AveragePool", "MatMul", "Softmax"):
        assert h[op] >= 1, op

    cat = zoo.concat_tiny()
    c = _ops(cat)
    assert c["Concat"] == 1 and c["Transpose"] == 2 and c["Sigmoid"] >= 1 and c["Gemm"] == 1
    assert any(_attr(n, "dilations") == [2, 2] for n in cat.graph.node if n.op_type == "Conv")


def test_seed_makes_weights_reproducible():
    a, b, c = zoo.resnet_tiny(seed=1), zoo.resnet_tiny(seed=1), zoo.resnet_tiny(seed=2)
    wa, wb, wc = (numpy_helper.to_array(m.graph.initializer[0]) for m in (a, b, c))
    np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(wa, wc)


def test_size_and_classes_are_honoured():
    model = zoo.build("mobilenetv2_tiny", size=48, classes=7)
    (y,) = _session(model).run(None, {"input": np.zeros((2, 3, 48, 48), np.float32)})
    assert y.shape == (2, 7)


def test_unknown_name_and_save(tmp_path):
    with pytest.raises(ConfigError, match="nope"):
        zoo.build("nope")
    path = zoo.save("concat_tiny", tmp_path / "m" / "c.onnx")
    assert onnx.load(str(path)).graph.name == "concat_tiny"
    assert set(zoo.ZOO) == set(TINY + FULL)
