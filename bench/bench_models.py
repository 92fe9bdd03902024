"""Throughput of the zoo's ResNet-50 and MobileNetV2 (224x224): int8kit against onnxruntime.

Every (model, batch, threads) configuration runs on every engine in turn: warm-up runs first (they also
compile int8kit's program for the batch), then several timed repeats of at least `min_time` seconds
each; the table shows the median images/s and, per precision, int8kit's speed over onnxruntime's.

An engine is a name, a precision and a factory (model variants, threads) -> runner, so INT8 columns are
one `--engines` away: `int8kit-int8` runs the converted model, `ort-int8` the QDQ model it came from
(both calibrated once per model on random images, which is enough to time them).

Both engines keep their default thread waiting (libgomp: spin briefly, then sleep; onnxruntime: spin);
set OMP_WAIT_POLICY in the environment to try others (the output says what was in force).

    python bench/bench_models.py [--quick] [--models resnet50,mobilenet_v2] [--batches 1,50]
        [--threads 1,2] [--engines int8kit-fp32,ort-fp32[,int8kit-int8,ort-int8]] [--json OUT]
"""

from __future__ import annotations

import os

_OMP_POLICY_PRESET = "OMP_WAIT_POLICY" in os.environ

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402

Runner = Callable[[np.ndarray], object]


# ---- model variants ------------------------------------------------------------------------------------
@dataclass
class Variants:
    """The forms of one zoo model the engines need, each built on first use and kept."""

    name: str
    size: int = 224
    calibration_images: int = 16
    _cache: dict[str, object] = field(default_factory=dict)

    def _get(self, key: str, build: Callable[[], object]) -> object:
        if key not in self._cache:
            start = time.perf_counter()
            self._cache[key] = build()
            print(f"  [{self.name}] built {key} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        return self._cache[key]

    def fp32(self) -> onnx.ModelProto:
        from int8kit.models import zoo

        return self._get("fp32", lambda: zoo.build(self.name, size=self.size))

    def qdq(self) -> onnx.ModelProto:
        """QDQ model (u8 activations, s8 per-channel weights) calibrated on a few random images."""

        def build():
            from int8kit.quantize.api import QuantizeConfig, quantize_with_report

            images = np.random.default_rng(1).standard_normal((self.calibration_images, 3, self.size, self.size))
            config = QuantizeConfig(num_samples=self.calibration_images, batch_size=8)
            return quantize_with_report(self.fp32(), images.astype(np.float32), config).to_proto()

        return self._get("qdq", build)

    def int8(self):
        def build():
            from int8kit.convert.pipeline import convert

            return convert(self.qdq()).model

        return self._get("int8", build)


# ---- engines ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Engine:
    name: str
    library: str  # "int8kit" or "onnxruntime": ratios compare the two at the same precision
    precision: str  # "fp32" or "int8"
    make: Callable[[Variants, int], Runner]


def _int8kit(model, threads: int) -> Runner:
    from int8kit.runtime.predictor import Predictor

    return Predictor(model, num_threads=threads).run


def _ort(model: onnx.ModelProto, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


ENGINES = {
    e.name: e
    for e in (
        Engine("int8kit-fp32", "int8kit", "fp32", lambda v, t: _int8kit(v.fp32(), t)),
        Engine("ort-fp32", "onnxruntime", "fp32", lambda v, t: _ort(v.fp32(), t)),
        Engine("int8kit-int8", "int8kit", "int8", lambda v, t: _int8kit(v.int8(), t)),
        Engine("ort-int8", "onnxruntime", "int8", lambda v, t: _ort(v.qdq(), t)),
    )
}
DEFAULT_ENGINES = ("int8kit-fp32", "int8kit-int8", "ort-fp32", "ort-int8")


# ---- timing -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    warmup: int = 2
    repeats: int = 5
    min_time: float = 1.0  # seconds per repeat (at least one run)


QUICK = Timing(warmup=1, repeats=3, min_time=0.3)


@dataclass(frozen=True)
class Result:
    model: str
    batch: int
    threads: int
    engine: str
    images_per_s: float
    ms_per_batch: float
    repeats: list[float]  # images/s of each repeat


def measure(run: Runner, x: np.ndarray, timing: Timing) -> list[float]:
    """images/s of each timed repeat, after `timing.warmup` untimed runs."""
    for _ in range(timing.warmup):
        run(x)
    rates = []
    for _ in range(timing.repeats):
        runs, start = 0, time.perf_counter()
        while True:
            run(x)
            runs += 1
            elapsed = time.perf_counter() - start
            if elapsed >= timing.min_time:
                break
        rates.append(runs * x.shape[0] / elapsed)
    return rates


def benchmark(models, batches, threads, engines: list[Engine], timing: Timing) -> list[Result]:
    results = []
    for model_name in models:
        variants = Variants(model_name)
        for n_threads in threads:
            runners = {e.name: e.make(variants, n_threads) for e in engines}  # one per thread count
            for batch in batches:
                x = np.random.default_rng(batch).standard_normal((batch, 3, variants.size, variants.size))
                x = x.astype(np.float32)
                for engine in engines:
                    rates = measure(runners[engine.name], x, timing)
                    median = statistics.median(rates)
                    results.append(
                        Result(model_name, batch, n_threads, engine.name, median, 1000 * batch / median, rates)
                    )
                    print(
                        f"  {model_name} b{batch} t{n_threads} {engine.name}: {median:.1f} img/s "
                        f"(repeats {', '.join(f'{r:.1f}' for r in rates)})",
                        file=sys.stderr,
                    )
            del runners
    return results


# ---- report -------------------------------------------------------------------------------------------
def ratio_pairs(engines: list[Engine]) -> list[tuple[Engine, Engine]]:
    """(int8kit engine, onnxruntime engine) at the same precision, for the ratio columns."""
    ours = [e for e in engines if e.library == "int8kit"]
    theirs = {e.precision: e for e in engines if e.library == "onnxruntime"}
    return [(e, theirs[e.precision]) for e in ours if e.precision in theirs]


def environment_record() -> dict[str, object]:
    from int8kit.evaluate.environment import environment
    from int8kit.runtime import dnnl

    env = environment()
    env["onednn"] = {"version": dnnl.library().version_string, "isa": dnnl.effective_isa()}
    env["omp_wait_policy"] = {
        "value": os.environ.get("OMP_WAIT_POLICY", "unset (libgomp default: spin briefly, then sleep)"),
        "set_by": "environment" if _OMP_POLICY_PRESET else "nobody",
    }
    return env


def engine_names(engines: list[Engine]) -> set[str]:
    return {e.name for e in engines}


def print_table(results: list[Result], engines: list[Engine], env: dict, timing: Timing) -> None:
    from rich.console import Console
    from rich.table import Table

    pairs = ratio_pairs(engines)
    table = Table(title="images/s (median of repeats; higher is better)")
    for column in ("model", "batch", "threads"):
        table.add_column(column)
    for e in engines:
        table.add_column(e.name, justify="right")
    speedup = "int8kit-int8" in engine_names(engines) and "int8kit-fp32" in engine_names(engines)
    if speedup:
        table.add_column("int8kit int8/fp32", justify="right")
    for ours, _ in pairs:
        table.add_column(f"{ours.precision} int8kit/ort", justify="right")
    rows: dict[tuple, dict[str, Result]] = {}
    for r in results:
        rows.setdefault((r.model, r.batch, r.threads), {})[r.engine] = r
    for (model, batch, threads), by_engine in rows.items():
        cells = [model, str(batch), str(threads)]
        cells += [f"{by_engine[e.name].images_per_s:.1f}" for e in engines]
        if speedup:
            cells.append(f"{by_engine['int8kit-int8'].images_per_s / by_engine['int8kit-fp32'].images_per_s:.2f}x")
        cells += [f"{by_engine[a.name].images_per_s / by_engine[b.name].images_per_s:.2f}x" for a, b in pairs]
        table.add_row(*cells)
    console = Console(width=None if sys.stdout.isatty() else 140)  # files and pipes get the whole table
    console.print(table)
    policy = env["omp_wait_policy"]
    console.print(
        f"CPU: {env['cpu']} ({env['cpu_count']} logical CPUs); oneDNN {env['onednn']['version']}, "
        f"ISA {env['onednn']['isa']}; onnxruntime {env['versions']['onnxruntime']}"
    )
    console.print(
        f"OMP_WAIT_POLICY={policy['value']} (set by {policy['set_by']}); onnxruntime thread spinning: default"
        + (f"; ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']}" if "ONEDNN_MAX_CPU_ISA" in os.environ else "")
    )
    console.print(
        f"timing: {timing.warmup} warm-up runs, median of {timing.repeats} repeats of >= {timing.min_time} s "
        "each; random-weight zoo models at 224x224"
    )


def _csv(kind):
    return lambda text: [kind(t) for t in text.split(",") if t]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    p.add_argument("--models", type=_csv(str), default=["resnet50", "mobilenet_v2"])
    p.add_argument("--batches", type=_csv(int), default=[1, 50])
    p.add_argument("--threads", type=_csv(int), default=[1, 2])
    p.add_argument(
        "--engines", type=_csv(str), default=list(DEFAULT_ENGINES), help=f"comma list of {', '.join(ENGINES)}"
    )
    p.add_argument("--json", type=Path, help="also write the results and environment as JSON here")
    args = p.parse_args(argv)
    unknown = [e for e in args.engines if e not in ENGINES]
    if unknown:
        p.error(f"unknown engines {unknown}; known: {', '.join(ENGINES)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    timing = QUICK if args.quick else Timing()
    engines = [ENGINES[name] for name in args.engines]
    env = environment_record()
    results = benchmark(args.models, args.batches, args.threads, engines, timing)
    print_table(results, engines, env, timing)
    if args.json:
        record = {"environment": env, "timing": asdict(timing), "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
