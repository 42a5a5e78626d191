"""Per-class difficulty / separability measures from the literature, on the same vectors as the semantic scale.

Each measure takes ``features`` (N, d) — numpy array or torch tensor, any device, any real dtype — ``labels`` (N,)
integers in [0, C) and ``num_classes`` C, and returns a float64 numpy array of shape (C,), one value per class.

``device`` (every measure, default ``"cpu"``; ``"auto"``, ``"cuda"``, ``"cuda:N"``: see
:func:`semscale_lib.compute.measure_device`) is where the work runs; the result comes back to the host either way.
Everything is float64 on every device except the k-NN candidate screening, which is float32 on both (and exact
afterwards: :func:`knn_loo_predictions`). Why not float32 elsewhere: the effective rank's cut-off is set at float64
round-off, the centre measures are O(N·d); the silhouette's float32 Gram expansion drifts as classes tighten (5e-9
off on ReLU features, 1.8e-4 on classes of spread 1e-4 at distance ~230) and float64 GEMMs are fast on data-centre
GPUs. On a GPU the results equal the CPU's up to float64 round-off (summation order).

Common conventions:

* A class with fewer than 2 points gets NaN (no spread, no leave-one-out neighbour of its own class), never an
  exception; so does a class whose value is undefined for the reason given in the function's docstring (e.g. no
  other non-empty class to compare with).
* Bad input raises TypeError (not array-like, complex, non-integer ``num_classes``) or ValueError (wrong shape,
  NaN/inf, labels not integers or outside [0, num_classes), ``k`` out of range), naming the argument.
* "Other classes" are the other *non-empty* classes; a one-point class has a mean and takes part as a competitor.
* Class covariances use the 1/m (maximum-likelihood) normalisation, so tr Σ_c is the mean squared distance of the
  class's points to their mean.

The O(N²·d) measures (:func:`knn_accuracy`, :func:`silhouette`) work through row chunks of at most
:func:`~semscale_lib.neighbours.chunk_elements` distances at a time (on the CPU :data:`CHUNK_ELEMENTS`, 64 MiB of
float64; on a GPU a share of its free memory), never the full N × N matrix.

:data:`DIFFICULTY_MEASURES` maps short names to the functions; :func:`class_difficulty_table` assembles a table.
"""
from __future__ import annotations

import inspect
import math
from numbers import Integral
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .compute import is_cpu, measure_device
from .neighbours import CHUNK_ELEMENTS, _fast_sq_distances, _knn_predict, _knn_predict_device, _row_chunks, \
    chunk_elements
from .scale import _as_float64_tensor, as_label_array

__all__ = ["knn_accuracy", "knn_loo_predictions", "fisher_ratio", "nearest_centre_distance", "effective_rank",
           "silhouette", "DIFFICULTY_MEASURES", "class_difficulty_table", "CHUNK_ELEMENTS"]

# ----------------------------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------------------------
def _check_array_like(value, name: str) -> None:
    if value is None or isinstance(value, (str, bytes, dict, set, frozenset)) or np.isscalar(value):
        raise TypeError(f"{name} must be an array or a tensor, got {type(value).__name__}")
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(f"{name} must be real, got a complex tensor ({value.dtype})")
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name} could not be read as an array: {exc}") from None
        if np.iscomplexobj(array):
            raise TypeError(f"{name} must be real, got complex values")


def _validate(features, labels, num_classes, device="cpu"):
    """→ (x float64 (N, d): numpy on the CPU, else a tensor on ``device``; y int64 (N,); counts int64 (C,))."""
    device = measure_device(device)
    _check_array_like(features, "features")
    _check_array_like(labels, "labels")
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral):
        raise TypeError(f"num_classes must be an integer, got {type(num_classes).__name__}")
    num_classes = int(num_classes)
    if num_classes < 1:
        raise ValueError(f"num_classes must be ≥ 1, got {num_classes}")
    if not isinstance(features, torch.Tensor):
        array = np.asarray(features)
        if array.dtype == bool:
            raise TypeError("features must be real numbers, got dtype bool")
    x = _as_float64_tensor(features, name="features")
    x = x.cpu().numpy() if is_cpu(device) else x.to(device)
    y = as_label_array(labels, x.shape[0], num_classes)
    return x, y, np.bincount(y, minlength=num_classes).astype(np.int64)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


# ----------------------------------------------------------------------------------------------------------------
# shared pieces
# ----------------------------------------------------------------------------------------------------------------
def _means_and_traces(x, y: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class means (C, d) and tr Σ_c = mean ‖x − μ_c‖² (1/m normalisation) as numpy float64; NaN rows for empty
    classes. x: numpy (N, d), or a tensor reduced on its own device."""
    if isinstance(x, torch.Tensor):
        yt, m = torch.from_numpy(y).to(x.device), torch.from_numpy(counts).to(x)
        means = torch.zeros((len(counts), x.shape[1]), dtype=x.dtype, device=x.device).index_add_(0, yt, x) / m[:, None]
        residual_sq = ((x - means[yt]) ** 2).sum(dim=1)
        traces = torch.zeros_like(m).index_add_(0, yt, residual_sq) / m
        return means.cpu().numpy(), traces.cpu().numpy()
    sums = torch.zeros((len(counts), x.shape[1]), dtype=torch.float64)
    sums.index_add_(0, torch.from_numpy(y), torch.from_numpy(x))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums.numpy() / counts[:, None]
        residual_sq = ((x - means[y]) ** 2).sum(axis=1)
        traces = np.bincount(y, weights=residual_sq, minlength=len(counts)) / counts
    return means, traces


def _nearest_other_mean(means: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every class: index of the nearest other non-empty class mean (lowest index among equal distances) and
    the Euclidean distance to it (direct differences, not the Gram expansion). −1 / NaN where there is none."""
    n_classes = len(counts)
    nearest, distance = np.full(n_classes, -1, dtype=np.int64), np.full(n_classes, np.nan)
    present = np.flatnonzero(counts > 0)
    if len(present) < 2:
        return nearest, distance
    m = torch.from_numpy(np.ascontiguousarray(means[present]))
    dist = torch.cdist(m, m, compute_mode="donot_use_mm_for_euclid_dist").numpy()
    np.fill_diagonal(dist, np.inf)
    best = np.argmin(dist, axis=1)
    nearest[present] = present[best]
    distance[present] = dist[np.arange(len(present)), best]
    return nearest, distance


# ----------------------------------------------------------------------------------------------------------------
# k-nearest-neighbour accuracy
# ----------------------------------------------------------------------------------------------------------------
def knn_loo_predictions(features, labels, *, k: int = 5, device="cpu") -> np.ndarray:
    """Leave-one-out k-NN prediction of every point → int64 (N,).

    Each point is classified by the k nearest *other* points (Euclidean; the point itself is left out, duplicates of
    it are not). Neighbours are ranked by exact distance — computed as Σ (x_i − x_j)² from direct differences —
    with equal distances ranked by lower index. Prediction: the label with the most votes among the k; a tie in votes
    goes to the tied label that occurs first in that ranking (so the nearest neighbour's label whenever it is among
    the tied ones).

    Exact search, not approximate: a chunk's distances come from the fast Gram expansion (float32, on centred
    vectors) only to pick min(N − 1, 2k + 16) candidates; those are re-ranked by exact float64 distance, and a row
    whose k-th exact distance is not provably below every non-candidate's (a bound on the screening's round-off) is
    redone exactly against all N points — so the result equals a brute-force float64 search.
    Requires N ≥ k + 1 (ValueError otherwise). ``device``: where the search runs; on CUDA the same algorithm with
    IEEE float32 screening (TF32 switched off for it) and float64 re-ranking, in chunks sized to the free memory.
    """
    _check_array_like(features, "features")
    _check_array_like(labels, "labels")
    device = measure_device(device)
    x = _as_float64_tensor(features, name="features")
    x = x.cpu().numpy() if is_cpu(device) else x.to(device)
    y = as_label_array(labels, x.shape[0])
    k = _check_k(k)
    n = x.shape[0]
    if n < k + 1:
        raise ValueError(f"k = {k} needs at least k + 1 = {k + 1} points, got {n}")
    return _knn_predict(x, y, k) if isinstance(x, np.ndarray) else _knn_predict_device(x, y, k)


def knn_accuracy(features, labels, num_classes: int, *, k: int = 5, device="cpu") -> np.ndarray:
    """Leave-one-out k-NN accuracy of each class: the fraction of the class's points whose k nearest other points
    (Euclidean) vote for the class (:func:`knn_loo_predictions` gives the exact vote and tie rules).

    Orientation: higher = easier (more of the class lies among its own kind); in [0, 1].
    Source: the nearest-neighbour rule of Cover & Hart (1967), "Nearest neighbor pattern classification", IEEE Trans.
    Information Theory 13(1):21–27; with k = 1 this is one minus the per-class version of the leave-one-out 1-NN
    error N3 of Ho & Basu (2002), "Complexity measures of supervised classification problems", IEEE TPAMI
    24(3):289–300. NaN for classes with < 2 points, and for every class when N < k + 1.
    """
    x, y, counts = _validate(features, labels, num_classes, device)
    k = _check_k(k)
    result = np.full(len(counts), np.nan)
    if x.shape[0] < k + 1:
        return result
    predicted = _knn_predict(x, y, k) if isinstance(x, np.ndarray) else _knn_predict_device(x, y, k)
    correct = (predicted == y).astype(np.float64)
    hits = np.bincount(y, weights=correct, minlength=len(counts))
    ok = counts >= 2
    result[ok] = hits[ok] / counts[ok]
    return result


# ----------------------------------------------------------------------------------------------------------------
# centre-based measures
# ----------------------------------------------------------------------------------------------------------------
def fisher_ratio(features, labels, num_classes: int, *, device="cpu") -> np.ndarray:
    """Per-class Fisher ratio against the nearest other class:

        F_c = ‖μ_c − μ_j‖² / (tr Σ_c + tr Σ_j),    j = the other non-empty class whose mean is nearest to μ_c,

    μ the class means and tr Σ = mean squared distance of a class's points to its mean (1/m normalisation).
    Between-class scatter over within-class scatter of the pair, in the trace form of Fisher's criterion.
    Orientation: higher = more separable; F_c ≥ 0, invariant to scaling, rotating and translating all features.
    +inf when both traces are 0 and the means differ. NaN for classes with < 2 points or with no other non-empty
    class (and 0/0). [ours] per-class, one-vs-nearest-competitor, trace version of Fisher's discriminant ratio —
    Fisher (1936), "The use of multiple measurements in taxonomic problems", Annals of Eugenics 7(2):179–188;
    cf. the maximum Fisher's discriminant ratio F1 of Ho & Basu (2002), IEEE TPAMI 24(3):289–300 (which takes the
    best single feature instead of the trace).
    """
    x, y, counts = _validate(features, labels, num_classes, device)
    means, traces = _means_and_traces(x, y, counts)
    nearest, distance = _nearest_other_mean(means, counts)
    result = np.full(len(counts), np.nan)
    ok = (counts >= 2) & (nearest >= 0)
    num = distance[ok] ** 2
    den = traces[ok] + traces[nearest[ok]]
    with np.errstate(divide="ignore", invalid="ignore"):
        result[ok] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, np.nan))
    return result


def nearest_centre_distance(features, labels, num_classes: int, *, device="cpu") -> np.ndarray:
    """Distance from the class mean to the nearest other (non-empty) class mean, divided by the class's RMS radius:

        D_c = min_{j ≠ c} ‖μ_c − μ_j‖ / sqrt(mean_{i: y_i = c} ‖x_i − μ_c‖²).

    Scale-free: invariant to scaling, rotating and translating all features. Orientation: higher = more separable
    (the nearest competitor lies more class radii away). +inf when the radius is 0 and the distance is not; NaN for
    classes with < 2 points, with no other non-empty class, or 0/0. [ours] normalisation, in the spirit of the
    centroid-separation-over-dispersion ratio of Davies & Bouldin (1979), "A cluster separation measure",
    IEEE TPAMI 1(2):224–227 (their R_ij is the inverse, with both clusters' dispersions).
    """
    x, y, counts = _validate(features, labels, num_classes, device)
    means, traces = _means_and_traces(x, y, counts)
    _, distance = _nearest_other_mean(means, counts)
    result = np.full(len(counts), np.nan)
    ok = (counts >= 2) & np.isfinite(distance)
    radius = np.sqrt(traces[ok])
    with np.errstate(divide="ignore", invalid="ignore"):
        result[ok] = np.where(radius > 0, distance[ok] / np.where(radius > 0, radius, 1.0),
                              np.where(distance[ok] > 0, np.inf, np.nan))
    return result


# ----------------------------------------------------------------------------------------------------------------
# spread
# ----------------------------------------------------------------------------------------------------------------
def effective_rank(features, labels, num_classes: int, *, device="cpu") -> np.ndarray:
    """Effective rank of each class covariance (Roy & Vetterli 2007):

        erank(Σ_c) = exp(−Σ_i p_i log p_i),    p_i = λ_i / Σ_j λ_j,    0·log 0 = 0,

    λ_i the eigenvalues (= singular values) of the class covariance Σ_c, i.e. the squared singular values of the
    centred class matrix over m; eigenvalues below λ_max · max(m, d) · machine-ε are taken as 0 (round-off).
    Ranges over [1, min(m − 1, d)]: 1 for points on a line, d for an exactly isotropic set (e.g. the points ±e_i).
    Orientation: higher = the class's variance is spread over more directions. There is no a-priori direction for
    accuracy (a spread class may be both richer and more overlapping); it is a descriptor, not a difficulty score.
    NaN for classes with < 2 points or zero total variance (all points identical).
    Source: O. Roy & M. Vetterli (2007), "The effective rank: a measure of effective dimensionality", Proc. 15th
    European Signal Processing Conference (EUSIPCO), pp. 606–610.
    """
    x, y, counts = _validate(features, labels, num_classes, device)
    result = np.full(len(counts), np.nan)
    order = np.argsort(y, kind="stable")
    if isinstance(x, np.ndarray):
        blocks = np.split(x[order], np.cumsum(counts)[:-1])
    else:
        blocks = torch.split(x[torch.from_numpy(order).to(x.device)], counts.tolist())
    for c, block in enumerate(blocks):
        m, d = block.shape
        if m < 2:
            continue
        if isinstance(block, np.ndarray):
            centred = block - block.mean(axis=0)
            gram = centred @ centred.T if m < d else centred.T @ centred
            eig = np.linalg.eigvalsh(gram)
        else:   # the (C ≤ hundreds) eigenproblems one at a time, each on the device
            centred = block - block.mean(dim=0)
            eig = torch.linalg.eigvalsh(centred @ centred.T if m < d else centred.T @ centred).cpu().numpy()
        top = eig.max()
        if not top > 0:
            continue
        eig = np.where(eig > top * max(m, d) * np.finfo(np.float64).eps, eig, 0.0)
        p = eig[eig > 0] / eig.sum()
        result[c] = float(np.exp(-(p * np.log(p)).sum()))
    return result


# ----------------------------------------------------------------------------------------------------------------
# silhouette
# ----------------------------------------------------------------------------------------------------------------
def silhouette(features, labels, num_classes: int, *, device="cpu") -> np.ndarray:
    """Mean silhouette width of each class's points (Rousseeuw 1987). For point i of class c (m_c points):

        a(i) = Σ_{j ∈ c, j ≠ i} ‖x_i − x_j‖ / (m_c − 1),   b(i) = min_{c' ≠ c, m_c' > 0} mean_{j ∈ c'} ‖x_i − x_j‖,
        s(i) = (b(i) − a(i)) / max(a(i), b(i))   (0 when both are 0),

    and the class's value is the mean of s(i) over its points. Euclidean distances by the Gram expansion in float64
    on centred vectors (as scikit-learn's ``silhouette_samples``, up to round-off), N × N never held at once; on
    ``device``, float64 there too, in chunks sized to its free memory. Orientation: higher = more separable;
    in [−1, 1]. NaN for classes with < 2 points or with no other non-empty class.
    Source: P. J. Rousseeuw (1987), "Silhouettes: a graphical aid to the interpretation and validation of cluster
    analysis", J. Computational and Applied Mathematics 20:53–65.
    """
    x, y, counts = _validate(features, labels, num_classes, device)
    n, n_classes = x.shape[0], len(counts)
    result = np.full(n_classes, np.nan)
    present = counts > 0
    if present.sum() < 2:
        return result
    # centred: same distances, less round-off in the expansion
    xt = torch.from_numpy(x - x.mean(axis=0)) if isinstance(x, np.ndarray) else x - x.mean(dim=0)
    on = xt.device
    sq = (xt * xt).sum(dim=1)
    yt = torch.from_numpy(y).to(on)
    s = torch.empty(n, dtype=torch.float64, device=on)
    inv_counts = torch.from_numpy(np.where(present, 1.0 / np.maximum(counts, 1), np.nan)).to(on)
    counts_on = torch.from_numpy(counts).to(on, torch.float64)
    for start, stop in _row_chunks(n, n + n_classes, chunk_elements(on)):
        dist = _fast_sq_distances(xt, sq, start, stop).sqrt_()
        rows = torch.arange(stop - start, device=on)
        dist[rows, rows + start] = 0.0
        sums = torch.zeros((stop - start, n_classes), dtype=torch.float64, device=on)
        sums.index_add_(1, yt, dist)
        own = yt[start:stop]
        own_sum = sums[rows, own]
        own_m = counts_on[own]
        a = own_sum / (own_m - 1).clamp_min(1.0)
        means = sums * inv_counts[None, :]
        means[rows, own] = math.inf
        b = torch.nan_to_num(means, nan=math.inf).min(dim=1).values
        top = torch.maximum(a, b)
        s_chunk = torch.where(top > 0, (b - a) / torch.where(top > 0, top, 1.0), torch.zeros_like(a))
        s_chunk = torch.where(own_m > 1, s_chunk, torch.zeros_like(a))   # Rousseeuw: s = 0 for a singleton
        s[start:stop] = s_chunk
    totals = np.bincount(y, weights=s.cpu().numpy(), minlength=n_classes)
    ok = counts >= 2
    result[ok] = totals[ok] / counts[ok]
    return result


# ----------------------------------------------------------------------------------------------------------------
# registry and table
# ----------------------------------------------------------------------------------------------------------------
DIFFICULTY_MEASURES: dict[str, Callable[..., np.ndarray]] = {
    "knn_accuracy": knn_accuracy,
    "fisher_ratio": fisher_ratio,
    "nearest_centre": nearest_centre_distance,
    "effective_rank": effective_rank,
    "silhouette": silhouette,
}
"""Short name → measure with the common signature ``(features, labels, num_classes, *, device="cpu") -> (C,)``
float64.
Orientation (higher = easier / more separable) for all but ``effective_rank``, which has no a-priori direction."""


def _takes_device(fn: Callable) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "device" or p.kind is p.VAR_KEYWORD for p in parameters)


def class_difficulty_table(features, labels, num_classes: int, *,
                           measures: Sequence[str] | Mapping[str, Callable] | None = None,
                           device="cpu") -> pd.DataFrame:
    """One row per class: column ``class`` (0..C−1), then one float64 column per measure, in the order given.

    ``measures``: None (all of :data:`DIFFICULTY_MEASURES`, in its order), a sequence of names from it, or a mapping
    name → callable with the common signature. Inputs are validated once, before any measure runs; per-class
    degeneracies come back as NaN (see each measure), never as an exception part-way through the table.
    ``df.attrs["counts"]`` holds the number of points per class. ``device`` goes to every measure that takes a
    ``device`` keyword (all of the registry's); a callable without one runs as it is.
    """
    x, y, counts = _validate(features, labels, num_classes)
    measure_device(device)   # an unknown device fails before any measure runs
    if measures is None:
        chosen = dict(DIFFICULTY_MEASURES)
    elif isinstance(measures, Mapping):
        chosen = dict(measures)
        bad = [name for name, fn in chosen.items() if not callable(fn)]
        if bad:
            raise TypeError(f"measures: the values for {bad} are not callable")
    elif isinstance(measures, (str, bytes)) or not isinstance(measures, Sequence):
        raise TypeError(f"measures must be None, a sequence of names or a mapping, got {type(measures).__name__}")
    else:
        unknown = [name for name in measures if name not in DIFFICULTY_MEASURES]
        if unknown:
            raise ValueError(f"measures: unknown names {unknown}; known: {list(DIFFICULTY_MEASURES)}")
        chosen = {name: DIFFICULTY_MEASURES[name] for name in measures}
    if "class" in chosen:
        raise ValueError("measures: 'class' is reserved for the class column")
    table = pd.DataFrame({"class": np.arange(len(counts))})
    for name, fn in chosen.items():
        values = np.asarray(fn(x, y, len(counts), **({"device": device} if _takes_device(fn) else {})),
                            dtype=np.float64)
        if values.shape != (len(counts),):
            raise ValueError(f"measures: {name!r} returned shape {values.shape}, expected ({len(counts)},)")
        table[name] = values
    table.attrs["counts"] = counts.tolist()
    return table
