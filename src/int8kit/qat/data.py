"""Labelled images for QAT: a Fashion-MNIST idx folder (the Debian package) or a labelled int8kit data file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from int8kit.errors import DataError


def load_labelled(path: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(float32 normalised images N x C x H x W, int64 labels); `split` picks train/test of an idx folder."""
    path = Path(path)
    if path.is_dir():
        from int8kit.data.images import normalize
        from int8kit.examples import fashion_mnist

        images, labels = fashion_mnist.load_split(split, path)  # type: ignore[arg-type]
        return normalize(images[:, None], fashion_mnist.MEAN, fashion_mnist.STD), labels
    from int8kit.data.open_data import open_dataset

    data = open_dataset(path)
    if data.labels is None:
        raise DataError(f"{path}: QAT needs labelled images (a compact file or seed file with labels)")
    return data.batch(0, len(data)), np.asarray(data.labels, dtype=np.int64)
