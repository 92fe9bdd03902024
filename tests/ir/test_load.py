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


# -- cycles and external data outside the model's folder (issue 9) --------------------------------
def _cyclic_model() -> onnx.ModelProto:
    """x -> add_in -> relu_a -> relu_b -> relu_c -> relu_a (a -> b -> c -> a) and c -> y."""
    nodes = [
        helper.make_node("Add", ["x", "c"], ["s"], name="add_in"),
        helper.make_node("Relu", ["s"], ["a"], name="relu_a"),
        helper.make_node("Relu", ["a"], ["b"], name="relu_b"),
        helper.make_node("Relu", ["b"], ["c"], name="relu_c"),
        helper.make_node("Identity", ["c"], ["y"], name="out"),
    ]
    return make_model(nodes, [vinfo("x", [1, 4])], [vinfo("y", [1, 4])], [])


def _cli_one_line(capsys, argv: list[str]) -> str:
    from int8kit.cli import main

    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


def test_graph_cycle_names_a_node_on_the_cycle(tmp_path):
    path = tmp_path / "cycle.onnx"
    onnx.save(_cyclic_model(), path)
    with pytest.raises(ModelError) as info:
        load_model(path)
    msg = str(info.value)
    assert str(path) in msg and "cycle" in msg
    on_cycle = {"add_in", "relu_a", "relu_b", "relu_c"}
    named = {n for n in on_cycle if repr(n) in msg}
    assert named == on_cycle  # the whole loop is shown, and nothing off it ('out')
    assert "'out'" not in msg


def test_cli_graph_cycle_is_one_line(tmp_path, capsys):
    path = tmp_path / "cycle.onnx"
    onnx.save(_cyclic_model(), path)
    line = _cli_one_line(capsys, ["convert", "--quant-model-path", str(path), "--int8-model-save-path", "o.onnx"])
    assert "cycle" in line and "'relu_b'" in line


def _model_with_location(model_dir, location: str):
    proto = _conv_model()
    convert_model_to_external_data(proto, all_tensors_to_one_file=True, location="w.data", size_threshold=0)
    for t in proto.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = location
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / "model.onnx"
    path.write_bytes(proto.SerializeToString())  # onnx.save itself refuses such locations (onnx >= 1.17)
    (model_dir / "w.data").write_bytes(b"\0" * 4096)
    return path


@pytest.mark.parametrize("style", ["relative", "absolute"])
def test_external_data_outside_the_model_folder_is_refused_without_stat(tmp_path, monkeypatch, style):
    secret = tmp_path / "elsewhere" / "secret.bin"
    secret.parent.mkdir()
    secret.write_bytes(b"\0" * 4096)  # big enough for the weights: only the location is wrong
    location = "../../elsewhere/secret.bin" if style == "relative" else str(secret)
    path = _model_with_location(tmp_path / "models" / "m", location)
    import os

    touched: list[str] = []
    real_stat, real_lstat = os.stat, os.lstat

    def spy(real):
        def call(p, *a, **kw):
            touched.append(os.fspath(p) if not isinstance(p, int) else "")
            return real(p, *a, **kw)

        return call

    monkeypatch.setattr(os, "stat", spy(real_stat))
    monkeypatch.setattr(os, "lstat", spy(real_lstat))
    with pytest.raises(ModelError) as info:
        load_model(path)
    monkeypatch.undo()
    msg = str(info.value)
    assert str(path) in msg and location in msg and "outside the model's folder" in msg and "'w'" in msg
    assert not [p for p in touched if "secret" in p or "elsewhere" in p], touched


def test_cli_external_data_outside_is_one_line(tmp_path, capsys):
    path = _model_with_location(tmp_path / "m", "../../../../etc/passwd")
    line = _cli_one_line(capsys, ["convert", "--quant-model-path", str(path), "--int8-model-save-path", "o.onnx"])
    assert "../../../../etc/passwd" in line and "outside the model's folder" in line


def test_external_data_in_a_subfolder_still_loads(tmp_path):
    reference = _conv_model()
    weights = onnx.numpy_helper.to_array(reference.graph.initializer[0]).tobytes()
    weights += onnx.numpy_helper.to_array(reference.graph.initializer[1]).tobytes()
    path = _model_with_location(tmp_path / "m", "weights/w.data")
    (tmp_path / "m" / "weights").mkdir()
    (tmp_path / "m" / "weights" / "w.data").write_bytes(weights)
    model = load_model(path)
    np.testing.assert_array_equal(
        model.graph.initializers["w"].const_value.numpy(), onnx.numpy_helper.to_array(reference.graph.initializer[0])
    )
