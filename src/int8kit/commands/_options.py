"""Options and path conventions shared by the subcommands, so one thing has one name everywhere.

The model is `MODEL` or `--model` (the reference's `--quant-model-path`, `--infer-model` are aliases), the
output is `-o/--output`, the data `--data`, threads `--num-threads`. A model given as a directory means the
one `.onnx` file inside it (the reference tools pass model directories); `convert -o DIR` writes
`DIR/<model>_int8.onnx`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from int8kit.errors import ConfigError, ModelError

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def boolean(text: str) -> bool:
    """gflags-style values, so the reference's `--with_accuracy_layer=false` means what it says."""
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    hint = " (a flag followed by MODEL takes it as its value: put MODEL first)" if "." in text or "/" in text else ""
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}{hint}")


def add_bool_flag(p: argparse.ArgumentParser, *names: str, help: str) -> None:
    """`--flag` alone is true; `--flag=false` / `--flag true` as the reference's run.sh writes them."""
    p.add_argument(*names, type=boolean, nargs="?", const=True, default=False, metavar="true|false", help=help)


def add_model(p: argparse.ArgumentParser, help: str, *aliases: str) -> None:
    """The model as a positional MODEL or as --model (plus the reference's name for it)."""
    p.add_argument("model_positional", nargs="?", type=Path, metavar="MODEL", help=f"{help} (or --model)")
    said = f", {', '.join(aliases)} as the reference spells it" if aliases else ""
    p.add_argument(
        "--model",
        *aliases,
        dest="model",
        type=Path,
        default=None,
        help=f"the model as a flag instead of MODEL{said} (default: the MODEL argument)",
    )


def add_output(p: argparse.ArgumentParser, help: str, *aliases: str, required: bool = True) -> None:
    p.add_argument("-o", "--output", *aliases, dest="output", type=Path, required=required, help=help)


def add_data(p: argparse.ArgumentParser, help: str, *aliases: str, required: bool = True) -> None:
    p.add_argument("--data", *aliases, dest="data", type=Path, required=required, help=help)


def finish_args(args: argparse.Namespace) -> None:
    """Merge MODEL and --model (exactly one is needed); called by cli.main after parsing."""
    if not hasattr(args, "model_positional"):
        return
    parser: argparse.ArgumentParser = args._parser
    if args.model_positional is not None and args.model is not None:
        parser.error(f"the model is given twice: {args.model_positional} and --model {args.model}")
    args.model = args.model if args.model is not None else args.model_positional
    if args.model is None:
        parser.error("the model is required: give it as MODEL or --model")
    del args.model_positional


def model_file(path: Path) -> Path:
    """`path` itself, or for a directory the one .onnx file in it (as the reference's model directories)."""
    from int8kit.paddle import is_paddle_model  # lazily; a Paddle model directory is read as a whole

    path = Path(path)
    if not path.is_dir() or is_paddle_model(path):
        return path
    found = sorted(path.glob("*.onnx"))
    if len(found) != 1:
        what = "no .onnx file" if not found else f"{len(found)} .onnx files ({', '.join(f.name for f in found)})"
        raise ModelError(f"{path}: a model directory must hold exactly one .onnx file, it holds {what}")
    return found[0]


def int8_output_path(output: Path, model: Path) -> Path:
    """`output` when it names a .onnx file; else the directory to write `<model>_int8.onnx` into.

    <model> is the QDQ model's file name without `.onnx` and without a trailing `_qdq`/`.qdq`/`-qdq`, so
    `convert resnet50_qdq.onnx -o out/` writes `out/resnet50_int8.onnx`.
    """
    output = Path(output)
    if output.suffix == ".onnx" and not output.is_dir():
        return output
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{output}: exists and is not a directory; give a directory or a .onnx file name")
    stem = Path(model).stem
    for tail in ("_qdq", ".qdq", "-qdq"):
        if stem.endswith(tail) and len(stem) > len(tail):
            stem = stem[: -len(tail)]
            break
    return output / f"{stem}_int8.onnx"


def write_json(record: object, path: Path) -> Path:
    """Write `record` as indented JSON, atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record, indent=2, allow_nan=True) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
