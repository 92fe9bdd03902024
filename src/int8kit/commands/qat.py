"""`int8kit qat`: quant-aware fine-tuning of an FP32 ONNX model, written as a QDQ model for `int8kit convert`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from int8kit.commands._options import add_data, add_model, add_output


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "qat",
        help="quant-aware fine-tuning (torch fake-quant) of an FP32 ONNX model into a QDQ model",
        description="Fine-tune an FP32 ONNX model under int8kit's fake-quant (per-channel s8 weights, u8/s8 "
        "activations at the tensors PTQ quantizes, scales learned from min/max calibration) and write a QDQ "
        "model that `int8kit convert` turns into INT8. Needs PyTorch.",
    )
    add_model(p, "FP32 ONNX model (BatchNorm is folded as for PTQ)")
    add_data(p, "labelled training images: a Fashion-MNIST idx folder (train split) or a labelled data file")
    p.add_argument(
        "--eval-data",
        type=Path,
        default=None,
        help="labelled images for before/after top-1 (default: the test split of an idx --data folder)",
    )
    add_output(p, "where to write the QDQ model")
    p.add_argument("--steps", type=int, default=300, help="training steps")
    p.add_argument("--batch-size", type=int, default=128, help="images per step")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate of the weights")
    p.add_argument("--scale-lr", type=float, default=1e-3, help="Adam learning rate of the log-scales")
    p.add_argument("--fixed-scales", action="store_true", help="keep the calibrated activation scales")
    p.add_argument("--calib-samples", type=int, default=512, help="images for the initial min/max ranges")
    p.add_argument("--eval-samples", type=int, default=None, help="evaluate on the first N images only (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration sample and batches")
    p.add_argument("--num-threads", "--threads", dest="num_threads", type=int, default=2, help="torch threads")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from int8kit.ir.save import save_model
    from int8kit.qat.api import prepare_from_images, quant_aware_train
    from int8kit.qat.data import load_labelled
    from int8kit.qat.train import QatConfig, accuracy

    config = QatConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        scale_lr=args.scale_lr,
        learn_scales=not args.fixed_scales,
        calib_samples=args.calib_samples,
        seed=args.seed,
        threads=args.num_threads,
    )
    images, labels = load_labelled(args.data, "train")
    eval_source = args.eval_data or (args.data if args.data.is_dir() else None)
    evaluation = load_labelled(eval_source, "test") if eval_source is not None else None
    if evaluation is not None and args.eval_samples is not None:
        evaluation = (evaluation[0][: args.eval_samples], evaluation[1][: args.eval_samples])

    qat = prepare_from_images(args.model, images, config)
    print(
        f"{args.model}: {len(qat.plan.activations)} activation tensors, {len(qat.plan.weight_uses)} weights "
        f"fake-quantized; training on {len(images)} images"
    )
    before = {}
    if evaluation is not None:
        before["fp32"] = accuracy(qat.module, *evaluation, quantize=False)
        before["fq"] = accuracy(qat.module, *evaluation, quantize=True)
        print(
            f"before QAT: FP32 top-1 {100 * before['fp32']:.2f}%, fake-quant (PTQ min/max scales) "
            f"top-1 {100 * before['fq']:.2f}% on {len(evaluation[1])} images"
        )
    start = time.perf_counter()
    every = max(config.steps // 10, 1)

    def show(step: int, loss: float) -> None:
        if (step + 1) % every == 0 or step + 1 == config.steps:
            print(f"step {step + 1}/{config.steps}: loss {loss:.4f} ({time.perf_counter() - start:.0f} s)")

    result = quant_aware_train(qat, images, labels, config, on_step=show)
    if evaluation is not None:
        after = accuracy(qat.module, *evaluation, quantize=True)
        print(f"after QAT: fake-quant top-1 {100 * after:.2f}% ({100 * (after - before['fq']):+.2f} points)")
    save_model(result.model, args.output)
    print(f"wrote {args.output}; turn it into INT8 with: int8kit convert --quant-model-path {args.output} ...")
    return 0
