"""bf16 benchmark: int8kit bf16 vs OpenVINO bf16 on the same FP32 ResNet-50 file, plus int8kit FP32.

Issue 13's bf16 measurement. The model is the zoo's ResNet-50 (examples/zoo, exported and cached as
bench_zoo.py does; seeded random weights), at `--batch` (50) with `--threads` (2) threads. Engines:
  int8kit-bf16   Predictor(model, precision="bf16")
  openvino-bf16  OpenVINO CPU plugin, INFERENCE_PRECISION_HINT=bf16, PERFORMANCE_HINT=LATENCY,
                 INFERENCE_NUM_THREADS=threads, static shape per batch (as benchmark_app -shape)
  int8kit-fp32   Predictor(model) (the baseline: same engine)
Each engine runs `--warmup` times untimed, then at least `--min-runs` runs and `--seconds` of timing;
images/s = images / elapsed. The bf16/FP32 top-1 agreement is measured on photos: the installed sample
photos (skimage, matplotlib, darknet) for ResNet-50, and with `--real`, EfficientNet-Lite0 (ImageNet-
pretrained; needs the `examples` extra) on the same photos plus foolbox's labelled ImageNet images.
On a CPU without bf16 kernels int8kit runs FP32 and the table says so.

    python bench/bench_bf16.py [--batch 50] [--threads 2] [--seconds 10] [--real] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # spin-waiting stalls 2 threads on a shared machine

from bench_models import environment_record  # noqa: E402
from bench_zoo import Settings, time_runners  # noqa: E402

Runner = Callable[[np.ndarray], object]
ENGINES = ("int8kit-bf16", "openvino-bf16", "int8kit-fp32")
TARGET = 1.0  # issue 13: int8kit bf16 >= 1.0x OpenVINO bf16 (on an AMX CPU)


@dataclass(frozen=True)
class Timing:
    images_per_s: float
    ms_per_batch: float  # median
    runs: int


@dataclass(frozen=True)
class Agreement:
    model: str
    images: int
    top1_agreement: float  # percent of images whose bf16 top-1 equals FP32's
    max_rel_diff: float  # max |bf16 - fp32| / max |fp32| over the logits
    int8kit_precision: str  # what ran ("fp32" on a CPU without bf16 kernels)


def int8kit_runner(path: Path, threads: int, precision: str) -> tuple[Runner, str]:
    from int8kit.runtime.predictor import Predictor

    predictor = Predictor(path, num_threads=threads, precision=precision)
    return predictor.run, predictor.precision


def openvino_runner(path: Path, threads: int, batch: int, size: int) -> tuple[Runner, str]:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({model.inputs[0].any_name: [batch, 3, size, size]})
    config = {"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    ran = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # what the plugin settled on
    return (lambda x: request.infer({0: x}, share_inputs=True)), ran


def time_runner(run: Runner, x: np.ndarray, warmup: int, min_runs: int, seconds: float) -> Timing:
    """bench_zoo's timing loop (warmup, then >= min_runs runs and >= seconds), as a Timing."""
    settings = Settings(seconds=seconds, min_runs=min_runs, warmup=warmup, rounds=1)
    rate, ms, runs, _ = time_runners({"run": run}, x, settings)["run"]
    return Timing(rate, ms, runs)


def _efficientnet():
    """The EfficientNet-Lite0 example module (photos, export), wherever this checkout keeps it."""
    try:
        from examples import efficientnet
    except ImportError:
        from int8kit.examples import efficientnet
    return efficientnet


def photos(size: int, mean: tuple[float, ...], std: tuple[float, ...], extra: list[Path] = ()) -> np.ndarray:
    """The installed sample photos (and `extra`), resized/cropped and normalised as `int8kit preprocess` does."""
    from int8kit.data.images import ImageSpec, load_float

    spec = ImageSpec(data_dim=size, resize_size=round(size * 256 / 224), mean=mean, std=std)
    paths = [p for _, p in _efficientnet().find_photos()] + list(extra)
    if not paths:
        raise SystemExit("no sample photos installed (scikit-image, matplotlib or darknet's data)")
    return np.stack([load_float(p, spec) for p in paths]).astype(np.float32)


def agreement(name: str, path: Path, images: np.ndarray, threads: int) -> Agreement:
    fp32, _ = int8kit_runner(path, threads, "fp32")
    bf16, ran = int8kit_runner(path, threads, "bf16")
    a, b = fp32(images), bf16(images)
    return Agreement(
        model=name,
        images=len(images),
        top1_agreement=100.0 * float(np.mean(a.argmax(1) == b.argmax(1))),
        max_rel_diff=float(np.abs(a - b).max() / np.abs(a).max()),
        int8kit_precision=ran,
    )


def efficientnet_agreement(threads: int, cache: Path) -> Agreement:
    example = _efficientnet()
    spec = example.IMAGE_SPEC
    path = cache / "efficientnet_lite0.onnx"
    if not path.exists():
        example.export_efficientnet_lite0(path)
    try:
        sys.path.insert(0, str(REPO_ROOT / "examples" / "realmodels"))
        from imagenet_samples import labelled_images

        extra = [image.path for image in labelled_images()]
    except (ImportError, FileNotFoundError) as exc:
        logging.warning("no foolbox ImageNet images (%s): sample photos only", exc)
        extra = []
    images = photos(spec.data_dim, spec.mean, spec.std, extra)
    return agreement("efficientnet_lite0", path, images, threads)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet50", help="zoo model (default resnet50)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per engine (default 10)")
    p.add_argument("--min-runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated subset of {', '.join(ENGINES)}")
    p.add_argument("--real", action="store_true", help="also measure agreement on EfficientNet-Lite0 (pretrained)")
    p.add_argument("--json", type=Path, help="write the results here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from examples.zoo.export import cache_dir, export

    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise SystemExit(f"unknown engines {sorted(unknown)}; known: {', '.join(ENGINES)}")
    path = export(args.model, args.size)
    x = np.random.default_rng(0).standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    timings: dict[str, Timing | str] = {}
    ran = {}
    for engine in engines:
        try:
            if engine == "openvino-bf16":
                run, ran[engine] = openvino_runner(path, args.threads, args.batch, args.size)
            else:
                run, ran[engine] = int8kit_runner(path, args.threads, engine.split("-")[1])
            timings[engine] = time_runner(run, x, args.warmup, args.min_runs, args.seconds)
        except Exception as exc:  # report a failing engine, keep the others
            timings[engine] = f"error: {type(exc).__name__}: {exc}"
        print(f"  {engine}: {timings[engine]}", file=sys.stderr)
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    agreements = [agreement(args.model, path, photos(args.size, *imagenet), args.threads)]
    if args.real:
        agreements.append(efficientnet_agreement(args.threads, cache_dir()))
    env = environment_record()
    print_table(args, timings, ran, agreements, env)
    if args.json:
        record = {
            "settings": vars(args) | {"json": str(args.json)},
            "timings": {k: asdict(v) if isinstance(v, Timing) else v for k, v in timings.items()},
            "precision_ran": ran,
            "agreement": [asdict(a) for a in agreements],
            "environment": env,
        }
        args.json.write_text(json.dumps(record, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


def print_table(args, timings: dict, ran: dict, agreements: list[Agreement], env: dict) -> None:
    print(f"{args.model} {args.size}x{args.size}, batch {args.batch}, {args.threads} threads, {env['onednn']}")
    print(f"{'engine':<16}{'precision':<14}{'img/s':>10}{'ms/batch':>11}{'runs':>6}")
    for engine, t in timings.items():
        if isinstance(t, Timing):
            print(f"{engine:<16}{ran[engine]:<14}{t.images_per_s:>10.1f}{t.ms_per_batch:>11.1f}{t.runs:>6}")
        else:
            print(f"{engine:<16}{'-':<14}{t}")
    ok = {k: t for k, t in timings.items() if isinstance(t, Timing)}
    if "int8kit-bf16" in ok and "openvino-bf16" in ok:
        ratio = ok["int8kit-bf16"].images_per_s / ok["openvino-bf16"].images_per_s
        flag = "" if ratio >= TARGET else f"  * below the {TARGET:.1f}x target"
        print(f"int8kit bf16 / OpenVINO bf16: {ratio:.2f}x{flag}")
    if "int8kit-bf16" in ok and "int8kit-fp32" in ok:
        print(f"int8kit bf16 / int8kit FP32: {ok['int8kit-bf16'].images_per_s / ok['int8kit-fp32'].images_per_s:.2f}x")
    for a in agreements:
        print(
            f"top-1 agreement bf16 vs FP32, {a.model} on {a.images} photos: {a.top1_agreement:.1f}% "
            f"(max logit diff {a.max_rel_diff:.3g} of the largest; int8kit ran {a.int8kit_precision})"
        )


if __name__ == "__main__":
    sys.exit(main())
