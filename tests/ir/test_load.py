"""load_model / as_ir_model: good files load, every kind of broken file names itself in a ModelError."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import helper
from onnx.external_data_helper import convert_model_to_external_data

from int8kit.errors import ModelError
from int8kit.ir.load import as_ir_model, load_model

from ._util import init, make_model, rng, run_ort, vinfo


def _conv_model() -> onnx.ModelProto:
    r = rng()
    w = r.standard_normal((16, 3, 3, 3)).astype(np.float32)
    b = r.standard_normal(16).astype(np.float32)
    return make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], name="conv")],
        [vinfo("x", [1, 3, 8, 8])],
        [vinfo("y", [1, 16, 8, 8])],
        [init("w", w), init("b", b)],
    )


def _feeds():
    return {"x": rng().standard_normal((1, 3, 8, 8)).astype(np.float32)}


def test_load_good_file_matches_onnx(tmp_path):
    proto = _conv_model()
    path = tmp_path / "m.onnx"
    onnx.save(proto, path)
    model = load_model(path)
    assert [n.op_type for n in model.graph] == ["Conv"]
    np.testing.assert_array_equal(run_ort(model, _feeds())["y"], run_ort(proto, _feeds())["y"])


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nope.onnx"
    with pytest.raises(ModelError, match="nope.onnx"):
        load_model(path)


def test_truncated_file_names_it(tmp_path):
    data = _conv_model().SerializeToString()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"half\.onnx.*(truncated|corrupt)"):
        load_model(path)


@pytest.mark.parametrize("cut", [0.25, 0.75, 0.99])
def test_other_truncations_fail_cleanly(tmp_path, cut):
    data = _conv_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelError, match=r"cut\.onnx"):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"hello, I am a text file\n", bytes(range(256)) * 4])
def test_not_an_onnx_model(tmp_path, content):
    path = tmp_path / "notes.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="notes.onnx"):
        load_model(path)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(ModelError, match=str(tmp_path.name)):
        load_model(tmp_path)


def test_graph_output_without_producer_is_rejected(tmp_path):
    proto = _conv_model()
    proto.graph.output.append(vinfo("ghost", [1]))
    path = tmp_path / "ghost.onnx"
    onnx.save(proto, path)
    with pytest.raises(ModelError, match=r"ghost\.onnx.*'ghost'"):
        load_model(path)


def _save_external(tmp_path) -> tuple[onnx.ModelProto, object]:
    proto = _conv_model()
    reference = onnx.ModelProto()
    reference.CopyFrom(proto)
    convert_model_to_external_data(proto, all_tensors_to_one_file=True, location="weights.data", size_threshold=0)
    path = tmp_path / "ext.onnx"
    onnx.save(proto, path)
    return reference, path


def test_external_data_loads(tmp_path):
    reference, path = _save_external(tmp_path)
    model = load_model(path)
    np.testing.assert_array_equal(
        model.graph.initializers["w"].const_value.numpy(),
        onnx.numpy_helper.to_array(reference.graph.initializer[0]),
    )
    ir.external_data.load_to_model(model)  # onnxruntime reads a model from bytes with weights inline
    np.testing.assert_allclose(run_ort(model, _feeds())["y"], run_ort(reference, _feeds())["y"], rtol=1e-6)


def test_missing_external_data_names_both_files(tmp_path):
    _, path = _save_external(tmp_path)
    (tmp_path / "weights.data").unlink()
    with pytest.raises(ModelError, match=r"ext\.onnx.*weights\.data.*missing"):
        load_model(path)


def test_short_external_data_is_reported(tmp_path):
    _, path = _save_external(tmp_path)
    data_path = tmp_path / "weights.data"
    data_path.write_bytes(data_path.read_bytes()[:10])
    with pytest.raises(ModelError, match=r"weights\.data.*too short"):
        load_model(path)


def test_as_ir_model_accepts_all_forms(tmp_path):
    proto = _conv_model()
    path = tmp_path / "m.onnx"
    onnx.save(proto, path)
    from_proto = as_ir_model(proto)
    from_path = as_ir_model(str(path))
    assert isinstance(from_proto, ir.Model) and isinstance(from_path, ir.Model)
    assert as_ir_model(from_proto) is from_proto
    want = run_ort(proto, _feeds())["y"]
    for model in (from_proto, from_path):
        np.testing.assert_array_equal(run_ort(model, _feeds())["y"], want)
    with pytest.raises(TypeError):
        as_ir_model(42)
