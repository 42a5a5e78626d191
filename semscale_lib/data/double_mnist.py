"""Double-MNIST: two MNIST digits side by side, 100 classes "00"–"99" — the multi-digit MNIST construction of
few-shot benchmarks, here balanced and built only from the MNIST IDX files, so that 100 classes of real images
(CIFAR-100's class count and size) exist on a machine that has MNIST.

Construction (deterministic, nothing cached on disk):

- Class ``10·a + b`` (name ``f"{a}{b}"``) shows digit ``a`` on the left and digit ``b`` on the right: images
  uint8 (N, 28, 56, 1), the left 28×28 half an MNIST image of digit ``a``, the right half one of digit ``b``,
  pixels copied unchanged.
- The training set is built from MNIST's 60,000 training digits only, the test set from its 10,000 test digits
  only, so no digit image is shared between the two sets. Sizes: :data:`PER_CLASS` = 500 per class for training
  (50,000 images, CIFAR-100's size), 100 per class for testing (10,000).
- Draw: one ``np.random.default_rng(SEED)`` per set (SEED = 0), classes visited in order 00, 01, …, 99; for class
  ``ab`` the left halves are drawn without replacement from digit ``a``'s images, then the right halves without
  replacement from digit ``b``'s. For ``a == b`` one draw of 2·n images without replacement is split into left
  and right halves, so no image appears twice in such a class. Within a class a digit image is thus used at most
  once per side. Across classes reuse is unavoidable and allowed: each digit serves 20 classes (10 as the left
  digit, 10 as the right), e.g. 500 × 20 = 10,000 draws from about 6,000 images of each digit in training.
- Samples are ordered by class (class 0's images first), the draw order within a class.
"""
from __future__ import annotations

import numpy as np

from .loaders import DatasetUnavailableError, ImageArrays, load_dataset

SEED = 0
#: Images per class: training set (from MNIST training digits), test set (from MNIST test digits).
PER_CLASS = {True: 500, False: 100}
NUM_DIGITS = 10
CLASSES = [f"{a}{b}" for a in range(NUM_DIGITS) for b in range(NUM_DIGITS)]
NAME = "double-mnist"


def draw_pairs(digit_labels: np.ndarray, per_class: int, *, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST indices of every Double-MNIST image: (left, right), each int64 (100 · per_class,), class-major
    (rows ``c·per_class … (c+1)·per_class − 1`` belong to class ``c = 10·a + b``).

    ``digit_labels``: int (N,) MNIST labels 0..9. Raises ValueError when a digit has fewer than ``per_class``
    images (``2 · per_class`` for the doubled classes "00", "11", …).
    """
    digit_labels = np.asarray(digit_labels)
    if digit_labels.ndim != 1 or not np.issubdtype(digit_labels.dtype, np.integer):
        raise ValueError(f"digit labels must be 1-D integers, got {digit_labels.dtype} {digit_labels.shape}")
    if int(per_class) != per_class or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    per_class = int(per_class)
    pools = [np.flatnonzero(digit_labels == d) for d in range(NUM_DIGITS)]
    short = {d: len(p) for d, p in enumerate(pools) if len(p) < 2 * per_class}
    if short:
        raise ValueError(f"Double-MNIST with {per_class} images per class needs at least {2 * per_class} images of "
                         f"every digit; digits with fewer: {short}")
    rng = np.random.default_rng(seed)
    left = np.empty((len(CLASSES), per_class), np.int64)
    right = np.empty_like(left)
    for a in range(NUM_DIGITS):
        for b in range(NUM_DIGITS):
            c = NUM_DIGITS * a + b
            if a == b:
                both = rng.choice(pools[a], size=2 * per_class, replace=False)
                left[c], right[c] = both[:per_class], both[per_class:]
            else:
                left[c] = rng.choice(pools[a], size=per_class, replace=False)
                right[c] = rng.choice(pools[b], size=per_class, replace=False)
    return left.reshape(-1), right.reshape(-1)


def compose(digits: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 56, C): ``digits[left]`` and ``digits[right]`` side by side (``digits``: (M, 28, 28, C))."""
    return np.concatenate([digits[left], digits[right]], axis=2)


def build(digit_images: np.ndarray, digit_labels: np.ndarray, *, train: bool, seed: int = SEED):
    """Double-MNIST images uint8 (N, 28, 56, 1) and labels int64 (N,) from MNIST's images (M, 28, 28, 1) and
    labels (M,) of the same set (training digits for ``train=True``, test digits otherwise)."""
    left, right = draw_pairs(digit_labels, PER_CLASS[bool(train)], seed=seed)
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), PER_CLASS[bool(train)])
    return compose(np.asarray(digit_images), left, right), labels


def load_double_mnist(*, train: bool = True, root=None, download: bool = False) -> ImageArrays:
    """Double-MNIST's training (50,000) or test (10,000) set as an ``ImageArrays``: uint8 (N, 28, 56, 1), int64
    labels, classes "00"–"99", name ``"double-mnist"`` / ``"double-mnist-test"``. ``root``/``download`` are
    MNIST's (see ``load_dataset("mnist")``); a missing MNIST raises ``DatasetUnavailableError``."""
    try:
        mnist = load_dataset("mnist", train=train, root=root, download=download)
    except DatasetUnavailableError as exc:
        raise DatasetUnavailableError(f"{NAME} is built from MNIST, which is not here ({exc}); "
                                      f"`python -m semscale_lib fetch {NAME}` fetches MNIST") from None
    images, labels = build(mnist.images, mnist.labels, train=train)
    return ImageArrays(images, labels, CLASSES, NAME if train else f"{NAME}-test")
