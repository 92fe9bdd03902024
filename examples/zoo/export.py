"""The zoo as ONNX files, exported the way users export torchvision models, built once and cached.

`export(name, size)` runs `torch.onnx.export(model.eval(), x, f, opset_version=17, dynamo=False, ...)` with a
dynamic batch ("N"), input "input" and output "logits", and caches the file under $INT8KIT_ZOO_CACHE (default
<repo>/build/zoo/, gitignored). The cache key holds the model name, the image size and a hash of the definitions,
this exporter's settings and the torch version, so editing architectures.py invalidates every cached file.
The seeded random weights (`architectures.randomize`) are cached too, as a state dict keyed the same way.

    python -m examples.zoo.export --all --size 224      # pre-build every model
    python -m examples.zoo.export resnet18 mnasnet1_0   # or some
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from examples.zoo import architectures, transformers
from int8kit.errors import ConfigError, Int8kitError

logger = logging.getLogger(__name__)

CACHE_ENV = "INT8KIT_ZOO_CACHE"
REPO_ROOT = Path(__file__).resolve().parents[2]
OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
MODELS: dict[str, Callable[[], nn.Module]] = dict(architectures.ARCHITECTURES)
# Beyond issue 8's CNN zoo, for the benchmarks: ConvNeXt and ViT at torchvision's sizes (ViT's position
# embedding depends on the image size, so these are built per size).
TRANSFORMERS: dict[str, Callable[[int], nn.Module]] = {
    "convnext_tiny": lambda size: transformers.convnext_tiny(),
    "vit_b_16": transformers.vit_b_16,
}


def cache_dir() -> Path:
    """$INT8KIT_ZOO_CACHE, else <repo>/build/zoo."""
    return Path(os.environ.get(CACHE_ENV) or REPO_ROOT / "build" / "zoo")


def definition_hash(name: str = "") -> str:
    """12 hex digits over the definitions, the export settings and torch's version: what the files depend on."""
    source = transformers if name in TRANSFORMERS else architectures
    digest = hashlib.sha256(Path(source.__file__).read_bytes())
    digest.update(f"opset={OPSET} dynamo=False {INPUT_NAME}->{OUTPUT_NAME} torch={torch.__version__}".encode())
    return digest.hexdigest()[:12]


def seed(name: str) -> int:
    return zlib.crc32(name.encode())


def _check_name(name: str) -> None:
    if name not in MODELS and name not in TRANSFORMERS:
        known = ", ".join([*MODELS, *TRANSFORMERS])
        raise ConfigError(f"unknown zoo model {name!r}; known: {known}")


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _prune(keep: Path, pattern: str) -> None:
    """Delete the cache's files for the same model built from other definitions (each is tens of MB)."""
    for stale in keep.parent.glob(pattern):
        if stale != keep and not stale.name.startswith(keep.stem + "-"):
            stale.unlink(missing_ok=True)
            logger.info("removed stale %s", stale)


def build(name: str) -> nn.Module:
    """The torch model in eval mode with its seeded random weights (state dict cached: calibrating BN costs)."""
    _check_name(name)
    model = MODELS[name]()
    weights = cache_dir() / f"{name}-{definition_hash()}.pt"
    if weights.exists():
        model.load_state_dict(torch.load(weights, weights_only=True))
        return model.eval()
    architectures.randomize(model, seed(name))
    _atomic_write(weights, lambda tmp: torch.save(model.state_dict(), tmp))
    _prune(weights, f"{name}-*.pt")
    return model.eval()


def cached_path(name: str, size: int = 224) -> Path:
    return cache_dir() / f"{name}-{size}-{definition_hash(name)}.onnx"


def write_onnx(model: nn.Module, size: int, target: Path, no_grad: bool = True) -> None:
    """`model` exported the way users export torchvision models (see the module docstring), atomically."""
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    grad = torch.no_grad() if no_grad else contextlib.nullcontext()

    def write(tmp: Path) -> None:
        with grad, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # dynamo=False is what users still run
            torch.onnx.export(
                model,
                (x,),
                str(tmp),
                opset_version=OPSET,
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
            )

    _atomic_write(target, write)


def export(name: str, size: int = 224, path: str | os.PathLike | None = None) -> Path:
    """The model as an ONNX file at `size` x `size` (batch free): the cached file, or a fresh export to `path`."""
    _check_name(name)
    if size < 32:
        raise ConfigError(f"size {size} is too small for the zoo (every model needs >= 32 pixels)")
    target = Path(path) if path is not None else cached_path(name, size)
    if path is None and target.exists():
        return target
    model = transformers.randomize(TRANSFORMERS[name](size), seed(name)) if name in TRANSFORMERS else build(name)
    # nn.MultiheadAttention takes its fused fast path, which has no ONNX export, when grad is off
    write_onnx(model, size, target, no_grad=name not in TRANSFORMERS)
    if path is None:
        _prune(target, f"{name}-{size}-*")  # with the QDQ/INT8 files derived from stale exports
    logger.info("exported %s at %dx%d to %s", name, size, size, target)
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.zoo.export", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"models to export (of {', '.join(MODELS)})")
    p.add_argument("--all", action="store_true", help="every zoo model")
    p.add_argument("--size", type=int, default=224, help="image height and width (default 224)")
    args = p.parse_args(argv)
    names = list(MODELS) if args.all else args.names
    if not names:
        p.error("name some models or pass --all")
    try:
        for name in names:
            print(export(name, args.size))
    except Int8kitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
