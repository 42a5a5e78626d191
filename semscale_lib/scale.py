"""Semantic scale of a class: the paper's Eq. 3, computed stably and in batches.

For one class with m vectors z_1..z_m in R^d (rows of ``features``), centred by their mean,

    S' = ½ · log_base det( I_d + d / (m ε²) · Xᵀ X ),      X = Z − mean(Z)   (m × d)

(Eq. 3 prints ε = 1 and base 2; docs/paper-notes.md §1.) We never form ``det`` itself — it overflows float64 once
log₂det > 1024 — but take 2·Σ log diag(L) of the Cholesky factor L, in float64. When m < d we use
Sylvester's identity det(I_d + c XᵀX) = det(I_m + c XXᵀ): same value, smaller matrix.

Every function accepts numpy arrays or torch tensors (CPU or CUDA). ``device=None`` (the default) computes where
the input is (numpy: the CPU); ``device="cuda"`` (or ``"auto"``, :func:`semscale_lib.compute.measure_device`) moves
it there first. The determinants are float64 on every device: on CUDA float64 costs little next to the risk below.
``dtype=torch.float32`` (only :func:`class_semantic_scales` / :func:`sample_volume`) forms the class Gram matrices
in float32 — the O(N·d²) part — and keeps the determinant in float64. It agrees with float64 to ~1e-7 relative on
full-rank classes, but a class of nearly low rank (trained features collapse that way) gets spurious eigenvalues of
size ε₃₂·λ_max: 15.7 % (103.6 against 122.8 bits) off for a class spanning 10 of 512 dimensions
(tests/test_measure_device.py).
So float64 stays the default on CUDA too.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np
import torch

from .compute import ieee_float32, measure_device


# ----------------------------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------------------------
def _as_float64_tensor(features, *, name: str = "features", device: torch.device | None = None) -> torch.Tensor:
    """(m, d) numpy array or tensor of real numbers → float64 tensor on ``device`` (None: the input's device), after
    checking type, shape and finiteness. Complex numbers and booleans are a TypeError (casting would drop the
    imaginary part)."""
    if isinstance(features, torch.Tensor):
        if features.is_complex() or features.dtype == torch.bool:
            raise TypeError(f"{name} must be real numbers, got a tensor of dtype {features.dtype}")
        tensor = features.detach().to(torch.float64)
    else:
        array = np.asarray(features)
        if array.dtype.kind in "cb":
            kind = "complex numbers" if array.dtype.kind == "c" else "booleans"
            raise TypeError(f"{name} must be real numbers, got {kind} (dtype {array.dtype})")
        if array.dtype == object or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    if device is not None:
        tensor = tensor.to(device)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must have shape (samples, dims); got ndim={tensor.ndim} shape={tuple(tensor.shape)}")
    if tensor.shape[1] == 0:
        raise ValueError(f"{name} has zero dimensions (shape {tuple(tensor.shape)})")
    if not bool(torch.isfinite(tensor.sum())) and not bool(torch.isfinite(tensor).all()):  # sum: cheap first test
        bad = int((~torch.isfinite(tensor)).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or inf values (in {bad} of {tensor.shape[0]} rows)")
    return tensor


def _check_positive(value: float, name: str) -> float:
    """``value`` as a float when it is a finite real number > 0 (Python or numpy scalar; not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_base(base: float) -> float:
    base = _check_positive(base, "base")
    if base == 1:
        raise ValueError("base must not be 1 (log base 1 is undefined)")
    return base


def as_label_array(labels, n_samples: int, num_classes: int | None = None) -> np.ndarray:
    """Validate labels: 1-D, integer-valued, ≥ 0, one per sample, < num_classes when given. Returns int64 (N,)."""
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {array.shape}")
    if array.shape[0] != n_samples:
        raise ValueError(f"features and labels differ in length: {n_samples} feature rows, {array.shape[0]} labels")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)) \
                or not np.all(array == np.round(array)):
            raise ValueError("labels must be integers (got non-integer values)")
    if array.size:   # checked before the cast to int64, which would wrap a label ≥ 2**63 to a negative one
        low, high = int(array.min().item()), int(array.max().item())
        if low < 0:
            raise ValueError(f"labels must be ≥ 0; found {low}")
        if high > np.iinfo(np.int64).max:
            raise ValueError(f"label {high} is out of range (class indices are < 2**63)" if num_classes is None
                             else f"label {high} is out of range for num_classes={num_classes}")
    array = array.astype(np.int64)
    if num_classes is not None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be ≥ 1, got {num_classes}")
        if array.size and array.max() >= num_classes:
            raise ValueError(f"label {int(array.max())} is out of range for num_classes={num_classes}")
    return array


def class_counts(labels: np.ndarray, num_classes: int | None = None, *, require_all: bool = True) -> np.ndarray:
    """Samples per class, shape (C,). With ``require_all`` a class with zero samples is a ValueError."""
    counts = np.bincount(labels, minlength=num_classes or 0)
    if require_all and np.any(counts == 0):
        missing = np.flatnonzero(counts == 0).tolist()
        raise ValueError(f"classes {missing} have zero samples (num_classes={len(counts)}); every class needs ≥ 1")
    return counts


# ----------------------------------------------------------------------------------------------------------------
# the batched core
# ----------------------------------------------------------------------------------------------------------------
def half_logdet_identity_plus(mats: torch.Tensor, coefs: torch.Tensor, *, base: float = 2.0,
                              eig_fallback: bool = True) -> torch.Tensor:
    """½·log_base det(I + coefs[c] · mats[c]) for a stack of symmetric PSD matrices.

    mats: (C, K, K) float64, coefs: (C,) float64 ≥ 0 → (C,) float64, same device. One batched Cholesky; a
    matrix that fails it (only possible through round-off on a nearly singular scatter built from running sums,
    or non-finite input) falls back to its eigenvalues clipped at 0. ``eig_fallback=False`` gives such a matrix 0
    instead (an undefined scale, as for a class with < 2 samples): no value is then read back from the device,
    so on CUDA the host never waits for it (the DSB refresh, every training iteration).
    """
    k = mats.shape[-1]
    eye = torch.eye(k, dtype=mats.dtype, device=mats.device)
    system = eye + coefs[:, None, None] * mats
    chol, info = torch.linalg.cholesky_ex(system)
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    failed = info != 0
    if not eig_fallback:
        return torch.where(failed, 0.0, 0.5 * logdet / math.log(base))
    if bool(failed.any()):
        eigenvalues = torch.linalg.eigvalsh(mats[failed]).clamp_min(0.0)
        logdet[failed] = torch.log1p(coefs[failed, None] * eigenvalues).sum(-1)
    return 0.5 * logdet / math.log(base)


def _scale_coefficient(dims: int, counts: torch.Tensor, eps: float) -> torch.Tensor:
    """d / (m ε²) per class; 0 where m = 0 (the class then contributes log det I = 0)."""
    counts = counts.to(torch.float64)
    return torch.where(counts > 0, dims / (counts.clamp_min(1.0) * eps**2), torch.zeros_like(counts))


def _single_class_gram(features, *, center: bool, caller: str, device=None) -> tuple[torch.Tensor, int, int]:
    """Validated (m, d) features of one class → (the smaller of the centred XXᵀ / XᵀX, float64 on ``device``;
    m; d)."""
    x = _as_float64_tensor(features, device=measure_device(device))
    m, d = x.shape
    if m == 0:
        raise ValueError(f"{caller} needs at least one sample (got m = 0)")
    if center:
        x = x - x.mean(dim=0, keepdim=True)
    return (x @ x.T if m < d else x.T @ x), m, d


def semantic_scale(features, *, eps: float = 1.0, base: float = 2.0, center: bool = True, device=None) -> float:
    """S' of one class (Eq. 3; docs/paper-notes.md §1) — a float in units of log_base (bits for base 2).

    features: (m, d), one row per sample. ``eps`` is the sphere-packing radius ε (Eq. 3 is ε = 1; the paper's
    text also mentions 1000 — ours: ε = 1; see docs/paper-notes.md §1). ``center=False`` skips the per-class
    centring (not the paper).
    m = 1 (centred) gives 0.0; m = 0 is a ValueError. ``device``: where it is computed (module docstring), float64.
    """
    eps, base = _check_positive(eps, "eps"), _check_base(base)
    gram, m, d = _single_class_gram(features, center=center, caller="semantic_scale", device=device)
    coef = _scale_coefficient(d, torch.tensor([m], device=gram.device), eps)
    return float(half_logdet_identity_plus(gram[None], coef, base=base)[0])


def _class_gram_stack(x: torch.Tensor, labels: np.ndarray, counts: np.ndarray, *, center: bool) -> torch.Tensor:
    """Per-class (centred) Gram matrices of rows x (N, d) with labels (N,) → (C, K, K), K = min(max m, d).

    Each class's rows go to a zero-padded block (C, max m, d) — zero rows change neither XᵀX nor det(I + c·XXᵀ) —
    and one batched GEMM forms all C matrices. If padding would more than double the memory (very unequal
    classes), the classes are multiplied one GEMM each instead. Never a loop over samples.
    """
    n_classes, d = len(counts), x.shape[1]
    largest = int(counts.max())
    device = x.device
    order = np.argsort(labels, kind="stable")
    if n_classes * largest > 2 * x.shape[0]:
        mats = torch.zeros((n_classes, min(largest, d), min(largest, d)), dtype=x.dtype, device=device)
        for c, block in enumerate(torch.split(x[torch.from_numpy(order).to(device)], counts.tolist())):
            if center:
                block = block - block.mean(dim=0, keepdim=True)
            gram = block @ block.T if block.shape[0] < d else block.T @ block
            mats[c, :gram.shape[0], :gram.shape[0]] = gram
        return mats
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty_like(order)
    position[order] = np.arange(len(labels)) - starts[labels[order]]
    rows, slots = torch.from_numpy(labels).to(device), torch.from_numpy(position).to(device)
    padded = torch.zeros((n_classes, largest, d), dtype=x.dtype, device=device)
    padded[rows, slots] = x
    if center:
        padded -= (padded.sum(dim=1) / torch.from_numpy(counts).to(x)[:, None])[:, None, :]
        if np.any(counts < largest):
            padded *= (torch.arange(largest, device=device)[None, :] <
                       torch.from_numpy(counts).to(device)[:, None])[:, :, None]
    return padded @ padded.transpose(1, 2) if largest < d else padded.transpose(1, 2) @ padded


def _gram_dtype(dtype) -> torch.dtype:
    named = {"float32": torch.float32, "float64": torch.float64}
    dtype = named.get(dtype, dtype) if isinstance(dtype, str) else dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def class_semantic_scales(features, labels, *, num_classes: int | None = None, eps: float = 1.0,
                          base: float = 2.0, center: bool = True, device=None,
                          dtype: torch.dtype = torch.float64) -> np.ndarray:
    """S' of every class in one batched computation. features (N, d), labels (N,) → np.ndarray float64 (C,).

    Each class's matrix is the smaller of its d×d scatter and its m×m Gram (Sylvester), formed by one batched
    GEMM over zero-padded class blocks; all C determinants come from one batched Cholesky.
    ``num_classes`` (default max label + 1): every class below it must have ≥ 1 sample. ``device``: None (where
    the input is) or a device name, "auto" included; ``dtype``: of the Gram GEMM only, float64 (default) or float32
    (not safe for nearly low-rank classes; module docstring). Batched over all classes at once on any device.
    """
    eps, base = _check_positive(eps, "eps"), _check_base(base)
    dtype = _gram_dtype(dtype)
    x = _as_float64_tensor(features, device=measure_device(device))
    y = as_label_array(labels, x.shape[0], num_classes)
    if y.size == 0:
        raise ValueError("features are empty (0 samples)")
    counts = class_counts(y, num_classes)
    if dtype == torch.float64:
        mats = _class_gram_stack(x, y, counts, center=center)
    else:   # the overall mean taken out in float64 first: less to lose when float32 centres each class
        shifted = x - x.mean(dim=0, keepdim=True) if center else x
        with ieee_float32():
            mats = _class_gram_stack(shifted.to(dtype), y, counts, center=center).to(torch.float64)
    coefs = _scale_coefficient(x.shape[1], torch.from_numpy(counts).to(x.device), eps)
    return half_logdet_identity_plus(mats, coefs, base=base).cpu().numpy()


def multiscale_semantic_scale(features, eps_grid: Sequence[float], *, base: float = 2.0,
                              center: bool = True, device=None) -> np.ndarray:
    """S'(ε) of one class for every ε in ``eps_grid`` → np.ndarray (len(eps_grid),).

    The eigenvalues λ_k of the centred scatter are computed once: S'(ε) = ½ Σ_k log_base(1 + d/(m ε²) λ_k).
    [ours] The paper defines ε as a tunable radius but no aggregation over several ε; this returns the curve and
    leaves any aggregation to the caller. ``device``: where it is computed (module docstring), float64.
    """
    eps_grid = list(eps_grid)
    if not eps_grid:
        raise ValueError("eps_grid is empty")
    grid = [_check_positive(e, "every eps in eps_grid") for e in eps_grid]
    base = _check_base(base)
    gram, m, d = _single_class_gram(features, center=center, caller="multiscale_semantic_scale", device=device)
    eigenvalues = torch.linalg.eigvalsh(gram).clamp_min(0.0)
    eps = torch.tensor(grid, dtype=torch.float64, device=gram.device)
    coefs = d / (m * eps**2)
    return (0.5 * torch.log1p(coefs[:, None] * eigenvalues[None, :]).sum(-1) / math.log(base)).cpu().numpy()


def semantic_scale_plain_det(features, *, scale: float | None = None) -> float:
    """The authors' public formula, verbatim in spirit: ½·log₂ det(I_d + (scale/m)·XᵀX) with a plain ``det``.

    Reference for tests and the benchmark only: it overflows to inf once log₂det > 1024 (large d or spread).
    ``scale`` defaults to d, which makes it Eq. 3 (the authors' package defaults it to 1.0).
    """
    z = np.asarray(features, dtype=np.float64)
    m, d = z.shape
    diff = z - z.mean(axis=0)
    c = d if scale is None else scale
    with np.errstate(over="ignore"):
        return float(0.5 * np.log2(np.linalg.det(np.eye(d) + (c / m) * diff.T @ diff)))


def semantic_scales_from_moments(counts: torch.Tensor, sums: torch.Tensor, outer_sums: torch.Tensor, *,
                                 eps: float = 1.0, base: float = 2.0, eig_fallback: bool = True) -> torch.Tensor:
    """S' per class from running moments, for pools that update by adding and removing samples.

    counts (C,), sums (C, d) = Σ z, outer_sums (C, d, d) = Σ z zᵀ, all float64 → (C,) float64 on their device.
    The centred scatter is Σzzᵀ − (Σz)(Σz)ᵀ/m; classes with m ≤ 1 get 0. Cost O(C·d³), independent of N.
    ``eig_fallback``: of :func:`half_logdet_identity_plus`.
    """
    counts = counts.to(torch.float64)
    safe = counts.clamp_min(1.0)
    scatter = outer_sums - sums[:, :, None] * sums[:, None, :] / safe[:, None, None]
    scatter = 0.5 * (scatter + scatter.transpose(-1, -2))
    coefs = _scale_coefficient(sums.shape[1], counts, eps) * (counts > 1)
    return half_logdet_identity_plus(scatter, coefs, base=base, eig_fallback=eig_fallback)


def effective_number(counts, beta: float) -> np.ndarray:
    """Cui et al.'s effective number E_n = (1 − β^n)/(1 − β) per class → float64 array, same shape as counts.

    0 ≤ β < 1 (β = 1 is accepted as the limit E_n = n). Computed as −expm1(n·ln β)/(1 − β) to stay accurate for
    β close to 1.
    """
    n = np.asarray(counts, dtype=np.float64)
    if np.any(n < 0) or not np.all(np.isfinite(n)):
        raise ValueError("counts must be finite and ≥ 0")
    if not (0.0 <= beta <= 1.0):
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    if beta == 1.0:
        return n.copy()
    if beta == 0.0:
        return (n > 0).astype(np.float64)
    return -np.expm1(n * math.log(beta)) / (1.0 - beta)


def pool_features(features, dim: int = 64):
    """1-D average pooling of each feature vector to ``dim`` values (Sec. 4.2 / Appendix F.2: e.g. 2048 → 64,
    windows of 32; docs/paper-notes.md §3).

    features (N, D) → (N, dim), same type (numpy or torch) and device. D divisible by dim gives the paper's
    non-overlapping windows; otherwise adaptive average pooling (windows of ⌈D/dim⌉ or ⌊D/dim⌋) [ours].
    D ≤ dim is returned unchanged (nothing to pool).
    """
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    is_numpy = not isinstance(features, torch.Tensor)
    x = torch.from_numpy(np.asarray(features)) if is_numpy else features
    if x.ndim != 2:
        raise ValueError(f"features must have shape (samples, dims); got {tuple(x.shape)}")
    if x.shape[1] <= dim:
        return features
    if not torch.is_floating_point(x):
        x = x.to(torch.float32)
    if x.shape[1] % dim == 0:
        pooled = x.reshape(x.shape[0], dim, x.shape[1] // dim).mean(-1)
    else:
        pooled = torch.nn.functional.adaptive_avg_pool1d(x[:, None, :], dim)[:, 0, :]
    return pooled.numpy() if is_numpy else pooled


def resize_images(images, size: int = 16, *, chunk: int = 4096) -> np.ndarray:
    """Images → float32 (N, size·size·C) in [0, 1], resized bilinearly with antialiasing (Algorithm 1's resize;
    range and interpolation are ours, see docs/paper-notes.md §2).

    images: (N, H, W) or (N, H, W, C), uint8 (0..255) or float in [0, 1]. Processed in chunks of ``chunk``.
    """
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C); got {array.shape}")
    if array.dtype == np.uint8:
        divisor = 255.0
    elif np.issubdtype(array.dtype, np.floating):
        if array.size and (not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1):
            raise ValueError("float images must be finite and lie in [0, 1] (pass uint8 for 0..255)")
        divisor = 1.0
    else:
        raise ValueError(f"images must be uint8 or float, got dtype {array.dtype}")
    out = []
    for start in range(0, array.shape[0], chunk):
        batch = torch.from_numpy(np.ascontiguousarray(array[start:start + chunk])).permute(0, 3, 1, 2)
        batch = batch.to(torch.float32) / divisor
        if batch.shape[-2:] != (size, size):
            batch = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear",
                                                    align_corners=False, antialias=True).clamp_(0.0, 1.0)
        out.append(batch.permute(0, 2, 3, 1).reshape(batch.shape[0], -1).numpy())
    return np.concatenate(out) if out else np.zeros((0, size * size * array.shape[-1]), np.float32)


def sample_volume(images, labels, *, size: int = 16, num_classes: int | None = None, eps: float = 1.0,
                  base: float = 2.0, device=None, dtype: torch.dtype = torch.float64) -> np.ndarray:
    """The paper's Algorithm 1: per-class S' of raw images resized to size×size(×C) in [0, 1] → (C,) float64.

    images: (N, H, W[, C]) uint8 or float in [0, 1]; d = size²·C (768 for RGB at 16, 256 for grey). The resize
    runs on the CPU; ``device`` and ``dtype``: of :func:`class_semantic_scales`.
    """
    flat = resize_images(images, size)
    return class_semantic_scales(flat, labels, num_classes=num_classes, eps=eps, base=base, device=device,
                                 dtype=dtype)
