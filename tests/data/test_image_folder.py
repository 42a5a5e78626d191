"""Your own images (semscale_lib.data.image_folder, dataset "imagefolder"): both layouts, the seeded stratified
split, grey/RGB, sizes, the long-tailed version, every error, and a short training run, on small generated trees.

Every generated image is one flat colour, so a resized pixel tells which file it came from."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import semscale_lib.data.run_data as run_data
from semscale_lib.data import DatasetUnavailableError, list_image_folder, load_dataset, load_image_folder
from semscale_lib.training import make_config, train

from image_trees import make_tree


def _decode(data) -> list[tuple[int, int]]:
    """(label, image index) of every image of a grey set, read back from its flat grey level."""
    values = data.images[:, 0, 0, 0].astype(int)
    return [(int(label), (int(v) - 10 - int(label)) // 12) for v, label in zip(values, data.labels)]


COUNTS = {"b_cat": 5, "a_dog": 10, "c": 6}


def test_flat_layout_classes_counts_shapes_and_the_documented_split(tmp_path):
    root = make_tree(tmp_path / "tree", COUNTS)
    (root / "a_dog" / ".DS_Store").write_bytes(b"junk")              # hidden files and folders are ignored
    (root / ".ipynb_checkpoints" / "x").mkdir(parents=True)
    (root / "notes.txt").write_text("not a class")
    train, test = (load_dataset("imagefolder", root=root, train=t) for t in (True, False))
    assert train.classes == test.classes == ["a_dog", "b_cat", "c"]
    # n_test = min(n − 1, max(1, floor(0.2 n + 0.5))): 10 → 2, 5 → 1, 6 → 1
    assert train.counts.tolist() == [8, 4, 5] and test.counts.tolist() == [2, 1, 1]
    assert train.images.shape == (17, 32, 32, 1) and train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert (train.images == train.images[:, :1, :1]).all()               # flat images stay flat when resized
    # the rule of the docstring, recomputed: classes in order, one rng, first n_test of a permutation are test
    rng = np.random.default_rng(0)
    expected_test = [(label, int(i)) for label, n in enumerate([10, 5, 6])
                     for i in sorted(rng.permutation(n)[:min(n - 1, max(1, math.floor(0.2 * n + 0.5)))])]
    assert _decode(test) == expected_test
    everything = sorted(_decode(train) + _decode(test))
    assert everything == [(label, i) for label, n in enumerate([10, 5, 6]) for i in range(n)]
    assert train.name.startswith("imagefolder-") and test.name == f"{train.name}-test"


def test_the_split_is_deterministic_and_follows_seed_and_fraction(tmp_path):
    root = make_tree(tmp_path / "tree", COUNTS)
    a, b = (load_image_folder(root, train=False, image_size=4) for _ in range(2))
    assert a.images.tobytes() == b.images.tobytes() and a.name == b.name
    other_seed = load_image_folder(root, train=False, image_size=4, seed=1)
    assert _decode(other_seed) != _decode(a) and other_seed.name != a.name
    half = load_image_folder(root, train=False, image_size=4, test_fraction=0.5)
    assert half.counts.tolist() == [5, 3, 3]                       # floor(0.5 · 5 + 0.5) = 3
    tiny = load_image_folder(root, train=True, image_size=4, test_fraction=0.01)
    assert tiny.counts.tolist() == [9, 4, 5]                       # at least one test image per class


def test_sizes_and_colour(tmp_path):
    grey = make_tree(tmp_path / "grey", COUNTS)
    assert load_dataset("imagefolder", root=grey, image_size=7).images.shape == (17, 7, 7, 1)
    mixed = make_tree(tmp_path / "mixed", COUNTS, rgb={"c"})
    data = load_dataset("imagefolder", root=mixed, image_size=5)
    test = load_dataset("imagefolder", root=mixed, image_size=5, train=False)
    assert data.images.shape == (17, 5, 5, 3) and test.images.shape[-1] == 3   # one RGB class makes all RGB
    grey_rows = data.images[data.labels != 2]
    assert (grey_rows == grey_rows[..., :1]).all()                  # grey images: three equal channels
    v = data.images[data.labels == 2][0, 0, 0]
    assert int(v[0]) + int(v[1]) == 255 and v[2] == 7
    Image.new("L", (6, 6), 200).save(grey / "c" / "extra.JPG", format="JPEG")   # any case
    assert load_dataset("imagefolder", root=grey, image_size=4).counts.sum() + \
        load_dataset("imagefolder", root=grey, image_size=4, train=False).counts.sum() == 22


def test_split_layout_with_test_or_val(tmp_path):
    root = tmp_path / "tree"
    make_tree(root / "train", {"x": 3, "y": 4})
    make_tree(root / "test", {"x": 1, "y": 2})
    train, test = (load_dataset("imagefolder", root=root, image_size=6, train=t) for t in (True, False))
    assert train.classes == test.classes == ["x", "y"]
    assert train.counts.tolist() == [3, 4] and test.counts.tolist() == [1, 2]
    assert _decode(train) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)]
    assert _decode(test) == [(0, 0), (1, 0), (1, 1)]
    assert list_image_folder(root).layout == "split"
    (root / "test").rename(root / "val")
    assert load_dataset("imagefolder", root=root, image_size=6, train=False).counts.tolist() == [1, 2]
    for role in ("train", "test"):                                  # one image per class is fine with train/ + test/
        make_tree(tmp_path / "one" / role, {"x": 1, "y": 1})
    assert load_dataset("imagefolder", root=tmp_path / "one", image_size=2).counts.tolist() == [1, 1]


def test_errors_are_one_clear_message(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="does not exist"):
        load_dataset("imagefolder", root=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="needs root="):
        load_dataset("imagefolder")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "loose.png").write_bytes(b"")
    with pytest.raises(DatasetUnavailableError, match="holds no class folders"):
        load_dataset("imagefolder", root=tmp_path / "empty")
    root = make_tree(tmp_path / "tree", {"a": 3, "b": 3})
    (root / "c").mkdir()
    (root / "c" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"class folder .*c holds no images"):
        load_dataset("imagefolder", root=root)
    (root / "c" / "readme.txt").unlink()
    (root / "c").rmdir()
    (root / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read image file .*broken\.png"):
        load_dataset("imagefolder", root=root)
    (root / "b" / "broken.png").unlink()
    make_tree(root, {"solo": 1})
    with pytest.raises(ValueError, match="class 'solo' has 1 image; a train/test split needs at least 2"):
        load_dataset("imagefolder", root=root)
    split = tmp_path / "split"
    make_tree(split / "train", {"a": 2})
    with pytest.raises(ValueError, match="has train/ but no test/ or val/"):
        load_dataset("imagefolder", root=split)
    make_tree(split / "test", {"b": 2})
    with pytest.raises(ValueError, match=r"same class folders; only in train/: \['a'\], only in test/: \['b'\]"):
        load_dataset("imagefolder", root=split)
    good = make_tree(tmp_path / "good", {"a": 2})
    for bad in (0, -4, 2.5, True):
        with pytest.raises(ValueError, match="image_size must be a positive integer"):
            load_dataset("imagefolder", root=good, image_size=bad)
    with pytest.raises(ValueError, match="test_fraction must be"):
        load_image_folder(good, test_fraction=1.0)
    with pytest.raises(ValueError, match="image_size is for imagefolder only"):
        load_dataset("digits", image_size=16)


def test_imagefolder_lt_and_config(tmp_path, isolated_splits, monkeypatch):
    root = make_tree(tmp_path / "tree", {"head": 15, "mid": 11, "tail": 9})   # train 12, 9, 7 after the split
    monkeypatch.chdir(tmp_path)
    config = make_config(dataset="imagefolder-lt", image_root="tree", imbalance_factor=4, image_size=8)
    assert config.data.image_root == str(root.resolve())                # absolute: the tree names the run
    images, split_file, _ = run_data.training_arrays(config.data)
    assert images.counts.tolist() == [7, 3, 1]                     # n_max 7 (smallest class), int(7 · 4^(−i/2))
    assert images.images.shape == (11, 8, 8, 1)
    name = Path(split_file).name
    assert name.startswith("imagefolder-") and name.endswith("-exp-if4-seed0.txt")
    assert Path(split_file).parent == isolated_splits / "splits"
    # split files are named by the tree's file list: a copy elsewhere shares it, another file list does not
    copy = make_tree(tmp_path / "copy", {"head": 15, "mid": 11, "tail": 9}, size=(5, 5))
    copy_config = make_config(dataset="imagefolder-lt", image_root=str(copy), imbalance_factor=4, image_size=8)
    assert Path(run_data.training_arrays(copy_config.data)[1]).name == name
    other = make_tree(tmp_path / "other", {"head": 15, "mid": 11, "tail": 10})
    other_config = make_config(dataset="imagefolder-lt", image_root=str(other), imbalance_factor=4, image_size=8)
    assert Path(run_data.training_arrays(other_config.data)[1]).name != name
    # runs are named by their settings, which hold the tree's absolute path: two trees never share a run
    assert config.to_dict()["image_root"] != copy_config.to_dict()["image_root"]
    with pytest.raises(ValueError, match="needs image_root"):
        make_config(dataset="imagefolder")
    with pytest.raises(ValueError, match="image_size must be an integer"):
        make_config(dataset="imagefolder", image_root=str(root), image_size=0)


def test_one_epoch_of_cnn_small_on_an_image_folder(tmp_path, isolated_splits):
    root = make_tree(tmp_path / "tree", {"a": 12, "b": 10, "c": 8}, rgb={"b"})
    config = make_config(dataset="imagefolder", image_root=str(root), image_size=16, model="cnn-small", epochs=1,
                         batch_size=4, warmup_epochs=0, device="cpu")
    out = train(config, out_dir=isolated_splits / "run", progress=False)
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["image_root"] == str(root.resolve()) and saved["train_counts"] == [10, 8, 6]
    per_class = pd.read_csv(out / "per_class.csv")
    assert per_class["name"].tolist() == ["a", "b", "c"] and per_class["test_count"].tolist() == [2, 2, 2]
    assert np.isfinite(pd.read_csv(out / "metrics.csv")["loss"]).all()
