"""The seed's comparison table (FP32 vs INT8 accuracy and speed per model), as rows, CSV and a bar chart.

Accuracies are shown in percent, diffs in percentage points (INT8 - FP32), speed in images/s and the
INT8/FP32 speed ratio, like PaddleSlim's published table.
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


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else 100 * (b - a)


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
        """The row's numbers in COLUMNS order (None where a file has no labels)."""
        f, i = self.fp32, self.int8
        return (
            self.name,
            _pct(f.top1),
            _pct(f.top5),
            _pct(i.top1),
            _pct(i.top5),
            _diff(f.top1, i.top1),
            _diff(f.top5, i.top5),
            f.fps,
            i.fps,
            self.ratio,
        )

    def formatted(self) -> tuple[str, ...]:
        """The row as the table shows it: accuracies with 2 decimals, signed diffs, speeds, ratio."""
        v = self.values()
        fmt = [
            "{}",
            "{:.2f}",
            "{:.2f}",
            "{:.2f}",
            "{:.2f}",
            "{:+.2f}",
            "{:+.2f}",
            "{:.2f}",
            "{:.2f}",
            "{:.2f}",
        ]
        return tuple("n/a" if x is None else f.format(x) for f, x in zip(fmt, v, strict=True))


def write_csv(comparisons: list[Comparison], path: str | Path) -> Path:
    """Full-precision numbers, one row per network, with the settings they were measured with."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*COLUMNS, "batch size", "threads", "images", "FP32 backend", "INT8 backend", "cpu"])
        for c in comparisons:
            cfg = c.int8.config
            writer.writerow(
                [
                    *("" if v is None else v for v in c.values()),
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


def plot(comparisons: list[Comparison], path: str | Path) -> Path:
    """A PNG with two bar charts: top-1 accuracy and images/s, FP32 beside INT8 for each network."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [c.name for c in comparisons]
    xs = range(len(names))
    width = 0.38
    fig = Figure(figsize=(max(8.0, 2.4 * len(names) + 3), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    panels = [
        (
            "top-1 accuracy (%)",
            [_pct(c.fp32.top1) or 0 for c in comparisons],
            [_pct(c.int8.top1) or 0 for c in comparisons],
        ),
        ("images / s", [c.fp32.fps for c in comparisons], [c.int8.fps for c in comparisons]),
    ]
    for ax, (title, fp32, int8) in zip(fig.subplots(1, 2), panels, strict=True):
        ax.bar([x - width / 2 for x in xs], fp32, width, label="FP32")
        bars = ax.bar([x + width / 2 for x in xs], int8, width, label="INT8")
        if title.startswith("images"):
            ax.bar_label(bars, labels=[f"{c.ratio:.2f}x" for c in comparisons], fontsize=8)
        ax.set_xticks(list(xs), names, rotation=20, ha="right", fontsize=8)
        ax.set_title(title)
        ax.margins(y=0.15)  # room above the bars for the ratio labels and the legend
    fig.legend(["FP32", "INT8"], loc="outside lower center", ncols=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    logger.info("wrote %s", path)
    return path
