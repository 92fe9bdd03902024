"""Correctness sweep over timm architectures int8kit was not built around (random weights, no downloads).

Per model, exported as users export (`torch.onnx.export`, opset 17, dynamic batch, BN statistics and scales
randomised so that no branch is dead): int8kit FP32 against onnxruntime (max error relative to the largest
logit); int8kit's `quantize` (8 random images) -> `convert` against the same QDQ file in onnxruntime with its
optimisations off (the spec), with onnxruntime's own INT8 kernels on that file as the floor; any oneDNN
`ref:` kernel in either model. A row is BAD when FP32 is off by more than 1e-4, INT8 is further from the spec
than 4x onnxruntime's kernels plus 0.005 in cosine (see tests/zoo/test_int8kit_int8.py), or a ref: kernel ran.

    pip install timm   # not a dependency of int8kit
    python bench/sweep_timm.py [--models name[:size],...] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import warnings

import numpy as np

from int8kit.evaluate.metrics import row_cosines

DEFAULT_MODELS = [
    "cspresnet50",
    "dla34",
    "dpn68",
    "ese_vovnet19b_dw",
    "fbnetc_100",
    "gernet_s",
    "hardcorenas_a",
    "hrnet_w18_small",
    "inception_v4:107",
    "mixnet_s",
    "regnetz_b16",
    "repvgg_a0",
    "res2net50_14w_8s",
    "resnet26d",
    "rexnet_100",
    "selecsls42b",
    "seresnext26d_32x4d",
    "skresnet18",
    "tf_efficientnet_b0",
    "xception41",
    "mobileone_s0",
    "fastvit_t8",
    "efficientvit_b0",
    "poolformer_s12",
    "edgenext_xx_small",
    "mobilevit_xxs:128",
    "pnasnet5large:131",
    "tresnet_m:128",
    "hgnetv2_b0",
    "mobilenetv4_conv_small",
    "starnet_s1",
    "fasternet_t0",
    "cspdarknet53",
    "eca_resnet33ts",
    "botnet26t_256:256",
]


def _ort(model, x: np.ndarray, optimize: bool) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def export(name: str, size: int):
    """The timm model with random weights, BN statistics and scales drawn so that every branch carries data."""
    import onnx
    import timm
    import torch

    torch.manual_seed(0)
    net = timm.create_model(name, pretrained=False, num_classes=100).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)  # timm zero-initialises the last BN of residual blocks
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.randn(1, 3, size, size), buf, opset_version=17, dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "n"}})  # fmt: skip
    return onnx.load_from_string(buf.getvalue())


def check(name: str, size: int, threads: int) -> dict:
    import onnx_ir as ir

    import int8kit
    from int8kit.convert.pipeline import convert
    from int8kit.quantize.api import QuantizeConfig, quantize_with_report

    row: dict = {"model": name, "size": size}
    stage, start = "export", time.perf_counter()
    try:
        fp32 = export(name, size)
        x = np.random.default_rng(1).standard_normal((2, 3, size, size)).astype(np.float32)
        stage = "fp32"
        predictor = int8kit.Predictor(fp32, num_threads=threads)
        want = _ort(fp32, x, optimize=True)
        row["fp32_rel_err"] = float(np.abs(predictor.run(x) - want).max() / np.abs(want).max())
        refs = [label for label, impl in predictor.kernels(x.shape) if impl.startswith("ref")]
        stage = "quantize"
        calib = np.random.default_rng(2).standard_normal((8, 3, size, size)).astype(np.float32)
        config = QuantizeConfig(num_samples=8, batch_size=8)
        qdq = ir.serde.serialize_model(quantize_with_report(ir.serde.deserialize_model(fp32), calib, config).model)
        stage = "convert"
        int8 = ir.serde.serialize_model(convert(ir.serde.deserialize_model(qdq)).model)
        stage = "int8"
        predictor = int8kit.Predictor(int8, num_threads=threads)
        spec = _ort(qdq, x, optimize=False)
        row["int8_cosine"] = float(row_cosines(predictor.run(x), spec).mean())
        row["ort_kernels_cosine"] = float(row_cosines(_ort(qdq, x, optimize=True), spec).mean())
        refs += [label for label, impl in predictor.kernels(x.shape) if impl.startswith("ref")]
        row["ref_kernels"] = refs
        bar = min(0.999, 1 - 4 * (1 - row["ort_kernels_cosine"]) - 0.005)
        bad = not (row["fp32_rel_err"] <= 1e-4 and row["int8_cosine"] >= bar) or refs  # NaN is bad too
        row["status"] = "BAD" if bad else "ok"
    except Exception as exc:  # a sweep reports every model, whatever fails
        row["status"] = f"error at {stage}"
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _fmt(row: dict, key: str, spec: str) -> str:
    return format(row[key], spec) if key in row else "-"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="name[:size],...")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from int8kit.runtime.dnnl import effective_isa

    console = Console(width=160)
    rows = []
    for spec in args.models.split(","):
        name, _, size = spec.partition(":")
        rows.append(check(name, int(size or 96), args.threads))
        r = rows[-1]
        console.print(f"{r['status']:>5} {name}:{r['size']} ({r['seconds']} s) {r.get('error', '')}", soft_wrap=True)
    table = Table(title="timm architectures, random weights: int8kit against onnxruntime")
    for col in ("model", "size", "FP32 rel err", "INT8 cosine vs spec", "ORT kernels cosine", "ref:", "status"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["model"], str(r["size"]), _fmt(r, "fp32_rel_err", ".1e"), _fmt(r, "int8_cosine", ".5f"),
                      _fmt(r, "ort_kernels_cosine", ".5f"), str(len(r.get("ref_kernels", []))),
                      r["status"] + (f": {r['error']}" if "error" in r else ""))  # fmt: skip
    console.print(table)
    console.print(f"oneDNN ISA {effective_isa()}; {sum(r['status'] == 'ok' for r in rows)} of {len(rows)} ok")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
