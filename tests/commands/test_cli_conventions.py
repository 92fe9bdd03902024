"""Issue 12 through `int8kit.cli.main`: reference spellings and paths, one vocabulary, exit codes, progress
and --json output, each checked against an independent reading (the files written, onnxruntime, numpy)."""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest

from int8kit.cli import COMMANDS, build_parser, main
from int8kit.commands import _progress
from int8kit.data.seed_format import write_seed
from int8kit.models import zoo
from int8kit.runtime.predictor import Predictor

# The commands this vocabulary covers (a new command joins by using int8kit.commands._options).
OWN_COMMANDS = ("info", "preprocess", "quantize", "qat", "convert", "optimize", "compare", "test", "report", "demo")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An FP32 net, labelled data (FP32 is right by construction), its QDQ model and INT8 model via the CLI."""
    tmp = tmp_path_factory.mktemp("cli")
    fp32 = tmp / "net.onnx"
    onnx.save(zoo.build("resnet_tiny", seed=3), fp32)
    x = np.random.default_rng(0).standard_normal((24, 3, 32, 32)).astype(np.float32)
    labels = Predictor(fp32, num_threads=1).run(x).argmax(1)
    data = write_seed(tmp / "val.bin", x, labels)
    qdq = tmp / "net_qdq.onnx"
    assert (
        main(["quantize", str(fp32), "--data", str(data), "-o", str(qdq), "--num-samples", "24", "--no-progress"]) == 0
    )
    assert main(["convert", str(qdq), "-o", str(tmp / "int8")]) == 0  # a directory: int8/net_int8.onnx
    return {"fp32": fp32, "data": data, "qdq": qdq, "int8": tmp / "int8" / "net_int8.onnx", "x": x, "labels": labels}


def parse(argv: list[str]) -> argparse.Namespace:
    from int8kit.commands._options import finish_args

    args = build_parser().parse_args(argv)
    finish_args(args)
    return args


# --- 1. the reference's spellings and path conventions -------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["convert", "--quant_model_path=q.onnx", "--int8_model_save_path=out/"], {"model": Path("q.onnx")}),
        (["convert", "--quant_model_path", "q.onnx", "--int8_model_save_path", "o.onnx"], {"output": Path("o.onnx")}),
        (
            ["convert", "q.onnx", "-o", "o.onnx", "--ops_to_quantize=conv,fc"],
            {"ops_to_quantize": ("Conv[!depthwise]", "Gemm|MatMul")},
        ),
        (["convert", "q.onnx", "-o", "o.onnx", "--op_ids_to_skip=3,17"], {"op_ids_to_skip": (3, 17)}),
        (["test", "--infer_model=m.onnx", "--infer_data=v.bin"], {"model": Path("m.onnx"), "data": Path("v.bin")}),
        (["test", "m.onnx", "--data", "v", "--batch_size=7", "--iterations=3"], {"batch_size": 7, "iterations": 3}),
        (
            ["test", "m.onnx", "--data", "v", "--num_threads", "4", "--warmup_iter=0"],
            {"num_threads": 4, "warmup_iter": 0},
        ),
        (["test", "m.onnx", "--data", "v", "--with_accuracy_layer=true"], {"with_accuracy_layer": True}),
        (["test", "m.onnx", "--data", "v", "--with_accuracy_layer=false"], {"with_accuracy_layer": False}),
        (["test", "m.onnx", "--data", "v", "--with-accuracy-layer"], {"with_accuracy_layer": True}),
        (["test", "m.onnx", "--data", "v", "--optimize_fp32_model=false"], {"optimize_fp32_model": False}),
        (["test", "m.onnx", "--data", "v", "--optimize_fp32_model=1"], {"optimize_fp32_model": True}),
        (
            ["preprocess", "--local", "--data_dir=d/", "--label_list=l.txt", "--output_file=o.bin", "--data_dim=32"],
            {"data_dir": Path("d/"), "label_list": Path("l.txt"), "output": Path("o.bin"), "data_dim": 32},
        ),
        (
            ["report", "--pair", "n", "a", "b", "--infer_data", "v", "--batch_size", "3"],
            {"data": Path("v"), "batch_size": 3},
        ),
        (["qat", "m.onnx", "--data", "d", "-o", "o.onnx", "--threads", "3"], {"num_threads": 3}),
    ],
)
def test_reference_spellings_are_aliases(argv, expected):
    args = parse(argv)
    for name, value in expected.items():
        assert getattr(args, name) == value


def test_bad_boolean_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        parse(["test", "m.onnx", "--data", "v", "--with_accuracy_layer=maybe"])
    assert exc.value.code == 2 and "expected true or false, got 'maybe'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(["test", "--with-accuracy-layer", "m.onnx", "--data", "v"])
    assert "got 'm.onnx' (a flag followed by MODEL takes it as its value: put MODEL first)" in capsys.readouterr().err


def test_issue_command_line_runs(files, capsys):
    """The line from the issue that used to fail with 'the following arguments are required'."""
    argv = ["test", "--infer_model", str(files["int8"]), "--infer_data", str(files["data"]), "--num_threads", "1"]
    assert main([*argv, "--batch_size", "8", "--no-progress"]) == 0
    assert "top-1 accuracy (%)" in capsys.readouterr().out


def test_convert_into_a_directory_names_the_file_after_the_model(files, tmp_path):
    qdq = files["qdq"]
    assert files["int8"].is_file()  # the fixture's `convert net_qdq.onnx -o DIR` wrote DIR/net_int8.onnx
    explicit = tmp_path / "explicit.onnx"
    assert main(["convert", "--quant-model-path", str(qdq), "--int8-model-save-path", str(explicit)]) == 0
    # The directory form writes exactly what the explicit name does.
    assert onnx.load(files["int8"]).graph == onnx.load(explicit).graph
    # A name without .onnx that does not exist yet is a directory to create (the reference's save path).
    assert main(["convert", f"--quant_model_path={qdq}", f"--int8_model_save_path={tmp_path / 'new_dir'}"]) == 0
    assert (tmp_path / "new_dir" / "net_int8.onnx").is_file()


def test_convert_leaves_no_partial_file(files, tmp_path):
    out = tmp_path / "m.onnx"
    assert main(["convert", str(files["qdq"]), "-o", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_test_prints_a_nan_warning(files, tmp_path, capsys):
    x = files["x"][:6].copy()
    x[2, 0, 0, 0] = np.nan
    data = write_seed(tmp_path / "nan.bin", x, files["labels"][:6])
    assert main(["test", str(files["int8"]), "--data", str(data), "--no-progress", "--batch-size", "4"]) == 0
    assert "warning: 1 image(s) hold NaN or inf values" in capsys.readouterr().out


def test_convert_output_that_is_a_file_without_onnx_suffix_is_refused(files, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    assert main(["convert", str(files["qdq"]), "-o", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "taken: exists and is not a directory" in err


def test_model_directory_means_its_one_onnx_file(files, tmp_path, capsys):
    argv = ["test", str(files["int8"].parent), "--data", str(files["data"]), "--no-progress", "--batch-size", "8"]
    assert main(argv) == 0
    assert f"--- {files['int8']} on" in capsys.readouterr().out
    (files["int8"].parent.parent / "two").mkdir(exist_ok=True)
    for name in ("a.onnx", "b.onnx"):
        (files["int8"].parent.parent / "two" / name).write_bytes(files["int8"].read_bytes())
    assert main(["test", str(files["int8"].parent.parent / "two"), "--data", str(files["data"])]) == 2
    assert "2 .onnx files (a.onnx, b.onnx)" in capsys.readouterr().err


def _images(folder: Path, names: list[str]) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / name)


def test_label_list_is_found_in_data_dir(tmp_path, monkeypatch, capsys):
    from int8kit.data.open_data import open_dataset

    data_dir = tmp_path / "imagenet_user"
    _images(data_dir, [f"val/{i}.png" for i in range(4)])
    (data_dir / "my_list.txt").write_text("".join(f"val/{i}.png {i}\n" for i in range(4)))
    monkeypatch.chdir(tmp_path)
    argv = ["preprocess", "--data-dir", "imagenet_user", "--label-list", "my_list.txt", "--data-dim", "16"]
    assert main([*argv, "--resize-size", "16", "-o", "a.bin", "--workers", "1"]) == 0
    assert np.asarray(open_dataset(tmp_path / "a.bin").labels).tolist() == [0, 1, 2, 3]
    # A list that exists as given (relative to the working directory) wins over DATA_DIR's.
    (tmp_path / "my_list.txt").write_text("val/2.png 2\n")
    assert main([*argv, "--resize-size", "16", "-o", "b.bin", "--workers", "1"]) == 0
    assert np.asarray(open_dataset(tmp_path / "b.bin").labels).tolist() == [2]
    # Neither: the error names the path the user gave.
    assert main([*argv[:3], "--label-list", "nope.txt", "-o", "c.bin", "--workers", "1"]) == 2
    assert "nope.txt" in capsys.readouterr().err and not (tmp_path / "c.bin").exists()


# --- 2. one vocabulary, -v anywhere, --version, descriptions and defaults -------------------------------

CANONICAL = {
    "--num-threads": ("--threads",),
    "--data": ("--calib-data", "--infer-data"),
    "--output": ("--output-file", "--int8-model-save-path", "--workdir", "--output-dir"),
    "--model": ("--quant-model-path", "--infer-model"),
}


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_same_name_for_the_same_thing_in_every_command():
    for name, p in subparsers().items():
        if name not in OWN_COMMANDS:
            continue
        options = {s for a in p._actions for s in a.option_strings}
        for canonical, others in CANONICAL.items():
            if options & set(others):
                assert canonical in options, f"int8kit {name} spells {canonical} differently"
        if "--output" in options:
            assert "-o" in options
        for option in options:  # every kebab-case long option has its snake_case twin
            if option.startswith("--") and "-" in option[2:]:
                assert "--" + option[2:].replace("-", "_") in options, option


def test_every_subcommand_has_a_description_and_every_flag_its_default():
    for name, p in subparsers().items():
        assert p.description and len(p.description) > 20, name
        formatter = p._get_formatter()
        for action in p._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction | argparse._CountAction):
                continue
            text = formatter._expand_help(action)
            assert "default" in text or "required" in text, f"int8kit {name} {action.option_strings[0]}: {text!r}"
    assert set(COMMANDS) >= set(OWN_COMMANDS)


def test_verbose_before_and_after_the_subcommand():
    args = parse(["-v", "test", "m.onnx", "--data", "d", "-v"])
    assert args.verbose + args.verbose_sub == 2
    root = logging.getLogger()
    level = root.level
    try:
        assert main(["info", "-vv"]) == 0
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(level)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"int8kit {importlib.metadata.version('int8kit')}"


def test_model_is_required_once(capsys):
    with pytest.raises(SystemExit):
        parse(["test", "--data", "d"])
    assert "the model is required: give it as MODEL or --model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(["test", "a.onnx", "--model", "b.onnx", "--data", "d"])
    assert "the model is given twice" in capsys.readouterr().err


def test_ops_to_quantize_help_says_what_each_command_takes():
    helps = {
        name: next(a.help for a in p._actions if "--ops-to-quantize" in a.option_strings)
        for name, p in subparsers().items()
        if name in ("quantize", "convert")
    }
    assert "ONNX op types" in helps["quantize"] and "ONNX op types" in helps["convert"]
    assert "Conv," in helps["convert"] and "Conv," in helps["quantize"]


# --- 3. exit codes ---------------------------------------------------------------------------------------


def test_missed_accuracy_budget_exits_1_and_prints_one_line_per_round(files, tmp_path, capsys):
    out = tmp_path / "q.onnx"
    argv = ["quantize", str(files["fp32"]), "--data", str(files["data"]), "-o", str(out), "--no-progress"]
    # No INT8 model can be 100 points better than FP32: the budget cannot be met.
    assert main([*argv, "--max-accuracy-drop", "-100", "--num-threads", "1", "--num-samples", "24"]) == 1
    captured = capsys.readouterr()
    assert out.is_file()  # the best model found is still written
    assert "int8kit quantize: error:" in captured.err and "over the budget of -100.0" in captured.err
    rounds = [line for line in captured.out.splitlines() if line.startswith("round ")]
    assert len(rounds) >= 2  # full INT8, then everything out of INT8 (still over): the search ends there
    for i, line in enumerate(rounds):
        assert line.startswith(f"round {i + 1}: ") and "/" not in line  # counts, not the growing list of names
    assert "ETA <=" in rounds[0]
    marked = [n.name for n in onnx.load(out).graph.node if any(p.key == "int8kit.keep_fp32" for p in n.metadata_props)]
    assert marked and f"{len(marked)} layer(s) out of INT8" in captured.err


def test_met_accuracy_budget_exits_0(files, tmp_path, capsys):
    argv = ["quantize", str(files["fp32"]), "--data", str(files["data"]), "-o", str(tmp_path / "q.onnx")]
    assert main([*argv, "--max-accuracy-drop", "100", "--no-progress", "--num-threads", "1"]) == 0
    assert "within the budget" in capsys.readouterr().out


def test_convert_of_a_model_without_qdq_exits_2(files, tmp_path, capsys):
    out = tmp_path / "o.onnx"
    assert main(["convert", str(files["fp32"]), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("int8kit convert: error:") and err.count("\n") == 1 and not out.exists()


def test_qdq_model_given_to_test_explains_itself(files, capsys):
    argv = ["test", str(files["qdq"]), "--data", str(files["data"]), "--no-progress", "--batch-size", "8"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "this is a fake-quant (QDQ) model" in err
    assert "int8kit convert" in err and "--backend onnxruntime" in err
    assert main([*argv, "--backend", "onnxruntime"]) == 0  # the way out it names works


# --- 4. progress -----------------------------------------------------------------------------------------


def test_progress_lines_when_not_a_terminal(files, monkeypatch, capsys):
    monkeypatch.setattr(_progress, "INTERVAL", 0.0)
    argv = ["test", str(files["int8"]), "--data", str(files["data"]), "--batch-size", "5", "--warmup-iter", "0"]
    assert main(argv) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("testing net_int8.onnx: ")]
    assert [ln.split(": ")[1].split(" ")[0] for ln in lines] == [f"{i}/5" for i in range(1, 6)]  # ceil(24/5)
    assert "ETA" in lines[0] and lines[-1].endswith("done")


def test_progress_is_quiet_between_intervals(files, monkeypatch, capsys):
    monkeypatch.setattr(_progress, "INTERVAL", 3600.0)
    assert main(["test", str(files["int8"]), "--data", str(files["data"]), "--batch-size", "5"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("testing ")]
    assert len(lines) == 1 and lines[0].startswith("testing net_int8.onnx: 5/5 batches (100%)")


def test_progress_bar_on_a_terminal(files, monkeypatch):
    import rich.progress

    seen = []
    original = rich.progress.Progress.update
    monkeypatch.setattr(_progress, "_is_terminal", lambda: True)

    def update(self, task, **kwargs):
        seen.append((kwargs.get("completed"), kwargs.get("total")))
        return original(self, task, **kwargs)

    monkeypatch.setattr(rich.progress.Progress, "update", update)
    assert main(["test", str(files["int8"]), "--data", str(files["data"]), "--batch-size", "8"]) == 0
    assert seen[-1] == (3, 3)


def test_report_and_compare_show_progress(files, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(_progress, "INTERVAL", 0.0)
    pair = ["--pair", "net", str(files["fp32"]), str(files["int8"])]
    assert main(["report", *pair, "--data", str(files["data"]), "--batch-size", "12"]) == 0
    captured = capsys.readouterr()
    assert "[1/2] testing net FP32" in captured.out and "[2/2] testing net INT8" in captured.out
    assert "net FP32: 2/2 batches" in captured.err and "net INT8: 2/2 batches" in captured.err
    js = tmp_path / "c.json"
    argv = ["compare", str(files["fp32"]), str(files["int8"]), "--data", str(files["data"]), "--num-samples", "16"]
    assert main([*argv, "--batch-size", "8", "--json", str(js)]) == 0
    assert "comparing net_int8.onnx: 2/2 batches (100%)" in capsys.readouterr().err


# --- 5. machine-readable output --------------------------------------------------------------------------


def test_test_json_names_model_hash_version_and_isa(files, tmp_path):
    from int8kit.runtime import dnnl

    js = tmp_path / "t.json"
    argv = ["test", str(files["int8"]), "--data", str(files["data"]), "--batch-size", "10", "--json", str(js)]
    assert main([*argv, "--no-progress"]) == 0
    record = json.loads(js.read_text())
    assert record["model_sha256"] == hashlib.sha256(files["int8"].read_bytes()).hexdigest()
    env = record["environment"]
    assert env["int8kit"] == importlib.metadata.version("int8kit")
    assert env["onednn_isa"] == dnnl.effective_isa() and env["onednn_version"] == dnnl.library().version_string
    flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")).split()
    assert ("avx512" in env["onednn_isa"]) == ("avx512f" in flags)
    # Percent: the labels are FP32's own answers, so INT8 top-1 is the agreement with FP32, in percent.
    int8_top1 = 100 * np.mean(Predictor(files["int8"], num_threads=1).run(files["x"]).argmax(1) == files["labels"])
    assert record["top1"] == pytest.approx(int8_top1)
    assert record["images"] == record["timed_images"] == 24
    assert record["units"]["top1"] == "percent"


def test_compare_json_matches_a_numpy_sqnr(files, tmp_path):
    js = tmp_path / "c.json"
    argv = ["compare", str(files["fp32"]), str(files["int8"]), "--data", str(files["data"]), "--num-samples", "8"]
    assert main([*argv, "--json", str(js), "--no-progress"]) == 0
    record = json.loads(js.read_text())
    assert record["images"] == 8 and len(record["layers"]) >= 3
    sqnrs = [layer["sqnr_db"] for layer in record["layers"]]
    assert sqnrs == sorted(sqnrs)  # worst first, as printed
    # The last layer's output is the model output: its SQNR is computable from the two models' outputs.
    x = files["x"][:8]
    ref = Predictor(files["fp32"], num_threads=1).run(x).astype(np.float64)
    got = Predictor(files["int8"], num_threads=1).run(x).astype(np.float64)
    expected = 10 * np.log10(np.sum(ref**2) / np.sum((ref - got) ** 2))
    assert any(abs(s - expected) < 1e-3 for s in sqnrs)


def test_convert_json_counts_what_the_written_model_holds(files, tmp_path):
    js, out = tmp_path / "s.json", tmp_path / "m.onnx"
    assert main(["convert", str(files["qdq"]), "-o", str(out), "--json", str(js)]) == 0
    record = json.loads(js.read_text())
    model = onnx.load(out)
    ops = {row["op_type"]: row for row in record["ops"]}
    assert sum(row["int8"] + row["fp32"] for name, row in ops.items() if name in ("Conv", "Dense")) == sum(
        n.domain == "int8kit" and n.op_type in ("Conv", "Dense") for n in model.graph.node
    )
    for op, count in record["conversions"].items():
        assert count == sum(n.op_type == op for n in model.graph.node)
    assert record["int8_model"] == str(out) and record["int8_compute_ops"] > 0


def test_quantize_json_is_the_calibration_table_of_the_written_model(files, tmp_path):
    js, out = tmp_path / "q.json", tmp_path / "q.onnx"
    argv = ["quantize", str(files["fp32"]), "--data", str(files["data"]), "-o", str(out), "--num-samples", "12"]
    assert main([*argv, "--json", str(js), "--no-progress"]) == 0
    record = json.loads(js.read_text())
    model = onnx.load(out)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    scales = {n.input[0]: float(inits[n.input[1]]) for n in model.graph.node if n.op_type == "QuantizeLinear"}
    tensors = {t["name"]: t for t in record["tensors"]}
    assert tensors and set(tensors) <= set(scales)
    for name, t in tensors.items():
        assert t["scale"] == pytest.approx(scales[name], rel=1e-6) and t["min"] <= t["max"]
    assert record["num_samples"] == 12 and record["method"] == "minmax"


def test_info_json(tmp_path):
    from int8kit.runtime import dnnl

    js = tmp_path / "i.json"
    assert main(["info", "--json", str(js)]) == 0
    record = json.loads(js.read_text())
    flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")).split()
    assert ("avx512_vnni" in record["isa_flags"]) == ("avx512_vnni" in flags)
    assert ("amx_int8" in record["isa_flags"]) == ("amx_int8" in flags)
    assert record["onednn_version"] == dnnl.library().version_string and Path(record["onednn_library"]).is_file()
