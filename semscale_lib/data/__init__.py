"""Datasets for semscale: small in-memory image sets, long-tailed splits (saved as text files), fetchers.

Images are uint8 (N, H, W, C) channels-last; labels int64 (N,). See ``loaders``, ``longtail`` and ``fetch``.
"""
from .fetch import FetchError, fetch_dataset, main_fetch
from .loaders import (
    DATASETS,
    DatasetUnavailableError,
    ImageArrays,
    ImageListDataset,
    load_dataset,
    read_idx,
    to_float_tensor,
)
from .longtail import (
    NAMED_PROFILES,
    load_split,
    long_tailed_counts,
    long_tailed_subset,
    make_long_tailed_indices,
    named_counts,
    nested_balanced_indices,
    save_split,
)

__all__ = [
    "DATASETS", "DatasetUnavailableError", "FetchError", "ImageArrays", "ImageListDataset", "NAMED_PROFILES",
    "fetch_dataset", "load_dataset", "load_split", "long_tailed_counts", "long_tailed_subset", "main_fetch",
    "make_long_tailed_indices", "named_counts", "nested_balanced_indices", "read_idx", "save_split",
    "to_float_tensor",
]
