"""Zoo benchmark: int8kit, OpenVINO and onnxruntime, FP32 and INT8 from the same QDQ file, on every zoo model.

Issue 8's measurement in one run. Per model (examples/zoo, 224x224 by default): the FP32 ONNX export; a QDQ model
from int8kit's own `quantize` (16 random calibration images); int8kit's INT8 model `convert`ed from it. Six engines
time each batch size: int8kit FP32 and INT8, OpenVINO FP32 and INT8 (the FP32 file and the QDQ file, CPU plugin,
INFERENCE_PRECISION_HINT=f32, PERFORMANCE_HINT=LATENCY, static shape per batch), onnxruntime FP32 and INT8 (the
same two files). Each engine first runs `--warmup` times untimed (int8kit compiles for the shape in the first;
the next ones let thread pools and caches settle); then the engines take turns for `--rounds` rounds, each
engine at least `--min-runs` runs and `--seconds`/rounds of timing per round after a `--settle` pause (0.3 s:
onnxruntime's and libgomp's worker threads spin for a while after a run, and without the pause they took
CPU from the next engine: MobileNetV2 INT8 batch 1, int8kit/OpenVINO 0.87x without, 1.01x with). An engine's
images/s is the median of its rounds (images / elapsed each); a ratio between two engines is the median of
their per-round ratios, so load from elsewhere on the machine, which drifts over seconds, cancels within a
round instead of deciding which engine's best round was the lucky one (on this project's shared VM, batch-1
rounds moved by a third between minutes; best-of-3 ratios swung 0.63x-1.03x on one unchanged model). The
table adds int8kit/OpenVINO at each precision and INT8/FP32 per engine family, starring the ratios that miss
issue 8's targets.

Every model runs in its own worker process under `--timeout` seconds (preparation included), so one pathological
model (a reference kernel, a hang) is reported as "timeout" and the run goes on; a failing engine is reported
with its error and the others still run. QDQ and INT8 files are cached beside the zoo's exports, keyed by a hash
of int8kit's sources, so they are rebuilt whenever int8kit changes.

    python bench/bench_zoo.py [--models resnet18,mnasnet1_0] [--size 224] [--batch 1,16] [--threads 2]
        [--seconds 3] [--timeout 900] [--engines int8kit-fp32,openvino-fp32,...] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench_models import _int8kit, _ort, environment_record  # noqa: E402

Runner = Callable[[np.ndarray], object]
ENGINES = ("int8kit-fp32", "openvino-fp32", "onnxruntime-fp32", "int8kit-int8", "openvino-int8", "onnxruntime-int8")
LIBRARIES = ("int8kit", "openvino", "onnxruntime")
TARGETS = {  # issue 8 "Done when": int8kit/OpenVINO FP32 >= 0.9, INT8 >= 1.0; int8kit INT8/FP32 >= 1.2 (b16), 1.0
    "fp32 int8kit/openvino": 0.9,
    "int8 int8kit/openvino": 1.0,
}


@dataclass(frozen=True)
class Settings:
    size: int = 224
    batches: tuple[int, ...] = (1, 16)
    threads: int = 2
    seconds: float = 3.0
    min_runs: int = 3
    warmup: int = 3
    rounds: int = 9
    settle: float = 0.3
    calibration_images: int = 16
    engines: tuple[str, ...] = ENGINES


@dataclass(frozen=True)
class Result:
    model: str
    batch: int
    engine: str
    status: str  # "ok", "timeout", or "error: <message>"
    images_per_s: float | None = None
    ms_per_batch: float | None = None  # median
    runs: int = 0
    round_rates: tuple[float, ...] = ()  # images/s of each interleaved round, in order


# ---- model files --------------------------------------------------------------------------------------------
def int8kit_source_hash() -> str:
    """12 hex digits over int8kit's sources: the QDQ and INT8 files depend on the quantizer and converter."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "src" / "int8kit").rglob("*.py")):
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class ModelFiles:
    """FP32, QDQ and INT8 files of one zoo model, each built on first use and cached on disk."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        self._paths: dict[str, Path] = {}
        self._failures: dict[str, Exception] = {}  # a failed build fails every engine needing it, once

    def _cached(self, kind: str, build: Callable[[Path], None]) -> Path:
        if kind in self._paths:
            return self._paths[kind]
        if kind in self._failures:
            raise self._failures[kind]
        fp32 = self.fp32()
        path = fp32.with_name(f"{fp32.stem}-{kind}-{self.settings.calibration_images}-{int8kit_source_hash()}.onnx")
        if not path.exists():
            start = time.perf_counter()
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            try:
                build(tmp)
                os.replace(tmp, path)
            except Exception as exc:
                self._failures[kind] = RuntimeError(f"{kind} build failed: {one_line(exc)}")
                raise self._failures[kind] from exc
            finally:
                tmp.unlink(missing_ok=True)
            log(f"  [{self.name}] built {kind} in {time.perf_counter() - start:.1f} s")
            for stale in path.parent.glob(f"{fp32.stem}-{kind}-*.onnx"):  # from older int8kit sources
                if stale != path:
                    stale.unlink(missing_ok=True)
        self._paths[kind] = path
        return path

    def fp32(self) -> Path:
        if "fp32" not in self._paths:
            from examples.zoo.export import export

            self._paths["fp32"] = export(self.name, self.settings.size)
        return self._paths["fp32"]

    def qdq(self) -> Path:
        def build(tmp: Path) -> None:
            import onnx

            from int8kit.quantize.api import QuantizeConfig, quantize_with_report

            n, size = self.settings.calibration_images, self.settings.size
            images = np.random.default_rng(1).standard_normal((n, 3, size, size)).astype(np.float32)
            config = QuantizeConfig(num_samples=n, batch_size=8, num_threads=self.settings.threads)
            onnx.save(quantize_with_report(str(self.fp32()), images, config).to_proto(), str(tmp))

        return self._cached("qdq", build)

    def int8(self) -> Path:
        def build(tmp: Path) -> None:
            import int8kit

            int8kit.save_model(int8kit.convert_model(str(self.qdq())), tmp)

        return self._cached("int8", build)


# ---- engines ------------------------------------------------------------------------------------------------
def _openvino(path: Path, threads: int, batch: int, size: int) -> Runner:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({model.inputs[0].any_name: [batch, 3, size, size]})  # static, as benchmark_app -shape does
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    request = core.compile_model(model, "CPU", config).create_infer_request()
    return lambda x: request.infer({0: x}, share_inputs=True)


def make_runner(engine: str, files: ModelFiles, batch: int) -> Runner:
    """A runner for one engine at one batch size (int8kit and onnxruntime run any batch; OpenVINO is reshaped)."""
    library, precision = engine.split("-")
    path = files.fp32() if precision == "fp32" else files.qdq()
    threads = files.settings.threads
    if library == "int8kit":
        return _int8kit(str(files.fp32() if precision == "fp32" else files.int8()), threads)
    if library == "openvino":
        return _openvino(path, threads, batch, files.settings.size)
    import onnx

    return _ort(onnx.load(str(path)), threads)


def time_round(run: Runner, x: np.ndarray, seconds: float, min_runs: int) -> tuple[float, float, int]:
    """(images/s, median ms per batch, runs) of one timing round: >= min_runs runs and >= seconds of them."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    return len(times) * x.shape[0] / elapsed, 1000 * statistics.median(times), len(times)


def time_runners(
    runners: dict[str, Runner], x: np.ndarray, settings: Settings
) -> dict[str, tuple[float, float, int, tuple[float, ...]]]:
    """Each runner's (median images/s, median ms, runs, images/s per round) over `rounds` interleaved timing
    rounds (A B C, A B C, ...), after `warmup` untimed runs; `ratios` pairs the engines round by round."""
    for run in runners.values():
        for _ in range(settings.warmup):
            run(x)
    rounds: dict[str, list[tuple[float, float, int]]] = {name: [] for name in runners}
    for _ in range(settings.rounds):
        for name, run in runners.items():
            time.sleep(settings.settle)  # the previous engine's spinning worker threads go idle first
            rounds[name].append(time_round(run, x, settings.seconds / settings.rounds, settings.min_runs))
    return {
        name: (
            statistics.median(r[0] for r in results),
            statistics.median(r[1] for r in results),
            sum(r[2] for r in results),
            tuple(r[0] for r in results),
        )
        for name, results in rounds.items()
    }


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


def run_model(name: str, settings: Settings, emit: Callable[[Result], None]) -> None:
    """Every engine at every batch size on one model, timed in interleaved rounds; results emitted per batch."""
    files = ModelFiles(name, settings)
    for batch in settings.batches:
        x = np.random.default_rng(batch).standard_normal((batch, 3, settings.size, settings.size)).astype(np.float32)
        runners: dict[str, Runner] = {}
        for engine in settings.engines:
            try:
                runners[engine] = make_runner(engine, files, batch)
                runners[engine](x)  # fails here rather than in the middle of the rounds
            except Exception as exc:  # noqa: BLE001 - one engine's failure is a result, not the end of the run
                if os.environ.get("BENCH_ZOO_TRACEBACK"):
                    traceback.print_exc()
                runners.pop(engine, None)
                emit(Result(name, batch, engine, f"error: {one_line(exc)}"))
        for engine, (rate, ms, runs, per_round) in time_runners(runners, x, settings).items():
            emit(Result(name, batch, engine, "ok", rate, ms, runs, per_round))
        runners.clear()


# ---- worker processes ---------------------------------------------------------------------------------------
def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def worker(name: str, settings: Settings) -> int:
    """Child process: one JSON line per result on stdout (the parent keeps them even if it kills us later)."""

    def emit(result: Result) -> None:
        print(json.dumps(asdict(result)), flush=True)
        rate = f"{result.images_per_s:.1f} img/s ({result.runs} runs)" if result.status == "ok" else result.status
        log(f"  {name} b{result.batch} {result.engine}: {rate}")

    run_model(name, settings, emit)
    return 0


def run_in_worker(name: str, settings: Settings, timeout: float) -> list[Result]:
    """Run one model in a child process; what it did not measure within `timeout` seconds is a "timeout"."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, *settings_args(settings)]
    status = None
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False)
        output = done.stdout
        if done.returncode != 0:
            status = f"error: worker exited with status {done.returncode}"
    except subprocess.TimeoutExpired as exc:  # run() has killed the worker
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        status = "timeout"
        log(f"  {name}: timeout after {timeout:.0f} s")
    results = [Result(**json.loads(line)) for line in output.splitlines() if line.startswith("{")]
    measured = {(r.batch, r.engine) for r in results}
    for batch in settings.batches:
        for engine in settings.engines:
            if (batch, engine) not in measured:
                results.append(Result(name, batch, engine, status or "error: no result from the worker"))
    return results


def settings_args(s: Settings) -> list[str]:
    return [
        f"--size={s.size}",
        f"--batch={','.join(map(str, s.batches))}",
        f"--threads={s.threads}",
        f"--seconds={s.seconds}",
        f"--min-runs={s.min_runs}",
        f"--rounds={s.rounds}",
        f"--settle={s.settle}",
        f"--warmup={s.warmup}",
        f"--calibration-images={s.calibration_images}",
        f"--engines={','.join(s.engines)}",
    ]


# ---- report -------------------------------------------------------------------------------------------------
def ratios(by_engine: dict[str, Result], batch: int) -> dict[str, float | None]:
    """Speed ratios between engines: the median of their per-round ratios (rounds interleave the engines)."""

    def ratio(a: str, b: str) -> float | None:
        x, y = by_engine.get(a), by_engine.get(b)
        if x is None or y is None or x.status != "ok" or y.status != "ok" or not x.images_per_s or not y.images_per_s:
            return None
        if len(x.round_rates) == len(y.round_rates) > 0:
            return statistics.median(p / q for p, q in zip(x.round_rates, y.round_rates, strict=True))
        return x.images_per_s / y.images_per_s

    out = {
        "fp32 int8kit/openvino": ratio("int8kit-fp32", "openvino-fp32"),
        "int8 int8kit/openvino": ratio("int8kit-int8", "openvino-int8"),
    }
    for library in LIBRARIES:
        out[f"{library} int8/fp32"] = ratio(f"{library}-int8", f"{library}-fp32")
    return out


def target(column: str, batch: int) -> float | None:
    if column == "int8kit int8/fp32":
        return 1.2 if batch >= 16 else 1.0
    return TARGETS.get(column)


def print_table(results: list[Result], settings: Settings, env: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    rows: dict[tuple[str, int], dict[str, Result]] = {}
    for r in results:
        rows.setdefault((r.model, r.batch), {})[r.engine] = r
    columns = list(ratios({}, 1))
    table = Table(title=f"images/s at {settings.size}x{settings.size}, {settings.threads} threads (higher is better)")
    table.add_column("model")
    table.add_column("batch", justify="right")
    for name in (*settings.engines, *columns):  # two-line headers keep the table narrow
        table.add_column(name.replace("-", "\n").replace(" ", "\n", 1).replace("/", "/\n"), justify="right")
    for (model, batch), by_engine in rows.items():
        cells = [model, str(batch)]
        for engine in settings.engines:
            r = by_engine.get(engine)
            if r is None or r.status == "ok":
                cells.append(f"{r.images_per_s:.1f}" if r else "-")
            else:
                cells.append("timeout" if r.status == "timeout" else "error")
        for column, value in ratios(by_engine, batch).items():
            goal = target(column, batch)
            miss = value is not None and goal is not None and value < goal
            cells.append("-" if value is None else f"{value:.2f}x" + ("*" if miss else ""))
        table.add_row(*cells)
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    errors = [r for r in results if r.status.startswith("error")]
    for r in errors:
        console.print(f"{r.model} b{r.batch} {r.engine}: {r.status}", markup=False)
    console.print(
        "* misses issue 8's target: int8kit/OpenVINO >= 0.9x FP32, >= 1.0x INT8; int8kit INT8/FP32 >= 1.2x at "
        "batch 16, >= 1.0x at batch 1"
    )
    console.print(
        f"CPU: {env['cpu']} ({env['cpu_count']} logical CPUs); oneDNN {env['onednn']['version']} ISA "
        f"{env['onednn']['isa']}; OpenVINO {env['openvino']}; onnxruntime {env['versions']['onnxruntime']}",
        markup=False,
    )
    console.print(
        f"timing: {settings.warmup} untimed runs, then {settings.rounds} interleaved rounds of "
        f">= {settings.min_runs} runs and >= {settings.seconds / settings.rounds:.2g} s per engine, each after a "
        f"{settings.settle:g} s pause; images/s the median round, ratios the median of per-round ratios; "
        f"int8kit QDQ from {settings.calibration_images} random calibration images; random weights",
        markup=False,
    )


def environment() -> dict:
    env = environment_record()
    try:
        import openvino

        env["openvino"] = openvino.get_version()
    except ImportError:
        env["openvino"] = "not installed"
    return env


# ---- command line -------------------------------------------------------------------------------------------
def _csv(kind):
    return lambda text: tuple(kind(t) for t in text.split(",") if t)


def parse_args(argv=None) -> argparse.Namespace:
    from examples.zoo.export import MODELS, TRANSFORMERS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models",
        type=_csv(str),
        default=tuple(MODELS),
        help="comma list (default: the whole zoo; also convnext_tiny, vit_b_16)",
    )
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=_csv(int), default=(1, 16), help="comma list of batch sizes (default 1,16)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per engine and batch (default 3)")
    p.add_argument("--min-runs", type=int, default=3, help="timed runs at least (default 3)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    p.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds; medians are reported (default 9)")
    p.add_argument(
        "--settle",
        type=float,
        default=0.3,
        help="seconds of pause before each engine's round, so the previous engine's spinning threads go idle "
        "(default 0.3)",
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per model, preparation included")
    p.add_argument("--calibration-images", type=int, default=16)
    p.add_argument("--engines", type=_csv(str), default=ENGINES, help=f"comma list of {', '.join(ENGINES)}")
    p.add_argument("--json", type=Path, help="also write the results and environment as JSON here")
    p.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    unknown = [m for m in (*args.models, *([args.worker] if args.worker else [])) if m not in {*MODELS, *TRANSFORMERS}]
    if unknown:
        p.error(f"unknown models {', '.join(unknown)}; known: {', '.join([*MODELS, *TRANSFORMERS])}")
    bad = [e for e in args.engines if e not in ENGINES]
    if bad:
        p.error(f"unknown engines {', '.join(bad)}; known: {', '.join(ENGINES)}")
    if args.size < 32 or args.threads < 1 or args.seconds < 0 or min(args.min_runs, args.rounds) < 1 or args.warmup < 0:
        p.error("need --size >= 32, --threads >= 1, --seconds >= 0, --min-runs, --rounds >= 1 and --warmup >= 0")
    if not args.batch or min(args.batch) < 1:
        p.error("need positive batch sizes")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = Settings(
        size=args.size,
        batches=args.batch,
        threads=args.threads,
        seconds=args.seconds,
        min_runs=args.min_runs,
        rounds=args.rounds,
        settle=args.settle,
        warmup=args.warmup,
        calibration_images=args.calibration_images,
        engines=args.engines,
    )
    if args.worker:
        return worker(args.worker, settings)
    env = environment()
    results: list[Result] = []
    for name in args.models:
        log(f"{name}:")
        results += run_in_worker(name, settings, args.timeout)
    print_table(results, settings, env)
    if args.json:
        record = {
            "environment": env,
            "settings": asdict(settings),
            "timeout_s": args.timeout,
            "results": [asdict(r) for r in results],
            "ratios": [
                {"model": m, "batch": b, **ratios({r.engine: r for r in results if (r.model, r.batch) == (m, b)}, b)}
                for m, b in dict.fromkeys((r.model, r.batch) for r in results)
            ],
        }
        args.json.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
