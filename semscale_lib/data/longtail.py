"""Long-tailed class counts, index draws, nested balanced subsets and saved split files.

Conventions
-----------
- Labels are int arrays of shape (N,) with values in ``0..C-1``; index arrays returned here are int64.
- ``"exp"`` profile: ``n_i = int(n_max * (1/IF) ** (i / (C - 1)))`` for ``i = 0..C-1`` — the LDAM-DRW / "CIFAR-LT"
  convention (the float is truncated, so CIFAR-100-LT IF=100 with n_max=500 has 10,847 images and CIFAR-10-LT
  IF=100 with n_max=5000 has 12,406).
- ``"step"`` profile: the first ``ceil(C/2)`` classes keep ``n_max``, the rest get ``int(n_max / IF)``; for odd C
  the extra (middle) class is in the head half [ours].
- Named profiles are the paper's MNIST-LT counts (Table 8).
- A split file is plain text: ``# key: <json value>`` header lines, then one index per line (see ``save_split``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from .. import paths

if TYPE_CHECKING:  # pragma: no cover
    from .loaders import ImageArrays

NAMED_PROFILES: dict[str, list[int]] = {
    "mnist-lt-1": [5923, 3590, 2940, 2518, 2256, 1972, 1700, 1300, 1100, 900],
    "mnist-lt-2": [5923, 3090, 2540, 1818, 1356, 972, 484, 272, 122, 74],
}
PARAMETRIC_PROFILES = ("exp", "step")


# ----------------------------------------------------------------------------------------------------------- counts
def long_tailed_counts(n_max: int, num_classes: int, imbalance_factor: float, profile: str = "exp") -> list[int]:
    """Per-class sample counts (list of ``num_classes`` ints, class 0 = head) for an imbalance factor ``IF``.

    ``profile="exp"``: ``int(n_max * (1/IF) ** (i/(C-1)))``; ``profile="step"``: ``n_max`` for the first
    ``ceil(C/2)`` classes, ``int(n_max/IF)`` for the rest. ``IF == 1`` gives ``[n_max] * C``.
    Raises ValueError for ``IF < 1`` (or not finite), ``num_classes < 1``, ``n_max < 1`` or an unknown profile.
    """
    imbalance_factor = float(imbalance_factor)
    if not math.isfinite(imbalance_factor) or imbalance_factor < 1:
        raise ValueError(f"imbalance_factor must be a finite number >= 1, got {imbalance_factor}")
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes}")
    if int(n_max) != n_max or n_max < 1:
        raise ValueError(f"n_max must be a positive integer, got {n_max}")
    n_max, num_classes = int(n_max), int(num_classes)
    if profile == "exp":
        if num_classes == 1:
            return [n_max]
        ratio = 1.0 / imbalance_factor
        return [int(n_max * ratio ** (i / (num_classes - 1.0))) for i in range(num_classes)]
    if profile == "step":
        n_head = (num_classes + 1) // 2
        return [n_max] * n_head + [int(n_max / imbalance_factor)] * (num_classes - n_head)
    raise ValueError(
        f"unknown profile {profile!r}: parametric profiles are {list(PARAMETRIC_PROFILES)}; "
        f"named profiles (use named_counts) are {sorted(NAMED_PROFILES)}"
    )


def named_counts(name: str) -> list[int]:
    """The counts of a named profile (a copy), e.g. ``named_counts("mnist-lt-1")``; ValueError lists valid names."""
    if name not in NAMED_PROFILES:
        raise ValueError(f"unknown named profile {name!r}; valid names: {sorted(NAMED_PROFILES)}")
    return list(NAMED_PROFILES[name])


# ---------------------------------------------------------------------------------------------------------- drawing
def _labels_array(labels, num_classes: int | None) -> tuple[np.ndarray, int]:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got dtype {labels.dtype} shape {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative")
    inferred = int(labels.max()) + 1 if labels.size else 0
    if num_classes is None:
        num_classes = inferred
    elif num_classes < inferred:
        raise ValueError(f"num_classes={num_classes} but labels go up to {inferred - 1}")
    return labels.astype(np.int64, copy=False), int(num_classes)


def make_long_tailed_indices(
    labels, counts: Sequence[int], *, seed: int, num_classes: int | None = None
) -> np.ndarray:
    """Draw ``counts[c]`` indices of class ``c`` uniformly without replacement; returns sorted int64 indices.

    ``labels``: int array (N,). ``len(counts)`` must equal the number of classes (``num_classes`` if given, else
    ``labels.max() + 1``). Uses one ``np.random.default_rng(seed)`` visiting classes in order, so the result is
    deterministic per seed. A class with fewer than ``counts[c]`` samples raises ValueError.
    """
    labels, num_classes = _labels_array(labels, num_classes)
    counts = [int(n) for n in counts]
    if len(counts) != num_classes:
        raise ValueError(f"len(counts)={len(counts)} but the labels have {num_classes} classes")
    rng = np.random.default_rng(seed)
    picked = []
    for c, n in enumerate(counts):
        if n < 0:
            raise ValueError(f"counts[{c}] = {n} is negative")
        pool = np.flatnonzero(labels == c)
        if pool.size < n:
            raise ValueError(f"class {c} has only {pool.size} samples but {n} were requested")
        picked.append(rng.choice(pool, size=n, replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64) if picked else np.zeros(0, np.int64)


def nested_balanced_indices(
    labels, sizes: Iterable[int], *, seed: int, num_classes: int | None = None
) -> dict[int, np.ndarray]:
    """Nested sample-balanced subsets for the marginal-effect study (Sec. 3.3; docs/paper-notes.md §4).

    One random permutation per class is drawn once (``np.random.default_rng(seed)``, classes in order); the
    subset for size ``m`` takes the first ``m`` of every class's permutation, so ``m1 < m2`` implies
    ``subset(m1) ⊂ subset(m2)``. Returns ``{m: sorted int64 indices of length m * C}``.
    A size larger than the smallest class (or < 1) raises ValueError.
    """
    labels, num_classes = _labels_array(labels, num_classes)
    sizes = [int(m) for m in sizes]
    smallest = min((int(np.sum(labels == c)) for c in range(num_classes)), default=0)
    for m in sizes:
        if m < 1 or m > smallest:
            raise ValueError(f"size {m} must be between 1 and the smallest class's count ({smallest})")
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(np.flatnonzero(labels == c)) for c in range(num_classes)]
    return {m: np.sort(np.concatenate([p[:m] for p in perms])).astype(np.int64) for m in sizes}


def validation_indices(labels, fraction: float, *, seed: int, num_classes: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """A validation split carved out of a training set, class by class (ours: for judging when training has
    reached its plateau without looking at the test set).

    Every class c gives ⌊``fraction`` · n_c⌋ of its images to validation, drawn by one permutation per class
    (``np.random.default_rng((seed, 1))``, classes in order; a class too small to give one keeps all its images).
    Returns (training indices, validation indices), each sorted int64; together they are every index once.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"the validation fraction must lie in [0, 1), got {fraction}")
    labels, num_classes = _labels_array(labels, num_classes)
    rng = np.random.default_rng((int(seed), 1))
    held = [rng.permutation(np.flatnonzero(labels == c))[:math.floor(fraction * np.sum(labels == c))]
            for c in range(num_classes)]
    validation = np.sort(np.concatenate(held)).astype(np.int64) if held else np.zeros(0, np.int64)
    keep = np.ones(len(labels), dtype=bool)
    keep[validation] = False
    return np.flatnonzero(keep).astype(np.int64), validation


# ------------------------------------------------------------------------------------------------------ split files
def _indices_sha256(indices: np.ndarray) -> str:
    """sha256 (hex) of the indices written as decimal text, one per line, ``\\n``-joined, no trailing newline."""
    text = "\n".join(str(int(i)) for i in indices)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"meta value of type {type(obj).__name__} is not JSON-serialisable")


def save_split(path, indices, *, meta: dict) -> Path:
    """Write a split file: ``# key: <json>`` header lines (``meta`` plus ``n_total`` and ``sha256``), then one index
    per line. ``indices``: 1-D non-negative ints, written in the given order. Written atomically. Returns the path."""
    path = Path(path)
    indices = np.asarray(indices)
    if indices.ndim != 1 or (indices.size and not np.issubdtype(indices.dtype, np.integer)):
        raise ValueError("indices must be a 1-D integer array")
    if indices.size and indices.min() < 0:
        raise ValueError("indices must be non-negative")
    header = {k: v for k, v in meta.items() if k not in ("n_total", "sha256")}
    header["n_total"] = int(indices.size)
    header["sha256"] = _indices_sha256(indices)
    lines = ["# semscale split file: header '# key: <json value>', then one dataset index per line"]
    for key, value in header.items():
        if not isinstance(key, str) or not key or ":" in key or "\n" in key or key != key.strip():
            raise ValueError(f"bad meta key {key!r}")
        lines.append(f"# {key}: {json.dumps(value, default=_json_default)}")
    lines.extend(str(int(i)) for i in indices)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; split files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_split(path) -> tuple[np.ndarray, dict]:
    """Read a split file written by ``save_split``: returns (int64 indices in file order, meta dict).

    Raises ValueError when the file is corrupt: unparsable lines, index count != ``n_total``, sha256 mismatch.
    """
    path = Path(path)
    meta: dict = {}
    values: list[int] = []
    with open(path, encoding="ascii") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith("#"):
                if values:
                    raise ValueError(f"{path}:{lineno}: header line after the indices")
                body = line[1:].strip()
                key, sep, value = body.partition(": ")
                if not sep or " " in key:
                    continue  # free-text comment line
                try:
                    meta[key] = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: bad JSON value for {key!r}: {exc}") from None
                continue
            try:
                values.append(int(line))
            except ValueError:
                raise ValueError(f"{path}:{lineno}: not an integer index: {line[:40]!r}") from None
    indices = np.asarray(values, dtype=np.int64)
    if "n_total" not in meta or "sha256" not in meta:
        raise ValueError(f"{path}: missing n_total/sha256 header; not a semscale split file")
    if indices.size != meta["n_total"]:
        raise ValueError(f"{path}: corrupt split file: {indices.size} indices but header says n_total={meta['n_total']}")
    if _indices_sha256(indices) != meta["sha256"]:
        raise ValueError(f"{path}: corrupt split file: sha256 of the indices does not match the header")
    return indices, meta


# -------------------------------------------------------------------------------------------------- dataset subsets
def _split_file_name(dataset: str, profile: str, imbalance_factor, counts: list[int], seed: int, custom: bool) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in dataset)
    if custom:
        digest = hashlib.sha256(json.dumps(counts).encode()).hexdigest()[:10]
        return f"{safe}-custom-{digest}-seed{seed}.txt"
    if profile in NAMED_PROFILES:
        return f"{safe}-{profile}-seed{seed}.txt"
    return f"{safe}-{profile}-if{imbalance_factor:g}-seed{seed}.txt"


def long_tailed_subset(
    data: "ImageArrays",
    *,
    imbalance_factor: float | None = None,
    profile: str = "exp",
    counts: Sequence[int] | None = None,
    seed: int = 0,
    split_dir=None,
    save: bool = True,
) -> tuple["ImageArrays", Path | None]:
    """A long-tailed subset of ``data`` and the split file that defines it.

    Counts come from, in order: ``counts`` (explicit; file name ``{dataset}-custom-{hash}-seed{seed}.txt``), a
    named profile (``profile="mnist-lt-1"``; ``{dataset}-{profile}-seed{seed}.txt``), or ``profile="exp"/"step"``
    with ``imbalance_factor`` and ``n_max`` = the smallest class count of ``data`` (the largest size every class
    can supply; equal to the class size on balanced sets such as CIFAR or Fashion-MNIST)
    (``{dataset}-{profile}-if{IF:g}-seed{seed}.txt``). ``dataset`` is ``data.name``.

    If that file exists under ``split_dir`` (default ``paths.splits_root()``) it is loaded — its meta must match
    (dataset, counts, seed) and its indices must reproduce the counts, else ValueError — instead of re-drawing.
    Otherwise the indices are drawn with ``make_long_tailed_indices`` and saved when ``save`` is true.
    Returns (subset named after the file stem, path or None when nothing was saved or loaded).
    """
    custom = counts is not None
    if custom:
        counts = [int(n) for n in counts]
    elif profile in NAMED_PROFILES:
        if imbalance_factor is not None:
            raise ValueError(f"named profile {profile!r} fixes the counts; do not pass imbalance_factor")
        counts = named_counts(profile)
    elif profile in PARAMETRIC_PROFILES:
        if imbalance_factor is None:
            raise ValueError(f"profile {profile!r} needs an imbalance_factor")
        counts = long_tailed_counts(int(data.counts.min()), data.num_classes, imbalance_factor, profile)
    else:
        raise ValueError(f"unknown profile {profile!r}; valid: {list(PARAMETRIC_PROFILES) + sorted(NAMED_PROFILES)}")
    if len(counts) != data.num_classes:
        raise ValueError(f"{len(counts)} counts given but {data.name!r} has {data.num_classes} classes")

    name = _split_file_name(data.name, "custom" if custom else profile, imbalance_factor, counts, seed, custom)
    path = Path(split_dir) if split_dir is not None else paths.splits_root()
    path = path / name
    if path.exists():
        indices, meta = load_split(path)
        expected = {"dataset": data.name, "counts": counts, "seed": seed}
        bad = {k: (meta.get(k), v) for k, v in expected.items() if meta.get(k) != v}
        if bad:
            details = "; ".join(f"{k}: file has {got!r}, wanted {want!r}" for k, (got, want) in bad.items())
            raise ValueError(f"{path}: split file does not match the request ({details})")
        if indices.size and (indices.max() >= len(data.labels)):
            raise ValueError(f"{path}: indices go beyond the {len(data.labels)} samples of {data.name!r}")
        got = np.bincount(data.labels[indices], minlength=data.num_classes).tolist()
        if got != counts:
            raise ValueError(f"{path}: indices give class counts {got}, not {counts}: was it drawn from other data?")
    else:
        indices = make_long_tailed_indices(data.labels, counts, seed=seed, num_classes=data.num_classes)
        meta = {
            "dataset": data.name,
            "profile": "custom" if custom else profile,
            "imbalance_factor": imbalance_factor,
            "seed": seed,
            "counts": counts,
            "num_classes": data.num_classes,
            "n_source": int(len(data.labels)),
        }
        if save:
            save_split(path, indices, meta=meta)
        else:
            path = None
    return dataclasses.replace(data.subset(indices), name=Path(name).stem), path
