"""Train small Paddle classifiers on Fashion-MNIST, quantize them with PaddleSlim, save the test fixtures.

Run in a venv with paddlepaddle 3.x (CPU) and paddleslim (heavy, not an int8kit dependency):

    FLAGS_enable_pir_api=0 nice -n 10 /work/venvs/paddle/bin/python scripts/make_paddle_models.py

Writes tests/paddle/models/<arch>_<kind>/model.pdmodel + model.pdiparams for arch in (mbv2, resnet) and kind in
(fp32, ptq, ptq_onnx, qat), plus tests/paddle/models/reference.npz: the first N_REF test images (uint8), their
labels and the logits Paddle Inference computes for every model (fake-quant ops run in FP32, the way Paddle
itself evaluates a fake-quant model), and metrics.json with each model's top-1 on all 10,000 test images.
<arch>_fp32_pir/ holds the FP32 model again as Paddle 3's PIR program (model.json), with the same weights.
`--pir-only` makes just those from the committed <arch>_fp32 directories.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("FLAGS_enable_pir_api", "0")  # the program protobuf (.pdmodel), not PIR .json

import numpy as np  # noqa: E402
import paddle  # noqa: E402
from paddle import nn  # noqa: E402

ROOT = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2860405969887955, 0.35302424451492237
N_REF = 200
SEED = 2026


def read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(ROOT / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(ROOT / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return images, labels


def normalize(images: np.ndarray) -> np.ndarray:
    return ((images.astype(np.float32) / 255.0 - MEAN) / STD)[:, None, :, :].astype(np.float32)


class ConvBN(nn.Layer):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: str | None = None):
        super().__init__()
        self.conv = nn.Conv2D(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias_attr=False)
        self.bn = nn.BatchNorm2D(cout)
        self.act = {"relu": nn.ReLU(), "relu6": nn.ReLU6(), "hardswish": nn.Hardswish(), None: None}[act]

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class InvertedResidual(nn.Layer):
    def __init__(self, cin: int, cout: int, expand: int, stride: int):
        super().__init__()
        hidden = cin * expand
        layers = [ConvBN(cin, hidden, 1, act="relu6")] if expand != 1 else []
        layers += [ConvBN(hidden, hidden, 3, stride, groups=hidden, act="relu6"), ConvBN(hidden, cout, 1)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2Like(nn.Layer):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            ConvBN(1, 8, 3, 2, act="relu6"),
            InvertedResidual(8, 8, 1, 1),
            InvertedResidual(8, 16, 3, 2),
            InvertedResidual(16, 16, 3, 1),
            ConvBN(16, 32, 1, act="hardswish"),
        )
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.fc(self.dropout(paddle.flatten(x, 1)))


class BasicBlock(nn.Layer):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.a = ConvBN(cin, cout, 3, stride, act="relu")
        self.b = ConvBN(cout, cout, 3)
        self.down = ConvBN(cin, cout, 1, stride) if stride != 1 or cin != cout else None
        self.relu = nn.ReLU()

    def forward(self, x):
        skip = self.down(x) if self.down is not None else x
        return self.relu(self.b(self.a(x)) + skip)


class ResNetLike(nn.Layer):
    def __init__(self):
        super().__init__()
        self.stem = ConvBN(1, 8, 3, 1, act="relu")
        self.pool = nn.MaxPool2D(2, 2)
        self.layer1 = BasicBlock(8, 8, 1)
        self.layer2 = BasicBlock(8, 16, 2)
        self.gap = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.pool(self.stem(x))))
        return self.fc(paddle.flatten(self.gap(x), 1))


ARCHS = {"mbv2": MobileNetV2Like, "resnet": ResNetLike}


def batches(x: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator):
    order = rng.permutation(len(x))
    for i in range(0, len(x) - size + 1, size):
        idx = order[i : i + size]
        yield paddle.to_tensor(x[idx]), paddle.to_tensor(y[idx])


def train(model: nn.Layer, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, rng: np.random.Generator) -> None:
    opt = paddle.optimizer.Adam(learning_rate=lr, parameters=model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        total, steps = 0.0, 0
        for xb, yb in batches(x, y, 128, rng):
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            opt.clear_grad()
            total, steps = total + float(loss), steps + 1
        print(f"  epoch {epoch + 1}: loss {total / steps:.4f}", flush=True)
    model.eval()


def input_spec():
    return [paddle.static.InputSpec([None, 1, 28, 28], "float32", "x")]


def copy_model(prefix: str, out_dir: Path) -> None:
    """Copy model.pdmodel/.pdiparams, dropping `op_callstack` attributes (Python tracebacks, 90% of a QAT file)."""
    from paddle.base.proto import framework_pb2

    out_dir.mkdir(parents=True, exist_ok=True)
    program = framework_pb2.ProgramDesc.FromString(Path(f"{prefix}.pdmodel").read_bytes())
    for block in program.blocks:
        for op in block.ops:
            keep = [a for a in op.attrs if a.name != "op_callstack"]
            del op.attrs[:]
            op.attrs.extend(keep)
    (out_dir / "model.pdmodel").write_bytes(program.SerializeToString())
    shutil.copy(f"{prefix}.pdiparams", out_dir / "model.pdiparams")


def _weights_of(fp32_dir: Path, dest: Path) -> None:
    """Save the FP32 model's parameters by name (child process in old-IR mode, which reads .pdmodel)."""
    paddle.enable_static()
    exe = paddle.static.Executor(paddle.CPUPlace())
    program, _, _ = paddle.static.load_inference_model(str(fp32_dir / "model"), exe)
    scope = paddle.static.global_scope()
    names = [v.name for v in program.list_vars() if v.persistable and v.name not in ("feed", "fetch")]
    paddle.save({n: np.array(scope.find_var(n).get_tensor()) for n in names}, str(dest))


def _save_pir(arch: str, weights: Path, out_dir: Path) -> None:
    """Rebuild `arch` with the saved weights (a fresh process names parameters alike) and jit.save as PIR."""
    state = paddle.load(str(weights))
    model = ARCHS[arch]()
    named = list(model.parameters()) + list(model.buffers())
    missing = [t.name for t in named if t.name not in state]
    if missing:
        raise SystemExit(f"weights missing for {missing}")
    for t in named:
        t.set_value(state[t.name])
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        paddle.jit.save(model, f"{tmp}/model", input_spec=input_spec())
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(f"{tmp}/model.json", out_dir / "model.json")
        shutil.copy(f"{tmp}/model.pdiparams", out_dir / "model.pdiparams")


def make_pir(arch: str, fp32_dir: Path, out_dir: Path) -> None:
    """The FP32 model as a PIR program, through two child processes (the IR mode is fixed at import)."""
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.pdparams"
        for flag, step in (
            ("0", ["--weights-of", str(fp32_dir), str(weights)]),
            ("1", ["--save-pir", arch, str(weights), str(out_dir)]),
        ):
            env = dict(os.environ, FLAGS_enable_pir_api=flag)
            subprocess.run([sys.executable, __file__, *step], env=env, check=True)


def predict(model_dir: Path, x: np.ndarray) -> np.ndarray:
    """Paddle Inference on the saved directory, graph optimisations off: fake-quant ops run as written."""
    from paddle import inference

    program = model_dir / "model.pdmodel"
    program = program if program.is_file() else model_dir / "model.json"
    config = inference.Config(str(program), str(model_dir / "model.pdiparams"))
    config.disable_gpu()
    config.switch_ir_optim(False)
    config.disable_mkldnn()
    config.set_cpu_math_library_num_threads(2)
    predictor = inference.create_predictor(config)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    out = []
    for i in range(0, len(x), 500):
        handle.copy_from_cpu(x[i : i + 500])
        predictor.run()
        out.append(predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu())
    return np.concatenate(out).astype(np.float32)


def ptq(fp32_dir: Path, out_dir: Path, calib: np.ndarray, onnx_format: bool) -> None:
    from paddleslim.quant import quant_post_static

    paddle.enable_static()
    try:
        exe = paddle.static.Executor(paddle.CPUPlace())

        def data_loader():
            for i in range(0, len(calib), 32):
                yield {"x": calib[i : i + 32]}

        with tempfile.TemporaryDirectory() as tmp:
            quant_post_static(
                exe,
                str(fp32_dir),
                tmp,
                data_loader=data_loader,
                model_filename="model.pdmodel",
                params_filename="model.pdiparams",
                batch_size=32,
                batch_nums=len(calib) // 32,
                algo="hist",
                onnx_format=onnx_format,
            )
            copy_model(f"{tmp}/model", out_dir)
    finally:
        paddle.disable_static()


def qat(arch: str, state: dict, out_dir: Path, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
    from paddleslim import QAT

    model = ARCHS[arch]()
    model.set_state_dict(state)
    quanter = QAT(config={"onnx_format": False, "quantizable_layer_type": ["Conv2D", "Linear"]})
    quanter.quantize(model)
    train(model, x, y, epochs=1, lr=1e-4, rng=rng)
    with tempfile.TemporaryDirectory() as tmp:
        quanter.save_quantized_model(model, f"{tmp}/model", input_spec=input_spec())
        copy_model(f"{tmp}/model", out_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/paddle/models")
    parser.add_argument("--train-images", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--archs", nargs="*", default=list(ARCHS))
    parser.add_argument("--pir-only", action="store_true", help="only write <arch>_fp32_pir from <arch>_fp32")
    parser.add_argument("--weights-of", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--save-pir", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.weights_of:
        return _weights_of(*args.weights_of)
    if args.save_pir:
        return _save_pir(args.save_pir[0], Path(args.save_pir[1]), Path(args.save_pir[2]))
    if args.pir_only:
        return check_pir(args.out, args.archs)
    paddle.seed(SEED)
    rng = np.random.default_rng(SEED)
    train_u8, train_y = load("train")
    test_u8, test_y = load("test")
    x_train, x_test = normalize(train_u8[: args.train_images]), normalize(test_u8)
    y_train = train_y[: args.train_images]
    calib = normalize(train_u8[-320:])
    metrics_path = args.out / "metrics.json"
    ref_path = args.out / "reference.npz"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    logits = dict(np.load(ref_path)) if ref_path.exists() else {}
    logits.update(images=test_u8[:N_REF], labels=test_y[:N_REF], mean=np.float32(MEAN), std=np.float32(STD))
    for arch in args.archs:
        print(f"{arch}: training", flush=True)
        model = ARCHS[arch]()
        train(model, x_train, y_train, args.epochs, 5e-3, rng)
        dirs = {kind: args.out / f"{arch}_{kind}" for kind in ("fp32", "ptq", "ptq_onnx", "qat")}
        with tempfile.TemporaryDirectory() as tmp:
            paddle.jit.save(model, f"{tmp}/model", input_spec=input_spec())
            copy_model(f"{tmp}/model", dirs["fp32"])
        ptq(dirs["fp32"], dirs["ptq"], calib, onnx_format=False)
        ptq(dirs["fp32"], dirs["ptq_onnx"], calib, onnx_format=True)
        qat(arch, model.state_dict(), dirs["qat"], x_train[:10000], y_train[:10000], rng)
        make_pir(arch, dirs["fp32"], args.out / f"{arch}_fp32_pir")
        for kind, path in dirs.items():
            out = predict(path, x_test)
            top1 = float((out.argmax(1) == test_y).mean() * 100)
            metrics[f"{arch}_{kind}"] = {"top1_10000": round(top1, 2)}
            logits[f"{arch}_{kind}"] = out[:N_REF]
            print(f"{arch}_{kind}: top-1 {top1:.2f}%", flush=True)
    np.savez_compressed(ref_path, **logits)
    metrics_path.write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    check_pir(args.out, args.archs)


def check_pir(out: Path, archs: list[str]) -> None:
    """Write (if missing) and check the PIR copies: Paddle must give the FP32 model's reference logits."""
    ref = np.load(out / "reference.npz")
    x = normalize(ref["images"])
    for arch in archs:
        pir_dir = out / f"{arch}_fp32_pir"
        if not (pir_dir / "model.json").is_file():
            make_pir(arch, out / f"{arch}_fp32", pir_dir)
        diff = np.abs(predict(pir_dir, x) - ref[f"{arch}_fp32"]).max()
        print(f"{arch}_fp32_pir: max |logit difference| to {arch}_fp32 {diff:.2e}", flush=True)
        if diff > 1e-4:
            raise SystemExit(f"{pir_dir}: PIR copy does not reproduce {arch}_fp32")


if __name__ == "__main__":
    main()
