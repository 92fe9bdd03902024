"""README.md runs as written: its Python snippet, the reference workflow's command lines, every command line.

The code is read out of README.md itself, so a README edit that breaks a line breaks this test.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from int8kit.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
CLASSES = 5


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def command_lines(block: str) -> list[list[str]]:
    """The `int8kit ...` commands of a bash block, continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip().startswith("int8kit ")]


def reference_block() -> str:
    marker = "<!-- reference-command-lines -->\n```bash\n"
    start = README.index(marker) + len(marker)
    return README[start : README.index("```", start)]


def test_python_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    import onnxruntime as ort

    (snippet,) = [b for b in fenced_blocks("python") if "int8kit.Predictor" in b]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(REPO / "examples")  # "from the repository root", without writing there
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert "INT8 agrees with FP32 on" in capsys.readouterr().out
    assert (tmp_path / "model_int8.onnx").is_file()
    images, logits = namespace["images"], namespace["logits"]
    assert logits.shape == (8, 10)
    # Independent reference: onnxruntime runs the snippet's QDQ model as it is (fake-quant in float).
    qdq = ort.InferenceSession(namespace["qdq"].SerializeToString(), providers=["CPUExecutionProvider"])
    expected = qdq.run(None, {qdq.get_inputs()[0].name: images})[0]
    cosine = float(np.sum(expected * logits) / (np.linalg.norm(expected) * np.linalg.norm(logits)))
    assert cosine > 0.98


def tiny_imagenet_model(path: Path) -> Path:
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm on 3x224x224, the reference's input."""
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "cw"),
        numpy_helper.from_array(rng.normal(size=(8,)).astype(np.float32), "cb"),
        numpy_helper.from_array(rng.normal(size=(8, CLASSES)).astype(np.float32), "gw"),
        numpy_helper.from_array(rng.normal(size=(CLASSES,)).astype(np.float32), "gb"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], name="conv", strides=[4, 4], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "gw", "gb"], ["scores"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", CLASSES])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def user_dataset(root: Path, count: int = 6) -> list[int]:
    """The reference's layout: imagenet_user/val/*.jpg plus imagenet_user/val_list.txt."""
    rng = np.random.default_rng(4)
    (root / "val").mkdir(parents=True)
    labels, lines = [], []
    for i in range(count):
        name = f"val/ILSVRC2012_val_{i + 1:08d}.jpg"
        size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / name)
        labels.append(int(rng.integers(0, CLASSES)))
        lines.append(f"{name} {labels[-1]}\n")
    (root / "val_list.txt").write_text("".join(lines))
    return labels


def test_reference_command_lines_run_verbatim(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny_imagenet_model(tmp_path / "model.onnx")
    labels = user_dataset(tmp_path / "imagenet_user")
    commands = command_lines(reference_block())
    assert [c[1] for c in commands] == ["preprocess", "preprocess", "quantize", "convert", "test", "test"]
    assert any("--int8_model_save_path=int8_model/" in c for c in commands[3])
    for argv in commands:
        assert main(argv[1:]) == 0, shlex.join(argv)
    out = capsys.readouterr().out
    # The directory convention: convert wrote int8_model/model_int8.onnx, test found it in the directory.
    assert (tmp_path / "int8_model" / "model_int8.onnx").is_file()
    assert f"--- {Path('int8_model') / 'model_int8.onnx'} on val.bin (int8kit) ---" in out
    from int8kit.data.open_data import open_dataset

    data = open_dataset(tmp_path / "val.bin")
    assert len(data) == len(labels) and data.image_shape == (3, 224, 224)
    np.testing.assert_array_equal(np.asarray(data.labels), labels)


def test_every_readme_command_line_parses():
    """Each `int8kit ...` line of the README (but placeholders in [brackets]) is accepted by the parser."""
    parser = build_parser()
    lines = [argv for block in fenced_blocks("bash") for argv in command_lines(block)]
    assert len(lines) >= 10
    for argv in lines:
        if any(a.startswith("[") for a in argv):
            argv = [a for a in argv if not (a.startswith("[") or a.endswith("]"))]
        args = parser.parse_args(argv[1:])
        assert args.command == argv[1]
