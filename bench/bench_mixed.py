"""Mixed precision against FP32: what leaving layers in FP32 costs (issue 8, items 6 and 7).

Per zoo model (examples/zoo, 224x224), in one run, timed interleaved so every variant sees the same machine:
- int8kit FP32 (the FP32 export) and full INT8 (int8kit's own QDQ file, converted);
- INT8 with a seeded random fraction of its Conv ops skipped (`Scope(exclude_ids=...)`, what
  `--op-ids-to-skip` does) and with every other Conv skipped (the most borders a model can have);
- onnxruntime's `quantize_static` QDQ file (per-channel int8 weights, symmetric int8 activations) with
  `--exclude` convs left unquantized by the tool (`nodes_to_exclude`): the converted model must keep exactly
  those FP32; the table says whether it did.
Each variant runs `--warmup` times, then `--rounds` rounds of `--seconds` each; images/s is the best round
(the least disturbed by other processes) and every ratio is against int8kit FP32 in the same run.

    python bench/bench_mixed.py [--models resnet50,mobilenet_v2] [--batch 16] [--threads 2] [--exclude 3]
        [--fractions 0.1,0.3,0.5] [--seconds 1] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_models import environment_record  # noqa: E402
from bench_zoo import ModelFiles, Settings  # noqa: E402


def ort_qdq_excluding(fp32: Path, exclude: list[str], size: int, n_calib: int = 8):
    """onnxruntime's QDQ file (per-channel weights, symmetric int8 activations) with `exclude` left float."""
    import onnx

    from examples.zoo.ort_qdq import ort_qdq

    images = np.random.default_rng(1).standard_normal((n_calib, 3, size, size)).astype(np.float32)
    return ort_qdq(onnx.load(str(fp32)), images, "ort_pc_s8_sym", tuple(exclude))


def conv_names(fp32: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node if n.op_type == "Conv"]


def variants(name: str, args: argparse.Namespace) -> tuple[dict, dict]:
    """{label: model} to time, and notes (which convs stayed FP32) per label."""
    from int8kit.convert.config import ConvertConfig
    from int8kit.convert.pipeline import convert
    from int8kit.ir.node_ids import node_id
    from int8kit.scope import Scope

    files = ModelFiles(name, Settings(size=args.size, threads=args.threads))
    fp32, qdq = files.fp32(), files.qdq()
    full = convert(str(qdq))
    conv_ids = sorted(node_id(n) for n in full.model.graph if n.op_type == "Conv")
    models: dict[str, object] = {"fp32": str(fp32), "int8": full.model}
    notes: dict[str, str] = {"int8": f"{len(conv_ids)} convs INT8"}
    rng = random.Random(0)
    for fraction in args.fractions:
        skip = sorted(rng.sample(conv_ids, max(1, round(len(conv_ids) * fraction))))
        models[f"skip {fraction:.0%}"] = convert(str(qdq), ConvertConfig(scope=Scope(exclude_ids=skip))).model
        notes[f"skip {fraction:.0%}"] = f"{len(skip)} of {len(conv_ids)} convs skipped"
    alternate = conv_ids[1::2]
    models["skip every other"] = convert(str(qdq), ConvertConfig(scope=Scope(exclude_ids=alternate))).model
    notes["skip every other"] = f"{len(alternate)} of {len(conv_ids)} convs skipped"
    if args.exclude:
        convs = conv_names(fp32)
        picked = [convs[round(i * (len(convs) - 1) / (args.exclude + 1))] for i in range(1, args.exclude + 1)]
        result = convert(ort_qdq_excluding(fp32, picked, args.size))
        kept = sorted(op.name for op in result.summary.fp32_reasons if op.op_type == "Conv")
        label = f"ort, {len(picked)} excluded"
        models[label] = result.model
        int8_convs = sum(1 for n in result.model.graph if n.op_type == "Conv" and "x_scale" in n.attributes)
        verdict = "exactly those FP32" if kept == sorted(picked) else f"FP32 convs {kept} != excluded {picked}"
        notes[label] = f"{verdict}; {int8_convs} convs INT8"
    return models, notes


def time_all(models: dict, batch: int, args: argparse.Namespace) -> dict[str, float]:
    from int8kit.runtime.predictor import Predictor

    x = np.random.default_rng(0).standard_normal((batch, 3, args.size, args.size)).astype(np.float32)
    predictors = {label: Predictor(m, num_threads=args.threads) for label, m in models.items()}
    for p in predictors.values():
        for _ in range(args.warmup):
            p.run(x)
    best = dict.fromkeys(predictors, 0.0)
    for _ in range(args.rounds):
        for label, p in predictors.items():
            start, runs = time.perf_counter(), 0
            while runs < 2 or time.perf_counter() - start < args.seconds:
                p.run(x)
                runs += 1
            best[label] = max(best[label], runs * batch / (time.perf_counter() - start))
    for p in predictors.values():
        p.close()
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,mobilenet_v2")
    ap.add_argument("--batch", default="16", help="comma-separated batch sizes")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fractions", default="0.1,0.3,0.5")
    ap.add_argument("--exclude", type=int, default=3, help="convs onnxruntime leaves unquantized (0: none)")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    args.fractions = [float(f) for f in args.fractions.split(",") if f]
    env = environment_record()
    print(f"CPU: {env['cpu']}; oneDNN {env['onednn']['version']}, ISA {env['onednn']['isa']}; threads {args.threads}")
    rows = []
    for name in args.models.split(","):
        models, notes = variants(name, args)
        for batch in (int(b) for b in args.batch.split(",")):
            ips = time_all(models, batch, args)
            print(f"\n{name}, batch {batch}: images/s (best of {args.rounds} rounds), ratio to int8kit FP32")
            for label, value in ips.items():
                ratio = value / ips["fp32"]
                flag = "" if label == "fp32" or ratio >= 1.0 else "  *slower than FP32"
                print(f"  {label:22s} {value:9.1f}  x{ratio:5.2f}  {notes.get(label, '')}{flag}")
                rows.append(
                    {
                        "model": name,
                        "batch": batch,
                        "variant": label,
                        "images_per_s": value,
                        "vs_fp32": ratio,
                        "note": notes.get(label, ""),
                    }
                )
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
