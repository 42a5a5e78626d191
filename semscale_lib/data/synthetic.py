"""Synthetic CIFAR-10 / CIFAR-100 files in torchvision's pickle layout (random pixels, classes equally represented):
what the paper profile's code paths run on where CIFAR itself cannot be downloaded (the tests, a GPU check on a
machine without internet). Nothing here is a result: the images carry no signal."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CIFAR_SUBDIR = "cifar"     # under the data root, as the loaders look for it


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def write_synthetic_cifar(root, *, train_per_class: int = 5000, test_per_class: int = 1000,
                          cifar100_train_per_class: int = 500, cifar100_test_per_class: int | None = None,
                          seed: int = 0) -> Path:
    """CIFAR-10 (``train_per_class`` / ``test_per_class`` images per class; the training images spread over its five
    batch files) and CIFAR-100 (``cifar100_train_per_class`` / ``cifar100_test_per_class``, default
    ``test_per_class``) under ``root/cifar``, uint8 random pixels from ``seed``. The defaults are CIFAR's own sizes
    except CIFAR-100's test set (100 per class: pass it). Refuses (ValueError) a folder that already holds CIFAR
    files. Returns ``root/cifar``."""
    for name, value in (("train_per_class", train_per_class), ("test_per_class", test_per_class),
                        ("cifar100_train_per_class", cifar100_train_per_class)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}")
    folder = Path(root) / CIFAR_SUBDIR
    c10, c100 = folder / "cifar-10-batches-py", folder / "cifar-100-python"
    if c10.exists() or c100.exists():
        raise ValueError(f"{folder} already holds CIFAR files; choose an empty data root")
    rng = np.random.default_rng(seed)

    def rows(labels):
        return rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)

    c10.mkdir(parents=True)
    train = np.tile(np.arange(10), train_per_class)
    for b, part in enumerate(np.array_split(train, 5)):
        _dump(c10 / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5", "data": rows(part),
                                            "labels": part.tolist()})
    test = np.tile(np.arange(10), test_per_class)
    _dump(c10 / "test_batch", {"batch_label": "testing batch 1 of 1", "data": rows(test), "labels": test.tolist()})
    _dump(c10 / "batches.meta", {"label_names": [f"class_{i}" for i in range(10)]})
    c100.mkdir(parents=True)
    for split, per_class in (("train", cifar100_train_per_class), ("test", cifar100_test_per_class or test_per_class)):
        labels = np.tile(np.arange(100), per_class)
        _dump(c100 / split, {"data": rows(labels), "fine_labels": labels.tolist(),
                             "coarse_labels": (labels % 20).tolist()})
    _dump(c100 / "meta", {"fine_label_names": [f"fine_{i:03d}" for i in range(100)],
                          "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)]})
    return folder


__all__ = ["write_synthetic_cifar"]
