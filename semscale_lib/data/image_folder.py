"""Your own images in torchvision's ImageFolder layout, loaded into an in-memory ``ImageArrays``.

Layouts (``root`` is the folder you give):

- **split**: ``root/train/<class>/<image>`` and ``root/test/<class>/<image>`` (``root/val/`` when there is no
  ``test/``); both must hold the same class folders.
- **flat**: ``root/<class>/<image>``; every class is split into train and test by a seeded, stratified draw:
  classes in sorted order, one ``np.random.default_rng(seed)`` (seed 0 by default), for a class of n images
  ``n_test = min(n − 1, max(1, floor(test_fraction · n + 0.5)))`` (test_fraction 0.2 by default) — at least one
  test and one training image, so a class needs 2 images — taken as the first n_test of
  ``rng.permutation(n)`` over the class's files sorted by path. The same tree, fraction and seed always give the
  same split.

Class names are the sorted class-folder names (label = position). Image files are found recursively inside a class
folder by extension (:data:`IMAGE_EXTENSIONS`, any case); other files and names starting with "." are ignored.
Within a set, images are ordered by class, then by path. Each image is read with PIL and squashed (aspect ratio not
kept) to ``image_size × image_size`` with Pillow's bilinear filter (antialiased when shrinking). Images are grey
(C = 1) when every file of the tree is stored grey (PIL modes in :data:`GREY_MODES`), else RGB (C = 3; alpha
dropped, palettes expanded), the same for both sets so that one model fits both.

The set is named ``imagefolder-<10 hex>`` (test set: ``…-test``), the hex a digest of the class names and of the
relative paths of the train and test files: a long-tailed split file (``data/splits/``, indices into the training
files) of one file list never serves another, and a copy of the tree elsewhere keeps its splits. A training run
records the tree's absolute path (``TrainConfig.image_root``), so runs of two trees never share a folder.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .loaders import DatasetUnavailableError, ImageArrays

NAME = "imagefolder"
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
DEFAULT_IMAGE_SIZE = 32
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_SEED = 0


@dataclass(frozen=True)
class FolderListing:
    """The files of an image-folder tree: ``classes`` (sorted folder names), ``train`` / ``test`` (lists of
    (path, label), ordered by label then path), ``layout`` ("split" or "flat") and ``digest`` (10 hex)."""
    classes: list[str]
    train: list[tuple[Path, int]]
    test: list[tuple[Path, int]]
    layout: str
    digest: str


def _class_files(folder: Path) -> dict[str, list[Path]]:
    """{class name: image files sorted by path} of the class folders in ``folder``; an empty class is an error."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {}
    for name in classes:
        found = sorted(p for p in (folder / name).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                       and not any(part.startswith(".") for part in p.relative_to(folder / name).parts))
        if not found:
            raise ValueError(f"class folder {folder / name} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
        files[name] = found
    return files


def _flat_split(files: dict[str, list[Path]], test_fraction: float, seed: int):
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, (name, paths) in enumerate(files.items()):
        n = len(paths)
        if n < 2:
            raise ValueError(f"class {name!r} has {n} image; a train/test split needs at least 2 per class (or give "
                             f"the tree train/ and test/ folders)")
        n_test = min(n - 1, max(1, math.floor(test_fraction * n + 0.5)))
        order = rng.permutation(n)
        test += [(paths[i], label) for i in sorted(order[:n_test])]
        train += [(paths[i], label) for i in sorted(order[n_test:])]
    return train, test


def list_image_folder(root, *, test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = DEFAULT_SEED
                      ) -> FolderListing:
    """Find the classes and the train/test files of an image-folder tree (see the module docstring for the two
    layouts). ``test_fraction`` (0 < f < 1) and ``seed`` only matter for the flat layout.

    Raises DatasetUnavailableError when ``root`` does not exist or holds no class folders, and ValueError for an
    empty class folder, a class of one image (flat layout), ``train/`` without ``test/``/``val/`` (or the reverse),
    or train and test folders with different classes."""
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number between 0 and 1 (exclusive), got {test_fraction!r}")
    if root is None or not str(root).strip():
        raise ValueError(f"{NAME} needs root=<folder holding <class>/<image> or train/ and test/>")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetUnavailableError(f"{NAME}: image folder {root} does not exist (or is not a folder)")
    train_dir = root / "train"
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if train_dir.is_dir() != (test_dir is not None):
        have, lack = ("train/", "test/ or val/") if train_dir.is_dir() else (f"{test_dir.name}/", "train/")
        raise ValueError(f"{root} has {have} but no {lack}: give both (split layout) or only <class>/ folders")
    folders = {"train": train_dir, "test": test_dir} if test_dir is not None else {"": root}
    found = {}
    for role, folder in folders.items():
        found[role] = _class_files(folder)
        if not found[role]:
            raise DatasetUnavailableError(f"{NAME}: {folder} holds no class folders (expected "
                                          f"{folder}/<class>/<image>.png, torchvision's ImageFolder layout)")
    if test_dir is not None:
        train_files, test_files = found["train"], found["test"]
        if list(train_files) != list(test_files):
            only_train = sorted(set(train_files) - set(test_files))
            only_test = sorted(set(test_files) - set(train_files))
            raise ValueError(f"{root}: train/ and {test_dir.name}/ must hold the same class folders; only in train/: "
                             f"{only_train}, only in {test_dir.name}/: {only_test}")
        classes = list(train_files)
        train = [(p, label) for label, paths in enumerate(train_files.values()) for p in paths]
        test = [(p, label) for label, paths in enumerate(test_files.values()) for p in paths]
        layout = "split"
    else:
        classes = list(found[""])
        train, test = _flat_split(found[""], float(test_fraction), int(seed))
        layout = "flat"
    listing = {"train": [(str(p.relative_to(root)), c) for p, c in train],
               "test": [(str(p.relative_to(root)), c) for p, c in test], "classes": classes}
    digest = hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()[:10]
    return FolderListing(classes, train, test, layout, digest)


def _mode(path: Path) -> str:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.mode
    except (OSError, SyntaxError, ValueError) as exc:   # PIL's UnidentifiedImageError is an OSError
        raise ValueError(f"cannot read image file {path}: {type(exc).__name__}: {exc}") from None


def _read(path: Path, size: int, grey: bool) -> np.ndarray:
    """uint8 (size, size) or (size, size, 3) of one image file."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("L" if grey else "RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot read image file {path}: {type(exc).__name__}: {exc}") from None
    return np.asarray(img, dtype=np.uint8)


def load_image_folder(root, *, train: bool = True, image_size: int = DEFAULT_IMAGE_SIZE,
                      test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = DEFAULT_SEED) -> ImageArrays:
    """The training (``train=True``) or test set of an image-folder tree as an ``ImageArrays``: uint8
    (N, image_size, image_size, C), C = 1 when every file is grey else 3; int64 labels; classes = sorted folder
    names. Errors: see :func:`list_image_folder`; an unreadable image file raises ValueError naming it."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer (pixels per side), got {image_size!r}")
    listing = list_image_folder(root, test_fraction=test_fraction, seed=seed)
    grey = all(_mode(path) in GREY_MODES for path, _ in listing.train + listing.test)
    files = listing.train if train else listing.test
    images = np.stack([_read(path, int(image_size), grey) for path, _ in files])
    if grey:
        images = images[..., None]
    labels = np.asarray([label for _, label in files], dtype=np.int64)
    name = f"{NAME}-{listing.digest}"
    return ImageArrays(images, labels, listing.classes, name if train else f"{name}-test")
