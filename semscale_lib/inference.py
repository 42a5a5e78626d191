"""Closed-form inference behind the verdicts: Fisher-z intervals, Williams' t and Zou's interval for two dependent
correlations, the correlation of their two estimates, a seeded permutation p, and Holm's step-down adjustment.

Every function takes plain numbers (correlations are unitless, n counts pairs) and returns plain floats or arrays;
the verdict rules that use them live in :mod:`semscale_lib.verdicts`.
"""
from __future__ import annotations

import math
from itertools import permutations

import numpy as np
from scipy import stats

__all__ = ["R_CLIP", "fisher_ci", "williams_t", "zou_ci", "estimates_correlation", "permutation_p", "pearson",
           "holm_adjust"]

R_CLIP = 1.0 - 1e-12  # |r| = 1 would make atanh infinite
_NAN = float("nan")


def _unit(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean()
    return centred / np.linalg.norm(centred)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two non-constant ``(n,)`` float vectors, clipped to [−1, 1]."""
    return float(np.clip(_unit(x) @ _unit(y), -1.0, 1.0))


def fisher_ci(r: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Fisher-z CI of a Pearson r from ``n`` pairs: tanh(atanh(r) +- z_{(1+c)/2} / sqrt(n - 3)); |r| is clipped just
    below 1 so a perfect correlation gives a (degenerate) finite interval. NaN for n < 4."""
    if n < 4 or not math.isfinite(r):
        return _NAN, _NAN
    z = math.atanh(float(np.clip(r, -R_CLIP, R_CLIP)))
    half = stats.norm.ppf((1 + confidence) / 2) / math.sqrt(n - 3)
    return min(math.tanh(z - half), r), max(math.tanh(z + half), r)


def williams_t(r_ya: float, r_yb: float, r_ab: float, n: int) -> tuple[float, float]:
    """Williams' t (Steiger 1980, eq. 7) for H0: rho_ya = rho_yb, and its two-sided p on n - 3 df.

    t = (r_ya - r_yb) sqrt((n-1)(1+r_ab) / (2 (n-1)/(n-3) |R| + rbar^2 (1-r_ab)^3)), |R| the determinant of the 3x3
    correlation matrix, rbar = (r_ya + r_yb)/2. Needs n > 3. Equal correlations give t = 0, p = 1."""
    if n <= 3:
        raise ValueError(f"Williams' t needs n > 3, got n = {n}")
    det = max(1 - r_ya**2 - r_yb**2 - r_ab**2 + 2 * r_ya * r_yb * r_ab, 0.0)
    rbar = (r_ya + r_yb) / 2
    denom = 2 * (n - 1) / (n - 3) * det + rbar**2 * (1 - r_ab) ** 3
    num = (r_ya - r_yb) * math.sqrt(max((n - 1) * (1 + r_ab), 0.0))
    t = 0.0 if num == 0 else math.copysign(math.inf, num) if denom <= 0 else num / math.sqrt(denom)
    return t, float(2 * stats.t.sf(abs(t), n - 3))


def estimates_correlation(r_ya: float, r_yb: float, r_ab: float) -> float:
    """c, the asymptotic correlation of the two estimates r_ya and r_yb (equally of their Fisher z) when they share
    the variable y (Steiger 1980, eq. 3, ψ / ((1 − r_ya²)(1 − r_yb²)); the c of Zou 2007, p. 409):
    c = (r_ab (1 − r_ya² − r_yb²) − ½ r_ya r_yb (1 − r_ya² − r_yb² − r_ab²)) / ((1 − r_ya²)(1 − r_yb²)),
    clipped to [−1, 1]; |r_ya|, |r_yb| are clipped just below 1. Var(z_ya − z_yb) ≈ 2 (1 − c) / (n − 3)."""
    r1, r2 = (float(np.clip(r, -R_CLIP, R_CLIP)) for r in (r_ya, r_yb))
    psi = r_ab * (1 - r1**2 - r2**2) - r1 * r2 * (1 - r1**2 - r2**2 - r_ab**2) / 2
    return float(np.clip(psi / ((1 - r1**2) * (1 - r2**2)), -1.0, 1.0))


def zou_ci(r_ya: float, r_yb: float, r_ab: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Zou's (2007) CI of r_ya - r_yb for two overlapping dependent correlations: the two Fisher-z intervals
    (l_i, u_i) are combined through c (:func:`estimates_correlation`, Zou 2007, p. 409):
    L = d - sqrt((r_ya-l1)^2 + (u2-r_yb)^2 - 2c(r_ya-l1)(u2-r_yb)),
    U = d + sqrt((u1-r_ya)^2 + (r_yb-l2)^2 - 2c(u1-r_ya)(r_yb-l2))."""
    (l1, u1), (l2, u2) = fisher_ci(r_ya, n, confidence), fisher_ci(r_yb, n, confidence)
    c = estimates_correlation(r_ya, r_yb, r_ab)
    d = r_ya - r_yb
    low = d - math.sqrt(max((r_ya - l1) ** 2 + (u2 - r_yb) ** 2 - 2 * c * (r_ya - l1) * (u2 - r_yb), 0.0))
    high = d + math.sqrt(max((u1 - r_ya) ** 2 + (r_yb - l2) ** 2 - 2 * c * (u1 - r_ya) * (r_yb - l2), 0.0))
    return low, high


def permutation_p(x: np.ndarray, y: np.ndarray, r: float, n_permutations: int, seed: int) -> tuple[float, str]:
    """Two-sided p of |r| under random re-pairing of ``(n,)`` vectors x, y: exact over all n! orderings when
    n! <= n_permutations, else Monte Carlo with the (hits + 1) / (B + 1) estimate (seeded). (NaN, "none") when
    ``n_permutations`` <= 0."""
    if n_permutations <= 0:
        return _NAN, "none"
    xu, yu, n, cut = _unit(x), _unit(y), x.size, abs(r) - 1e-12
    if n <= 10 and math.factorial(n) <= n_permutations:
        null = xu[np.array(list(permutations(range(n))))] @ yu
        return float(np.mean(np.abs(null) >= cut)), "exact"
    rng, hits, done, chunk = np.random.default_rng(seed), 0, 0, max(1, 2_000_000 // n)
    while done < n_permutations:
        k = min(chunk, n_permutations - done)
        order = rng.permuted(np.tile(np.arange(n), (k, 1)), axis=1)
        hits += int(np.count_nonzero(np.abs(xu[order] @ yu) >= cut))
        done += k
    return (hits + 1) / (n_permutations + 1), "Monte Carlo"


def numeric_vector(values, name: str) -> np.ndarray:
    """``values`` (a 1-D sequence, array or tensor of numbers) as a float64 array. Raises TypeError, naming ``name``,
    for None, strings, mappings, sets and non-numeric entries; ValueError for another shape."""
    if values is None or isinstance(values, (str, bytes, dict, set)):
        raise TypeError(f"{name} must be a 1-D sequence of numbers, got {type(values).__name__}")
    if hasattr(values, "detach"):  # torch tensor
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 1-D sequence of numbers: {exc}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def holm_adjust(p_values) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values of a family: with the m finite p sorted ascending,
    p̃_(i) = min(1, max_{j ≤ i} (m − j + 1) p_(j)), returned in the input order. Rejecting where p̃ ≤ α controls the
    family-wise error rate at α under any dependence. NaN entries stay NaN and are not counted in m.

    p_values: a 1-D sequence of numbers in [0, 1] or NaN. Returns a float array of the same shape. Raises TypeError
    for non-numeric input, ValueError for another shape or a value outside [0, 1]."""
    p = numeric_vector(p_values, "p_values")
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError(f"p_values must lie in [0, 1] (or be NaN), got {p[finite & ((p < 0) | (p > 1))].tolist()}")
    out = np.full_like(p, np.nan)
    index = np.flatnonzero(finite)
    if index.size:
        order = index[np.argsort(p[index], kind="stable")]
        m = order.size
        stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out[order] = np.minimum(stepped, 1.0)
    return out
