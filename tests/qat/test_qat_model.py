"""prepare -> train -> export on a tiny net: onnxruntime, the torch fake-quant model and int8kit INT8 agree."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

torch = pytest.importorskip("torch")

from int8kit.errors import UnsupportedOpError  # noqa: E402
from int8kit.qat.api import prepare_from_images, quant_aware_train  # noqa: E402
from int8kit.qat.fake_quant import fake_quantize_weight  # noqa: E402
from int8kit.qat.train import QatConfig, accuracy  # noqa: E402
from int8kit.quantize import QuantizeConfig, quantize_with_report  # noqa: E402

from ._nets import build_net, make_images  # noqa: E402


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString()).run(None, {"input": x})[0]


@pytest.fixture(scope="module")
def trained():
    images, labels = make_images(256)
    config = QatConfig(steps=8, batch_size=32, lr=1e-3, calib_samples=64, threads=2)
    return quant_aware_train(build_net(), images, labels, config), images


def test_fp32_module_matches_onnxruntime():
    images, _ = make_images(16, seed=5)
    qat = prepare_from_images(build_net(), images, QatConfig(calib_samples=16))
    qat.module.quantize = False
    with torch.no_grad():
        got = qat.module(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(got, _ort(build_net(), images), rtol=1e-4, atol=1e-5)


def test_qdq_model_matches_fake_quant_module(trained):
    result, _ = trained
    x, _ = make_images(32, seed=7)
    with torch.no_grad():
        fq = result.qat.module(torch.from_numpy(x)).numpy()
    qdq = _ort(ir.to_proto(result.model), x)
    assert _cosine(fq, qdq) >= 0.999
    assert (fq.argmax(1) == qdq.argmax(1)).mean() >= 0.9


def test_qdq_pairs_sit_where_ptq_puts_them(trained):
    result, images = trained
    ptq = quantize_with_report(
        build_net(), images[:64], QuantizeConfig(num_samples=64, backend="onnxruntime")
    ).to_proto()

    def pairs(model):
        inits = {t.name for t in model.graph.initializer}
        quant = {n.input[0]: n for n in model.graph.node if n.op_type == "QuantizeLinear"}
        zp_types = {t.name: t.data_type for t in model.graph.initializer}
        return {t: zp_types[n.input[2]] for t, n in quant.items() if t not in inits}

    assert pairs(ir.to_proto(result.model)) == pairs(ptq)

    def int8_weights(model):
        return sorted(n.input[0] for n in model.graph.node if n.input[0].endswith("_quantized"))

    # Biases stay float, so untying conv1/conv2's shared bias changes no int8 weight.
    assert int8_weights(ir.to_proto(result.model)) == int8_weights(ptq)


def test_exported_int8_weights_are_what_training_saw(trained):
    result, _ = trained
    module = result.qat.module
    inits = {t.name: numpy_helper.to_array(t) for t in ir.to_proto(result.model).graph.initializer}
    checked = 0
    for node_name, _, spec in result.qat.plan.weight_uses:
        param = module.params[module.param_index[spec.name]]
        seen = fake_quantize_weight(param.detach(), spec.axis).numpy()
        q, s = inits[f"{spec.name}_quantized"], inits[f"{spec.name}_scale"]
        shape = [1] * q.ndim
        shape[spec.axis] = -1
        np.testing.assert_array_equal(q.astype(np.float32) * s.reshape(shape), seen, err_msg=node_name)
        checked += 1
    assert checked == 4


def test_training_moves_weights_and_untied_biases_differ(trained):
    result, _ = trained
    before = {t.name: numpy_helper.to_array(t) for t in build_net().graph.initializer}
    after = result.qat.module.weights()
    assert not np.allclose(after["c1.w"], before["c1.w"])
    biases = [n.inputs[2].name for n in result.qat.fp32.graph if n.name in ("conv1", "conv2")]
    assert len(set(biases)) == 2
    assert not np.array_equal(after[biases[0]], after[biases[1]])


def test_int8kit_convert_and_predictor_agree_with_onnxruntime(trained, tmp_path):
    from int8kit.convert.pipeline import convert
    from int8kit.ir.save import save_model
    from int8kit.runtime.predictor import Predictor

    result, _ = trained
    converted = convert(ir.to_proto(result.model))
    assert sum(converted.summary.int8_ops.values()) >= 4
    path = tmp_path / "int8.onnx"
    save_model(converted.model, path)
    x, _ = make_images(32, seed=9)
    got = Predictor(path, num_threads=2).run(x)
    assert _cosine(got, _ort(ir.to_proto(result.model), x)) >= 0.999


def test_fine_tuning_lowers_the_loss_under_fake_quant():
    images, labels = make_images(256, seed=3)
    config = QatConfig(steps=40, batch_size=64, lr=3e-3, scale_lr=1e-2, calib_samples=64, seed=1)
    qat = prepare_from_images(build_net(), images, config)
    before = accuracy(qat.module, images, labels)
    result = quant_aware_train(qat, images, labels, config)
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    assert accuracy(qat.module, images, labels) > before


def test_unsupported_op_names_the_node():
    model = build_net()
    relu = next(n for n in model.graph.node if n.name == "relu0")
    relu.op_type = "LRN"
    relu.attribute.extend([helper.make_attribute("size", 3)])
    images, _ = make_images(8)
    with pytest.raises(UnsupportedOpError, match="relu0"):
        prepare_from_images(model, images, QatConfig(calib_samples=8))
