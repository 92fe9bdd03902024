"""Data files and image preprocessing: the seed's float32 layout, a compact uint8 layout, readers."""

from int8kit.data.compact_format import CompactReader, write_compact
from int8kit.data.images import ImageSpec
from int8kit.data.open_data import Dataset, open_dataset
from int8kit.data.seed_format import SeedReader, write_seed

__all__ = [
    "CompactReader",
    "Dataset",
    "ImageSpec",
    "SeedReader",
    "open_dataset",
    "write_compact",
    "write_seed",
]
