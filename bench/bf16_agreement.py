"""bf16 against FP32 on the real models with honest labels (issue 13: top-1 agreement >= 99%).

Each model of bench/accuracy_table.py (PaddleOCR's direction classifier on rendered text lines,
EfficientNet-Lite0 on the foolbox photo views, the Fashion-MNIST nets on their test set) runs twice on
int8kit: FP32, and `Predictor(precision="bf16")` (bf16 convolutions and inner products, f32 accumulation;
on a CPU without bf16 kernels int8kit says so and this prints FP32 twice). Prints, per model, the top-1
agreement of bf16 with FP32 and both top-1 accuracies, and writes them as JSON with --json.

    python bench/bf16_agreement.py [--only paddleocr_cls efficientnet] [--threads 2] [--json docs/bf16_agreement.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from accuracy_table import benchmarks  # noqa: E402

from int8kit.data.open_data import open_dataset  # noqa: E402
from int8kit.runtime import dnnl  # noqa: E402
from int8kit.runtime.predictor import Predictor  # noqa: E402

BATCH = 50


def logits(predictor: Predictor, images: np.ndarray) -> np.ndarray:
    out = np.concatenate([predictor.run(images[i : i + BATCH]) for i in range(0, len(images), BATCH)])
    return out.reshape(len(images), -1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", help="model names (or prefixes)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", type=Path, default=REPO / "build" / "realmodels")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    benches, missing = benchmarks(args.work, set(args.only) if args.only else None)
    rows = []
    for bench in benches:
        data = open_dataset(bench.eval_data)
        images, labels = data.batch(0, len(data)), np.asarray(data.labels)
        fp32 = logits(Predictor(str(bench.model), num_threads=args.threads), images)
        bf16_predictor = Predictor(str(bench.model), num_threads=args.threads, precision="bf16")
        bf16 = logits(bf16_predictor, images)
        row = {
            "model": bench.name,
            "images": len(labels),
            "precision_run": bf16_predictor.precision,
            "top1_agreement": 100.0 * float(np.mean(fp32.argmax(1) == bf16.argmax(1))),
            "fp32_top1": 100.0 * float(np.mean(fp32.argmax(1) == labels)),
            "bf16_top1": 100.0 * float(np.mean(bf16.argmax(1) == labels)),
        }
        rows.append(row)
        print(
            f"{row['model']:28s} {row['images']:6d} images  bf16/FP32 top-1 agreement {row['top1_agreement']:6.2f}%"
            f"  top-1 FP32 {row['fp32_top1']:.2f}%  bf16 {row['bf16_top1']:.2f}%  (ran {row['precision_run']})",
            flush=True,
        )
    for name, why in missing.items():
        print(f"{name}: not available ({why})")
    isa = dnnl.effective_isa()
    print(f"oneDNN ISA {isa}; {args.threads} threads")
    if args.json:
        args.json.write_text(json.dumps({"isa": isa, "rows": rows, "missing": missing}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
