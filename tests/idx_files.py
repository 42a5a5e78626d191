"""Tiny synthetic IDX files (the MNIST / Fashion-MNIST format) shared by the data and fetch tests."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """``arr`` (uint8) in IDX layout: a 4-byte magic (0x08 = uint8, then the number of dimensions), the sizes."""
    magic = (0x0800 | arr.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train=6, n_test=4, gz=False) -> None:
    """The four files of an MNIST-like dataset (28×28 images, labels 0..9 in turn) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = (np.arange(n * 28 * 28) % 251).astype(np.uint8).reshape(n, 28, 28)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for stem, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            data = idx_bytes(arr)
            (folder / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
