"""Shared fixtures: tiny synthetic CIFAR folders in the real pickle layout, one torch thread; the long tests first."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one intra-op thread per xdist worker: two workers × several OpenMP threads on 2 cores spin against each other
    torch.set_num_threads(1)

#: test files that hold minutes of work (one module-scoped run shared by their tests): collected first, so that
#: ``make test``'s ``pytest -n 2 --dist loadfile --no-loadscope-reorder`` starts them at once on one worker while the
#: many short test files fill the other. (``loadfile`` keeps a file's tests on one worker, so the run happens once;
#: without ``--no-loadscope-reorder`` pytest-xdist would hand out the files with the most tests first instead.)
LONG_FILES = ("test_paper_profile.py", "test_image_folder_notebooks.py", "test_train_runs_submitit.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        return LONG_FILES.index(item.path.name) if item.path.name in LONG_FILES else len(LONG_FILES)
    items.sort(key=rank)   # stable: everything else keeps its order


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH = 4  # images per CIFAR-10 batch file; CIFAR-100 train has 5 * PER_BATCH, test PER_BATCH


def _cifar_pixel(g, c, y, x):
    """Value of channel c, row y, column x of the g-th synthetic image (train images first, then test); works on
    ints and on broadcasting numpy arrays."""
    return (g * 11 + c * 50 + y * 3 + x) % 256


def _cifar_rows(first: int, n: int) -> np.ndarray:
    """uint8 (n, 3072) rows in CIFAR's layout: 1024 red, then 1024 green, then 1024 blue values, row-major."""
    g = np.arange(first, first + n)[:, None, None, None]
    c = np.arange(3)[None, :, None, None]
    y = np.arange(32)[None, None, :, None]
    x = np.arange(32)[None, None, None, :]
    return _cifar_pixel(g, c, y, x).astype(np.uint8).reshape(n, 3072)


def _dump(path, obj):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: tiny tensors, and a shared 2-core machine where OpenMP spinning costs 100×."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cifar_pixel():
    """The formula behind the synthetic CIFAR pixels: ``cifar_pixel(g, c, y, x) -> int``."""
    return _cifar_pixel


@pytest.fixture
def cifar_fixture_root(tmp_path):
    """A root holding ``cifar-10-batches-py/`` and ``cifar-100-python/`` with tiny synthetic files.

    CIFAR-10: 5 train batches of 4 images (global index g = 0..19) and a test batch of 4 (g = 20..23); label of
    image g is ``g % 10``. CIFAR-100: train 20 images (g = 0..19), test 4 (g = 20..23); fine label ``g % 100``.
    Pixel (g, channel c, row y, column x) = ``(g*11 + c*50 + y*3 + x) % 256`` (see the ``cifar_pixel`` fixture).
    """
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    for b in range(5):
        first = b * PER_BATCH
        _dump(c10 / f"data_batch_{b + 1}", {
            "batch_label": f"training batch {b + 1} of 5",
            "data": _cifar_rows(first, PER_BATCH),
            "labels": [g % 10 for g in range(first, first + PER_BATCH)],
            "filenames": [f"img_{g}.png" for g in range(first, first + PER_BATCH)],
        })
    n_train = 5 * PER_BATCH
    _dump(c10 / "test_batch", {"batch_label": "testing batch 1 of 1", "data": _cifar_rows(n_train, PER_BATCH),
                               "labels": [g % 10 for g in range(n_train, n_train + PER_BATCH)]})
    _dump(c10 / "batches.meta", {"label_names": CIFAR10_NAMES, "num_cases_per_batch": PER_BATCH,
                                 "num_vis": 3072})

    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    for split, first, n in (("train", 0, n_train), ("test", n_train, PER_BATCH)):
        gs = range(first, first + n)
        _dump(c100 / split, {"data": _cifar_rows(first, n), "fine_labels": [g % 100 for g in gs],
                             "coarse_labels": [g % 20 for g in gs], "filenames": [f"img_{g}.png" for g in gs]})
    _dump(c100 / "meta", {"fine_label_names": [f"fine_{i:03d}" for i in range(100)],
                          "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)]})
    return tmp_path


@pytest.fixture
def isolated_splits(tmp_path, monkeypatch):
    """Splits and runs under ``tmp_path`` (never the repository's data/), one torch thread, and torch's
    deterministic-algorithms flag (the CPU trainer switches it on) restored afterwards. Returns ``tmp_path``."""
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    monkeypatch.setenv("SEMSCALE_RUNS", str(tmp_path / "runs"))
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
