"""Throughput and latency side by side: `int8kit benchmark` against OpenVINO's performance hints.

For each zoo model (random weights, 224x224 by default): FP32 -> `int8kit quantize` (minmax, random images)
-> one QDQ file. OpenVINO reads that QDQ file; int8kit runs the INT8 model `int8kit convert` makes of it.
    throughput, batch B: int8kit benchmark --mode throughput (streams auto)  vs  OpenVINO THROUGHPUT hint
                         (an AsyncInferQueue of its optimal number of requests, as benchmark_app runs it)
    latency, batch 1:    int8kit benchmark --mode latency  vs  today's single stream (a Predictor.run loop)
                         and OpenVINO's LATENCY hint
Each figure runs for --time seconds after warm-up, in --rounds rounds that alternate the engines; each figure
is its best round. Run it on a quiet machine: every core is used.

    python bench/bench_throughput.py [--models resnet50,mobilenet_v2] [--batch 50] [--time 10] [--rounds 3]
        [--json OUT]
    python bench/bench_throughput.py --models resnet_tiny --size 32 --batch 4 --time 0.5   # smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Row:
    model: str
    batch: int
    int8kit_ips: float
    int8kit_layout: str
    openvino_ips: float
    openvino_layout: str
    int8kit_latency_ms: float
    single_stream_ms: float
    openvino_latency_ms: float


def make_files(name: str, size: int, folder: Path, calibration: int) -> tuple[Path, Path]:
    """(QDQ file, INT8 file) for one zoo model."""
    from int8kit.convert.pipeline import convert
    from int8kit.ir.save import save_model
    from int8kit.models import zoo
    from int8kit.quantize.api import QuantizeConfig, quantize_with_report

    fp32 = zoo.build(name, size=size)
    images = np.random.default_rng(1).standard_normal((calibration, 3, size, size)).astype(np.float32)
    qdq = quantize_with_report(fp32, images, QuantizeConfig(num_samples=calibration, batch_size=8)).model
    qdq_path, int8_path = folder / f"{name}_qdq.onnx", folder / f"{name}_int8.onnx"
    save_model(qdq, qdq_path)
    save_model(convert(qdq).model, int8_path)
    return qdq_path, int8_path


def int8kit_benchmark(model: Path, batch: int, mode: str, seconds: float):
    from int8kit.evaluate.benchmark import BenchmarkConfig, run_benchmark

    return run_benchmark(BenchmarkConfig(model=model, batch_size=batch, mode=mode, time_s=seconds))


def single_stream_ms(model: Path, size: int, seconds: float) -> float:
    """Median batch-1 latency of a plain `Predictor.run` loop on all cores (int8kit before streams)."""
    from int8kit.runtime.predictor import Predictor
    from int8kit.runtime.streams import available_cores

    p = Predictor(model, num_threads=len(available_cores()))
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    for _ in range(3):
        p.run(x)
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        p.run(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def openvino(qdq: Path, batch: int, size: int, hint: str, seconds: float) -> tuple[float, float, str]:
    """(images/s, median request latency ms, layout) with OpenVINO's hint, requests kept in flight."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(qdq))
    model.reshape({model.inputs[0].get_any_name(): [batch, 3, size, size]})
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": hint})
    requests = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    streams = compiled.get_property("NUM_STREAMS")
    threads = compiled.get_property("INFERENCE_NUM_THREADS")
    precision = compiled.get_property("INFERENCE_PRECISION_HINT")
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    queue = ov.AsyncInferQueue(compiled, requests)
    latencies: list[float] = []
    starts: dict[int, float] = {}

    def done(request, userdata) -> None:
        latencies.append(time.perf_counter() - starts[userdata])

    queue.set_callback(done)
    for i in range(requests):  # warm-up: every request once
        starts[i] = time.perf_counter()
        queue.start_async({0: x}, userdata=i)
    queue.wait_all()
    latencies.clear()
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        slot = queue.get_idle_request_id()
        starts[slot] = time.perf_counter()
        queue.start_async({0: x}, userdata=slot)
        n += 1
    queue.wait_all()
    wall = time.perf_counter() - t0
    layout = f"{streams} streams, {threads} threads, {requests} requests, {precision}"
    return n * batch / wall, float(np.median(latencies) * 1000), layout


def run(args: argparse.Namespace) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            print(f"[{name}] quantizing and converting", file=sys.stderr)
            qdq, int8 = make_files(name, args.size, folder, args.calibration_images)
            # Rounds alternate the engines so that each sees the same machine; each figure is its best round
            # (the least disturbed by other processes): throughput the highest, latencies the lowest.
            thr_runs, ov_runs, lat_runs, single_runs, ov_lat_runs = [], [], [], [], []
            for _ in range(args.rounds):
                thr_runs.append(int8kit_benchmark(int8, args.batch, "throughput", args.time))
                ov_runs.append(openvino(qdq, args.batch, args.size, "THROUGHPUT", args.time))
                lat_runs.append(int8kit_benchmark(int8, 1, "latency", args.time))
                single_runs.append(single_stream_ms(int8, args.size, args.time))
                ov_lat_runs.append(openvino(qdq, 1, args.size, "LATENCY", args.time)[1])
            thr = max(thr_runs, key=lambda r: r.throughput_ips)
            ov_ips, _, ov_layout = max(ov_runs, key=lambda r: r[0])
            lat = min(lat_runs, key=lambda r: r.latency_ms["median"])
            single, ov_ms = min(single_runs), min(ov_lat_runs)
            rows.append(
                Row(
                    model=name,
                    batch=args.batch,
                    int8kit_ips=thr.throughput_ips,
                    int8kit_layout=f"{thr.streams} streams x {thr.threads_per_stream} threads",
                    openvino_ips=ov_ips,
                    openvino_layout=ov_layout,
                    int8kit_latency_ms=lat.latency_ms["median"],
                    single_stream_ms=single,
                    openvino_latency_ms=ov_ms,
                )
            )
            print(f"[{name}] {rows[-1]}", file=sys.stderr)
    return rows


def print_table(rows: list[Row], size: int, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from int8kit.evaluate.environment import cpu_model
    from int8kit.runtime import dnnl
    from int8kit.runtime.streams import available_cores

    table = Table(title=f"INT8, same QDQ file; {size}x{size}; best of alternating rounds of {seconds:g} s")
    for col in ("model", "batch", "int8kit thr img/s", "OpenVINO THROUGHPUT img/s", "ratio"):
        table.add_column(col, justify="right")
    for col in ("int8kit latency b1 ms", "single stream b1 ms", "ratio", "OpenVINO LATENCY b1 ms"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r.model,
            str(r.batch),
            f"{r.int8kit_ips:.1f}",
            f"{r.openvino_ips:.1f}",
            f"{r.int8kit_ips / r.openvino_ips:.2f}x",
            f"{r.int8kit_latency_ms:.3f}",
            f"{r.single_stream_ms:.3f}",
            f"{r.single_stream_ms / r.int8kit_latency_ms:.2f}x",
            f"{r.openvino_latency_ms:.3f}",
        )
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    console.print(f"CPU: {cpu_model()} ({len(available_cores())} cores available); oneDNN ISA {dnnl.effective_isa()}")
    for r in rows:
        console.print(f"{r.model}: int8kit {r.int8kit_layout}; OpenVINO {r.openvino_layout}")
    console.print("ratios above 1 favour int8kit (throughput: int8kit/OpenVINO; latency: single stream/int8kit)")


def _csv(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=_csv, default=["resnet50", "mobilenet_v2"])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--time", type=float, default=10.0, help="seconds per figure and round")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; each figure is its best round")
    p.add_argument("--calibration-images", type=int, default=16)
    p.add_argument("--workdir", type=Path, help="keep the QDQ and INT8 files here (default: a temporary folder)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    rows = run(args)
    print_table(rows, args.size, args.time)
    if args.json:
        from int8kit.evaluate.environment import environment

        args.json.write_text(json.dumps({"environment": environment(), "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
