"""Labelled images for QAT: an idx folder (e.g. the Debian package dataset-fashion-mnist) or a labelled data file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from int8kit.errors import DataError


def load_labelled(path: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(float32 normalised images N x C x H x W, int64 labels); `split` picks train/test of an idx folder."""
    path = Path(path)
    if path.is_dir():
        from int8kit.data.idx import load_idx_split, pixel_statistics
        from int8kit.data.images import normalize

        images, labels = load_idx_split(path, split)
        train = images if split == "train" else load_idx_split(path, "train")[0]
        mean, std = pixel_statistics(train)  # normalised by the training split's statistics
        return normalize(images[:, None], (mean,), (std,)), labels
    from int8kit.data.open_data import open_dataset

    data = open_dataset(path)
    if data.labels is None:
        raise DataError(f"{path}: QAT needs labelled images (a compact file or seed file with labels)")
    return data.batch(0, len(data)), np.asarray(data.labels, dtype=np.int64)
