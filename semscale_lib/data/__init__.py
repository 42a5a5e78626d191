"""Datasets for semscale: small in-memory image sets, long-tailed splits (saved as text files), fetchers.

Images are uint8 (N, H, W, C) channels-last; labels int64 (N,). See ``loaders`` (the registry ``DATASETS``),
``double_mnist`` (100 classes built from MNIST), ``image_folder`` (your own ``root/<class>/<image>`` tree),
``longtail`` and ``fetch``.
"""
from .fetch import FetchError, fetch_dataset, main_fetch
from .loaders import (
    DATASETS,
    RESIZABLE,
    DatasetUnavailableError,
    ImageArrays,
    ImageListDataset,
    load_dataset,
    read_idx,
    to_float_tensor,
)
from .double_mnist import load_double_mnist
from .image_folder import FolderListing, list_image_folder, load_image_folder
from .longtail import (
    NAMED_PROFILES,
    load_split,
    long_tailed_counts,
    long_tailed_subset,
    make_long_tailed_indices,
    named_counts,
    nested_balanced_indices,
    save_split,
    validation_indices,
)

__all__ = [
    "DATASETS", "DatasetUnavailableError", "FetchError", "FolderListing", "ImageArrays", "ImageListDataset",
    "NAMED_PROFILES", "RESIZABLE", "fetch_dataset", "list_image_folder", "load_dataset", "load_double_mnist",
    "load_image_folder", "load_split", "long_tailed_counts", "long_tailed_subset", "main_fetch",
    "make_long_tailed_indices", "named_counts", "nested_balanced_indices", "read_idx", "save_split",
    "to_float_tensor", "validation_indices",
]
