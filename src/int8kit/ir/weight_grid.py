"""The int8 grid a QDQ file put a weight on, carried along while passes rewrite the weight.

A QDQ model stores a weight as int8 values q with scales s (per tensor or per output channel) behind
a DequantizeLinear. The converter removes that DequantizeLinear to fold BatchNorm and retype Gemm into
Dense on float weights, but the INT8 model must use the file's grid, not a new one: each such float
weight value carries its grid in `value.meta`, and every pass that rewrites the weight derives the new
grid (BN fold scales it per channel, Gemm -> Dense transposes it). The grid is exact: the float
weight is q * scale along `axis`, so the int8 values come back by one division.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

# GRID_REFUSED_KEY is set instead of GRID_KEY when int8 cannot hold the file's grid exactly (why, for the summary).
from int8kit.metadata import GRID_KEY, GRID_REFUSED_KEY  # noqa: F401


@dataclass(frozen=True)
class WeightGrid:
    """scales: one per slice along `axis` (or a single one for per-tensor grids)."""

    scales: np.ndarray
    axis: int = 0

    def per_channel(self, weight: np.ndarray, axis: int = 0) -> np.ndarray:
        """The scales as one per slice of `weight` along `axis` (a per-tensor scale is repeated)."""
        if self.scales.size == 1:
            return np.full(weight.shape[axis], float(self.scales.reshape(-1)[0]), dtype=np.float64)
        if self.axis % weight.ndim != axis % weight.ndim:
            raise ValueError(f"the grid runs along axis {self.axis}, not {axis}")
        return self.scales.astype(np.float64).reshape(-1)


def grid_of(value: ir.Value | None) -> WeightGrid | None:
    return None if value is None else value.meta.get(GRID_KEY)


def set_grid(value: ir.Value, grid: WeightGrid) -> None:
    value.meta[GRID_KEY] = grid


def scaled(grid: WeightGrid, weight: np.ndarray, factor: np.ndarray) -> WeightGrid:
    """The grid after the weight was multiplied by `factor` per output channel (axis 0): a BN fold."""
    return WeightGrid(grid.per_channel(weight, 0) * factor.astype(np.float64).reshape(-1), 0)


def transposed(grid: WeightGrid) -> WeightGrid:
    """The grid of the transposed 2-D weight."""
    return WeightGrid(grid.scales, 1 - grid.axis % 2)
