"""`int8kit quantize --max-accuracy-drop`: one line per round with an ETA, the verdict, the speed line, exit codes."""

import json
import re

import numpy as np
import onnx
import pytest

from int8kit.cli import main
from int8kit.data.seed_format import write_seed
from int8kit.models import zoo
from int8kit.quantize.keep_fp32 import KEEP_FP32_KEY
from int8kit.runtime.predictor import Predictor


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("budget_cli")
    fp32 = tmp / "fp32.onnx"
    onnx.save(zoo.build("resnet_tiny", seed=3), fp32)
    x = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32)
    labels = Predictor(fp32, num_threads=1).run(x).argmax(1)
    return fp32, write_seed(tmp / "labelled.bin", x, labels)


def _quantize(files, out, drop: str, *extra: str) -> int:
    fp32, data = files
    argv = ["quantize", str(fp32), "--data", str(data), "-o", str(out), "--no-progress", "--num-threads", "1"]
    return main([*argv, "--method", "percentile", "--percentile", "60", "--max-accuracy-drop", drop, *extra])


def _marked(path) -> set[str]:
    return {n.name for n in onnx.load(path).graph.node if any(p.key == KEEP_FP32_KEY for p in n.metadata_props)}


def test_a_missed_budget_exits_1_and_still_writes_the_model(files, tmp_path, capsys):
    out = tmp_path / "q.onnx"
    assert _quantize(files, out, "-100") == 1  # no model is 100 points better than FP32
    captured = capsys.readouterr()
    assert "int8kit quantize: error:" in captured.err and "over the budget of -100.0" in captured.err
    assert out.is_file() and _marked(out)  # the model with the most layers out of INT8
    assert "NOT within the budget" in captured.out


def test_a_met_budget_prints_one_line_per_round_and_the_speed(files, tmp_path, capsys):
    out, record = tmp_path / "q.onnx", tmp_path / "q.json"
    assert _quantize(files, out, "0", "--fallback", "fp32", "--json", str(record)) == 0
    printed = capsys.readouterr().out
    rounds = [line for line in printed.splitlines() if line.startswith("round ")]
    saved = json.loads(record.read_text())["accuracy_budget"]
    assert saved["met"] and len(rounds) == len(saved["rounds"]) >= 2
    for i, (line, r) in enumerate(zip(rounds, saved["rounds"], strict=True)):
        assert line.startswith(f"round {i + 1}: ")
        assert f"{len(r['fallback'])} layer(s) to fp32" in line if r["fallback"] else "all INT8" in line
        assert "/" not in line  # counts, not the growing list of layer names
    assert "ETA <=" in rounds[0] and "ETA" not in rounds[-1]
    assert "within the budget of 0.0 points" in printed
    shortest = min((r for r in saved["rounds"] if r["drop"] <= 0), key=lambda r: len(r["fallback"]))
    assert _marked(out) == set(saved["layers"]["fp32"]) == set(shortest["fallback"])
    speed = re.search(r"speed on one batch of \d+: chosen model [\d,]+ images/s = ([\d.]+)x FP32", printed)
    assert speed and float(speed.group(1)) > 0


def test_the_bf16_layers_it_chose_convert_with_the_printed_command(files, tmp_path, capsys):
    from int8kit.budget.precision import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("no native bf16 kernels on this CPU")
    out = tmp_path / "q.onnx"
    assert _quantize(files, out, "0", "--fallback", "bf16") == 0
    hint = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("convert it as measured:"))
    argv = hint.split(": ", 1)[1].split()[1:]  # drop the program name
    int8 = tmp_path / "int8.onnx"
    assert main([*argv, "-o", str(int8)]) == 0
    names = set(argv[argv.index("--bf16-nodes") + 1].split(","))
    marked = {
        n.name for n in onnx.load(int8).graph.node if any(a.name == "precision" and a.s == b"bf16" for a in n.attribute)
    }
    assert names and names <= marked
