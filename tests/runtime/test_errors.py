"""Bad input to the Predictor: one int8kit.errors exception whose message names what is at fault."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import helper

from int8kit.errors import InputError, Int8kitError, ModelError, UnsupportedOpError
from int8kit.models import zoo

from ._util import init, make_model, vinfo


def predictor(model, **kw):
    from int8kit.runtime.predictor import Predictor

    return Predictor(model, num_threads=1, **kw)


def assert_one_line(exc: Exception) -> None:
    assert isinstance(exc, Int8kitError)
    assert "\n" not in str(exc).strip(), f"not one line: {exc}"


@pytest.fixture(scope="module")
def tiny_model():
    return zoo.build("resnet_tiny")


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.9])
def test_truncated_file_names_the_file(tmp_path, tiny_model, fraction):
    data = tiny_model.SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelError) as info:
        predictor(path)
    assert str(path) in str(info.value)
    assert_one_line(info.value)


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "absent.onnx"
    with pytest.raises(ModelError, match=re.escape(str(path))):
        predictor(path)


def test_valid_file_loads(tmp_path, tiny_model):
    """The control for the truncation test: the whole file runs."""
    path = tmp_path / "whole.onnx"
    onnx.save(tiny_model, path)
    x = np.zeros((1, 3, 32, 32), np.float32)
    assert predictor(path).run(x).shape == (1, 10)


def _einsum_model():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="first_relu"),
        helper.make_node("Einsum", ["r", "w"], ["y"], name="mix_channels", equation="nc,cd->nd"),
    ]
    return make_model(nodes, [vinfo("x", [1, 4])], [vinfo("y", None)], [init("w", np.ones((4, 3), np.float32))])


def _nms_model():
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["y"], name="nms_0")
    inputs = [vinfo("boxes", [1, 5, 4]), vinfo("scores", [1, 1, 5])]
    return make_model([node], inputs, [vinfo("y", None, onnx.TensorProto.INT64)])


@pytest.mark.parametrize(
    "build, op, node",
    [(_einsum_model, "Einsum", "mix_channels"), (_nms_model, "NonMaxSuppression", "nms_0")],
    ids=["Einsum", "NonMaxSuppression"],
)
def test_unsupported_op_names_op_and_node(build, op, node):
    with pytest.raises(UnsupportedOpError) as info:
        predictor(build())
    message = str(info.value)
    assert op in message and node in message, message
    assert "first_relu" not in message  # only the offending node
    assert_one_line(info.value)


@pytest.mark.parametrize(
    "shape",
    [(1, 3, 28, 28), (2, 4, 32, 32), (3, 32, 32), (1, 3, 32, 32, 1)],
    ids=["spatial", "channels", "rank3", "rank5"],
)
def test_wrong_input_shape_names_input_and_both_shapes(tiny_model, shape):
    pred = predictor(tiny_model)
    with pytest.raises(InputError) as info:
        pred.run(np.zeros(shape, np.float32))
    message = str(info.value)
    assert zoo.INPUT in message
    expected = re.search(r"expected shape \[([^\]]*)\]", message)
    assert expected, message
    assert re.split(r"[x, ]+", expected.group(1).strip())[1:] == ["3", "32", "32"], message
    got = message[expected.end() :]
    assert all(str(d) in got for d in shape), message
    assert_one_line(info.value)


def test_wrong_input_name(tiny_model):
    pred = predictor(tiny_model)
    with pytest.raises(InputError, match="image") as info:
        pred.run_dict({"image": np.zeros((1, 3, 32, 32), np.float32)})
    assert zoo.INPUT in str(info.value)


def test_non_numeric_input(tiny_model):
    with pytest.raises(InputError, match=zoo.INPUT):
        predictor(tiny_model).run(np.full((1, 3, 32, 32), "a"))


def test_unknown_extra_output(tiny_model):
    with pytest.raises(InputError, match="no_such_tensor"):
        predictor(tiny_model, extra_outputs=["no_such_tensor"])
