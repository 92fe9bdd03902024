"""Show that `int8kit test` streams its data: peak RSS stays flat while reading a 50,000-image file.

Writes a seed-format file of N images of 3xDxD (default 50,000 x 3x224x224 = 30 GB) as a sparse file
(header + truncate + labels, so it takes seconds and almost no disk), runs the tester over part of it with
a tiny ONNX model, and compares peak RSS (resource.getrusage) before and after with the bytes streamed.
Exit status 1 if memory grew by more than a few batches.

    python bench/memmap_test.py [--dim 224] [--images 50000] [--batches 40] [--backend onnxruntime]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from int8kit.data.seed_format import seed_file_size
from int8kit.evaluate.tester import TestConfig, run_test


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def write_sparse_seed_file(path: Path, n: int, dim: int, classes: int) -> int:
    size = seed_file_size(n, 3, dim)
    labels = np.random.default_rng(0).integers(0, classes, n).astype("<i8")
    with open(path, "wb") as f:
        f.write(np.int64(n).astype("<i8").tobytes())
        f.truncate(size - labels.nbytes)  # a hole: all-zero images that take no disk
        f.seek(size - labels.nbytes)
        f.write(labels.tobytes())
    assert path.stat().st_size == size
    return size


def tiny_model(path: Path, dim: int, classes: int) -> Path:
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["x"], ["p"]),
            helper.make_node("Flatten", ["p"], ["f"]),
            helper.make_node("Gemm", ["f", "W", "B"], ["scores"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, dim, dim])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", classes])],
        [
            numpy_helper.from_array(rng.normal(size=(3, classes)).astype(np.float32), "W"),
            numpy_helper.from_array(rng.normal(size=(classes,)).astype(np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=224)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--batches", type=int, default=40, help="timed batches to stream (0 = all)")
    parser.add_argument("--backend", choices=("onnxruntime", "int8kit"), default="onnxruntime")
    parser.add_argument("--dir", type=Path, help="where to write the file (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        data = Path(tmp) / "val.bin"
        t0 = time.perf_counter()
        size = write_sparse_seed_file(data, args.images, args.dim, classes=1000)
        print(
            f"wrote {data} ({size / 2**30:.1f} GiB sparse, {args.images} images of 3x{args.dim}x{args.dim}) "
            f"in {time.perf_counter() - t0:.2f} s"
        )
        model = tiny_model(Path(tmp) / "m.onnx", args.dim, classes=1000)
        config = TestConfig(
            model,
            data,
            batch_size=args.batch_size,
            iterations=args.batches,
            warmup_iter=1,
            backend=args.backend,
        )
        run_test(
            TestConfig(model, data, batch_size=args.batch_size, iterations=1, warmup_iter=0, backend=args.backend)
        )  # load libraries first so the baseline includes them
        before = peak_rss_mib()
        t0 = time.perf_counter()
        result = run_test(config)
        elapsed = time.perf_counter() - t0
        after = peak_rss_mib()

    batch_mib = args.batch_size * 3 * args.dim * args.dim * 4 / 2**20
    streamed_mib = result.iterations * batch_mib
    growth = after - before
    print(
        f"streamed {result.iterations} batches of {args.batch_size} = {streamed_mib:.0f} MiB "
        f"({result.images} images) in {elapsed:.2f} s, {result.fps:.0f} img/s model time"
    )
    print(
        f"peak RSS before {before:.0f} MiB, after {after:.0f} MiB: grew {growth:.0f} MiB "
        f"(one batch is {batch_mib:.0f} MiB; loading the whole file would need {size / 2**20:.0f} MiB)"
    )
    limit = 6 * batch_mib + 64
    if growth > limit:
        print(f"FAIL: peak RSS grew by more than {limit:.0f} MiB", file=sys.stderr)
        return 1
    print("OK: memory stays bounded while streaming")
    return 0


if __name__ == "__main__":
    sys.exit(main())
