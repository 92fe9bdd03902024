"""The seed's comparison table (FP32 vs INT8 accuracy and speed per model), as rows, CSV and a bar chart.

Accuracies are in percent, diffs in percentage points (INT8 - FP32), speed in images/s and the
INT8/FP32 speed ratio, like PaddleSlim's published table. The plot zooms its accuracy axis to the
differences (never below 0) and writes every value on its bar.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

from int8kit.errors import ConfigError
from int8kit.evaluate.tester import TestResult

logger = logging.getLogger(__name__)

COLUMNS = (
    "model",
    "FP32 top-1",
    "FP32 top-5",
    "INT8 top-1",
    "INT8 top-5",
    "top-1 diff",
    "top-5 diff",
    "FP32 img/s",
    "INT8 img/s",
    "INT8/FP32",
)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class Comparison:
    """One network measured twice: its FP32 model and its INT8 model on the same data."""

    name: str
    fp32: TestResult
    int8: TestResult

    @property
    def ratio(self) -> float:
        return self.int8.fps / self.fp32.fps

    def values(self) -> tuple[str | float | None, ...]:
        """The row's numbers in COLUMNS order (None where a file has no labels); accuracies in percent."""
        f, i = self.fp32, self.int8
        diffs = (_diff(f.top1, i.top1), _diff(f.top5, i.top5))
        return (self.name, f.top1, f.top5, i.top1, i.top5, *diffs, f.fps, i.fps, self.ratio)

    def rounded(self) -> tuple[str | float | None, ...]:
        """values() as the CSV stores them: percent and points to 2 decimals, images/s to 1, the ratio to 2.

        Diffs are taken between the rounded accuracies, so the CSV's columns agree with each other.
        """
        name, f1, f5, i1, i5, _, _, ffps, ifps, ratio = self.values()
        f1, f5, i1, i5 = (_round(v, 2) for v in (f1, f5, i1, i5))
        d1, d5 = (_round(_diff(a, b), 2) for a, b in ((f1, i1), (f5, i5)))
        return (name, f1, f5, i1, i5, d1, d5, round(ffps, 1), round(ifps, 1), round(ratio, 2))

    def formatted(self) -> tuple[str, ...]:
        """The row as the table shows it: accuracies with 2 decimals, signed diffs, speeds, ratio."""
        fmt = ["{}", "{:.2f}", "{:.2f}", "{:.2f}", "{:.2f}", "{:+.2f}", "{:+.2f}", "{:.1f}", "{:.1f}", "{:.2f}"]
        return tuple("n/a" if x is None else f.format(x) for f, x in zip(fmt, self.rounded(), strict=True))


def write_csv(comparisons: list[Comparison], path: str | Path) -> Path:
    """One row per network (numbers rounded as `Comparison.rounded`), with the settings they were measured with."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*COLUMNS, "batch size", "threads", "images", "FP32 backend", "INT8 backend", "cpu"])
        for c in comparisons:
            cfg = c.int8.config
            writer.writerow(
                [
                    *("" if v is None else v for v in c.rounded()),
                    cfg.batch_size,
                    cfg.num_threads,
                    c.int8.images,
                    c.fp32.config.backend,
                    cfg.backend,
                    c.int8.environment.get("cpu", ""),
                ]
            )
    return path


def require_matplotlib() -> None:
    """Raise a ConfigError saying how to install matplotlib (an optional extra) when it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("the plot needs matplotlib: pip install 'int8kit[plot]' (or leave out --plot)") from None


def accuracy_limits(values: list[float]) -> tuple[float, float]:
    """A y range that shows a 0.04-point difference: the values' span, padded, never below 0 or far past 100."""
    if not values:
        return 0.0, 100.0
    lo, hi = min(values), max(values)
    pad = max(0.3 * (hi - lo), 0.05)
    if hi == lo:
        pad = 1.0
    return max(0.0, lo - pad), hi + pad if hi + pad <= 100 or hi >= 100 else 100.0


def plot_title(comparisons: list[Comparison]) -> str:
    """What the numbers depend on: batch size, threads and CPU (each set listed when the runs differ)."""
    results = [r for c in comparisons for r in (c.fp32, c.int8)]

    def one(values: list) -> str:
        return ", ".join(str(v) for v in dict.fromkeys(values))

    batch = one([r.config.batch_size for r in results])
    threads = one([r.config.num_threads for r in results])
    cpu = one([r.environment.get("cpu", "unknown CPU") for r in results])
    return f"FP32 vs INT8: batch {batch}, {threads} thread(s), {cpu}"


def plot(comparisons: list[Comparison], path: str | Path) -> Path:
    """A PNG with two bar charts, FP32 beside INT8 for each network: top-1 accuracy (zoomed) and images/s."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [c.name for c in comparisons]
    xs = list(range(len(names)))
    width = 0.38
    fig = Figure(figsize=(max(8.0, 2.4 * len(names) + 3), 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(plot_title(comparisons), fontsize=10)
    acc_ax, fps_ax = fig.subplots(1, 2)

    rows = [c.rounded() for c in comparisons]
    fp32_acc, int8_acc, diffs = [r[1] for r in rows], [r[3] for r in rows], [r[5] for r in rows]
    known = [v for v in fp32_acc + int8_acc if v is not None]
    bottom, top = accuracy_limits(known)
    # Bars start at the axis bottom, so a zoomed axis shows their tops (and the difference) at full height.
    heights = [[(v if v is not None else bottom) - bottom for v in acc] for acc in (fp32_acc, int8_acc)]
    b1 = acc_ax.bar([x - width / 2 for x in xs], heights[0], width, bottom=bottom, label="FP32")
    b2 = acc_ax.bar([x + width / 2 for x in xs], heights[1], width, bottom=bottom, label="INT8")
    acc_ax.bar_label(b1, labels=["n/a" if v is None else f"{v:.2f}" for v in fp32_acc], fontsize=8)
    int8_labels = ["n/a" if v is None else f"{v:.2f}\n({d:+.2f})" for v, d in zip(int8_acc, diffs, strict=True)]
    acc_ax.bar_label(b2, labels=int8_labels, fontsize=8)
    acc_ax.set_ylim(bottom, top + 0.15 * (top - bottom))  # room for the labels above the bars
    acc_ax.set_title("top-1 accuracy (%), axis zoomed" if bottom > 0 else "top-1 accuracy (%)", fontsize=10)
    if not known:
        acc_ax.text(0.5, 0.5, "no labels in the data", transform=acc_ax.transAxes, ha="center")

    fp32_fps, int8_fps = [r[7] for r in rows], [r[8] for r in rows]
    f1 = fps_ax.bar([x - width / 2 for x in xs], fp32_fps, width, label="FP32")
    f2 = fps_ax.bar([x + width / 2 for x in xs], int8_fps, width, label="INT8")
    fps_ax.bar_label(f1, labels=[f"{v:.1f}" for v in fp32_fps], fontsize=8)
    fps_ax.bar_label(f2, labels=[f"{v:.1f}\n{r[9]:.2f}x" for v, r in zip(int8_fps, rows, strict=True)], fontsize=8)
    fps_ax.set_ylim(0, 1.15 * max(fp32_fps + int8_fps + [1e-9]))
    fps_ax.set_title("images / s (INT8/FP32 ratio)", fontsize=10)
    for ax in (acc_ax, fps_ax):
        ax.set_xticks(xs, names, rotation=20 if len(names) > 2 else 0, ha="right" if len(names) > 2 else "center")
        ax.tick_params(axis="x", labelsize=8)
    fig.legend(["FP32", "INT8"], loc="outside lower center", ncols=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    logger.info("wrote %s", path)
    return path
