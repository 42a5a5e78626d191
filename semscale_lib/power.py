"""Power of the suite's designs: the smallest effect a design detects, and the size it needs for a given effect.

All tests are two-sided at level α (default 0.05) and the target power is 1 − β (default 0.8); z_x is the standard
normal quantile, t_{x,ν} Student's on ν df. One function pair per kind of verdict in :mod:`semscale_lib.verdicts`:

* a correlation over n pairs (Fisher z, Cohen 1988, ch. 3): ρ_min = tanh((z_{1−α/2} + z_{1−β}) / √(n − 3)), and
  n = ⌈((z_{1−α/2} + z_{1−β}) / atanh ρ)² + 3⌉;
* a paired gain over n seeds whose paired differences have standard deviation sd: the exact power of the two-sided
  paired (one-sample) t test from the noncentral t with noncentrality δ√n / sd on n − 1 df (Cohen 1988, ch. 2;
  the G*Power computation, Faul et al. 2007); the detectable δ and the needed n are found from it;
* the difference r_ya − r_yb of two correlations sharing y (Williams' t / Zou's CI): z_ya − z_yb has asymptotic
  variance 2 (1 − c) / (n − 3), c the correlation of the two estimates (Steiger 1980, eq. 3; evaluated at the
  alternative r_ya, with r_yb and r_ab held fixed);
* a random-effects pooled correlation with standard error se_z on the z scale:
  ρ_min = tanh((q_{1−α/2} + q_{1−β}) se_z), q the normal quantile, or Student's on k − 1 df for a t-based
  (Hartung–Knapp) interval — an approximation there, as the Hartung–Knapp variance is itself estimated.

The "negligible gain" claim (held when the whole CI of a paired gain lies below a margin) uses
:func:`detectable_paired_gain` too: with a true gain of 0, the CI's upper end falls below a margin δ with the target
power exactly when δ is at least the detectable paired gain — up to the opposite tail of the two-sided power,
below 1e-3 of power at every n ≥ 2 — so the detectable effect of that claim is the smallest margin it can show.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize, stats

from .inference import estimates_correlation

__all__ = ["detectable_correlation", "correlation_sample_size", "paired_t_power", "detectable_paired_gain",
           "paired_sample_size", "detectable_correlation_difference", "correlation_difference_sample_size",
           "pooled_se_z", "detectable_pooled_correlation", "pooled_sample_size"]

_EPS = 1e-9  # slack for ceil() of a size that is an integer up to rounding


def _probability(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


def _level(alpha: float, power: float) -> float:
    """z_{1−α/2} + z_{power}, after checking 0 < α < 1 and α/2 < power < 1."""
    alpha, power = _probability(alpha, "alpha"), _probability(power, "power")
    if power <= alpha / 2:
        raise ValueError(f"power must exceed alpha / 2 (a test's power at no effect), got power {power}, "
                         f"alpha {alpha}")
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def _number(value, name: str, *, low: float | None = None, high: float | None = None, closed: bool = False
            ) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low if closed else value <= low):
        raise ValueError(f"{name} must be {'≥' if closed else '>'} {low:g}, got {value:g}")
    if high is not None and value >= high:
        raise ValueError(f"{name} must be < {high:g}, got {value:g}")
    return value


def _size(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    return int(value)


# ------------------------------------------------------------------------------------------------ correlation
def detectable_correlation(n: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest ρ > 0 that a two-sided test of ρ = 0 over ``n`` pairs (n > 3; a real number allowed) detects with
    ``power``: tanh((z_{1−α/2} + z_power) / √(n − 3)) (Fisher z; Cohen 1988, ch. 3). Unitless."""
    q = _level(alpha, power)
    n = _number(n, "n", low=3)
    return math.tanh(q / math.sqrt(n - 3))


def correlation_sample_size(rho: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Pairs needed to detect a correlation ``rho`` (0 < |rho| < 1) with ``power``:
    ⌈((z_{1−α/2} + z_power) / atanh |rho|)² + 3⌉ (Fisher z; Cohen 1988, ch. 3)."""
    q = _level(alpha, power)
    rho = abs(_number(rho, "rho", low=-1, high=1))
    if rho == 0:
        raise ValueError("rho must be non-zero: no sample size detects a zero correlation")
    return math.ceil((q / math.atanh(rho)) ** 2 + 3 - _EPS)


# ------------------------------------------------------------------------------------------------ paired gain
def _t_upper_tail(c: float, df: int, nc: float) -> float:
    """P(T > c) for T noncentral t(df, nc). scipy's nct can return NaN far in a tail; then the same probability
    is integrated directly: P(Z + nc > c S), S = √(χ²_df / df), i.e. E_S[Φ(nc − c S)]."""
    value = float(stats.nct.sf(c, df, nc))
    if math.isfinite(value):
        return value
    chi = stats.chi(df, scale=1 / math.sqrt(df))
    value, _ = integrate.quad(lambda s: stats.norm.cdf(nc - c * s) * chi.pdf(s), 0, np.inf, limit=200)
    return float(min(max(value, 0.0), 1.0))


def paired_t_power(delta: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Exact power of the two-sided paired t test at level ``alpha`` when the mean paired difference is ``delta``
    and the differences have standard deviation ``sd`` (same units), over ``n`` ≥ 2 pairs:
    P(|T| > t_{1−α/2, n−1}), T noncentral t on n − 1 df with noncentrality δ√n / sd (scipy.stats.nct)."""
    alpha = _probability(alpha, "alpha")
    delta = _number(delta, "delta")
    sd = _number(sd, "sd", low=0)
    n = _size(n, "n", 2)
    df, nc = n - 1, delta * math.sqrt(n) / sd
    c = float(stats.t.ppf(1 - alpha / 2, df))
    # P(T < −c; nc) = P(T > c; −nc): both tails through sf, which scipy computes where nct.cdf(−c) can give NaN
    return min(_t_upper_tail(c, df, nc) + _t_upper_tail(c, df, -nc), 1.0)


def detectable_paired_gain(n: int, sd: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest mean paired difference δ > 0 (units of ``sd``) that the two-sided paired t test over ``n`` ≥ 2 pairs
    detects with ``power``: the root of :func:`paired_t_power` (δ, sd, n, α) = power. Also the smallest margin
    a "negligible gain" claim can show with that power when the true gain is 0 (module docstring)."""
    _level(alpha, power)
    n = _size(n, "n", 2)
    sd = _number(sd, "sd", low=0)
    excess = lambda d: paired_t_power(d, 1.0, n, alpha) - power   # noqa: E731 (δ in units of sd)
    high = max(_level(alpha, power) / math.sqrt(n), 1e-3)
    while excess(high) < 0:
        high *= 2
    return sd * optimize.brentq(excess, 0.0, high, xtol=1e-12, rtol=1e-10)


def paired_sample_size(delta: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Smallest number of pairs n ≥ 2 whose two-sided paired t test detects a mean difference ``delta`` (≠ 0) with
    ``power`` when the differences have standard deviation ``sd`` (same units): exact, from :func:`paired_t_power`
    (G*Power's "means: difference from constant (one sample case)"). The normal-theory n,
    ((z_{1−α/2} + z_power) sd / δ)², is a lower bound (the t test is less powerful) and starts the search."""
    q = _level(alpha, power)
    delta = abs(_number(delta, "delta"))
    sd = _number(sd, "sd", low=0)
    if delta == 0:
        raise ValueError("delta must be non-zero: no number of pairs detects a zero gain")
    normal = (q * sd / delta) ** 2
    if normal > 1e7:   # the t and normal tests agree to far below one pair here
        return math.ceil(normal - _EPS)
    n = max(2, math.floor(normal))
    while paired_t_power(delta, sd, n, alpha) < power:
        n += 1
    return n


# ------------------------------------------------------------------------------------- dependent correlations
def _check_triple(r_yb: float, r_ab: float) -> tuple[float, float]:
    return _number(r_yb, "r_yb", low=-1, high=1), _number(r_ab, "r_ab", low=-1, high=1)


def _difference_z(r_ya: float, r_yb: float, r_ab: float, n: float) -> float:
    """(atanh r_ya − atanh r_yb) / √(2 (1 − c) / (n − 3)), c evaluated at (r_ya, r_yb, r_ab)."""
    spread = 2 * (1 - estimates_correlation(r_ya, r_yb, r_ab))
    gap = math.atanh(r_ya) - math.atanh(r_yb)
    return math.inf if spread <= 0 else gap * math.sqrt((n - 3) / spread)


def detectable_correlation_difference(n: float, r_yb: float, r_ab: float, alpha: float = 0.05,
                                      power: float = 0.8) -> float:
    """Smallest r_ya − r_yb (> 0, unitless) that a two-sided test of r_ya = r_yb over ``n`` > 3 triples detects
    with ``power``, given r(y, b) = ``r_yb`` and r(a, b) = ``r_ab``: the smallest d with
    (atanh(r_yb + d) − atanh r_yb) / √(2 (1 − c) / (n − 3)) ≥ z_{1−α/2} + z_power, c = the correlation of the two
    estimates at r_ya = r_yb + d (Steiger 1980, eq. 3). r_ya ranges up to the largest value that keeps the 3 × 3
    correlation matrix positive semi-definite, r_yb r_ab + √((1 − r_yb²)(1 − r_ab²)); ``inf`` when no r_ya in that
    range reaches the power."""
    q = _level(alpha, power)
    n = _number(n, "n", low=3)
    r_yb, r_ab = _check_triple(r_yb, r_ab)
    top = min(r_yb * r_ab + math.sqrt(max((1 - r_yb**2) * (1 - r_ab**2), 0.0)), 1 - 1e-12)
    span = top - r_yb
    if span <= 1e-12:
        return math.inf
    excess = lambda d: _difference_z(r_yb + d, r_yb, r_ab, n) - q   # noqa: E731
    grid = span * np.linspace(0, 1, 513)[1:]
    values = np.array([excess(d) for d in grid])
    hits = np.flatnonzero(values >= 0)
    if not hits.size:
        return math.inf
    first = hits[0]
    low = grid[first - 1] if first else span * 1e-12
    return float(optimize.brentq(excess, low, grid[first], xtol=1e-14, rtol=1e-12))


def correlation_difference_sample_size(r_ya: float, r_yb: float, r_ab: float, alpha: float = 0.05,
                                       power: float = 0.8) -> int:
    """Triples n needed to detect r_ya ≠ r_yb with ``power`` when the two correlations share y and r(a, b) =
    ``r_ab``: ⌈2 (1 − c)(z_{1−α/2} + z_power)² / (atanh r_ya − atanh r_yb)² + 3⌉, at least 4; c as in
    :func:`detectable_correlation_difference`. Raises ValueError unless the three form a valid correlation matrix
    and r_ya ≠ r_yb."""
    q = _level(alpha, power)
    r_ya = _number(r_ya, "r_ya", low=-1, high=1)
    r_yb, r_ab = _check_triple(r_yb, r_ab)
    if r_ya == r_yb:
        raise ValueError("r_ya must differ from r_yb: no sample size detects a zero difference")
    if 1 - r_ya**2 - r_yb**2 - r_ab**2 + 2 * r_ya * r_yb * r_ab < -1e-12:
        raise ValueError(f"r_ya = {r_ya:g}, r_yb = {r_yb:g}, r_ab = {r_ab:g} are not the correlations of three "
                         "variables (the correlation matrix is not positive semi-definite)")
    spread = 2 * (1 - estimates_correlation(r_ya, r_yb, r_ab))
    return max(4, math.ceil(spread * (q / (math.atanh(r_ya) - math.atanh(r_yb))) ** 2 + 3 - _EPS))


# -------------------------------------------------------------------------------------- pooled correlation
def pooled_se_z(n, tau2: float = 0.0) -> float:
    """Standard error of a random-effects pooled Fisher z over studies of ``n`` (k,) pairs each (all > 3) with
    between-study variance ``tau2`` ≥ 0 (z scale): 1 / √Σ 1 / (1/(n_i − 3) + τ²) (DerSimonian & Laird 1986)."""
    try:
        sizes = np.asarray(n, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"n must be a 1-D sequence of numbers: {exc}") from None
    if sizes.ndim != 1 or sizes.size == 0:
        raise ValueError(f"n must be a non-empty 1-D sequence, got shape {sizes.shape}")
    if not np.all(np.isfinite(sizes) & (sizes > 3)):
        raise ValueError(f"n must be > 3 in every study, got {sizes.tolist()}")
    tau2 = _number(tau2, "tau2", low=0, closed=True)
    return float(1 / math.sqrt(np.sum(1 / (1 / (sizes - 3) + tau2))))


def _quantiles(alpha: float, power: float, df) -> float:
    _level(alpha, power)
    if df is None:
        return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    df = _number(df, "df", low=0)
    return float(stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df))


def detectable_pooled_correlation(se_z: float, alpha: float = 0.05, power: float = 0.8, *, df=None) -> float:
    """Smallest pooled ρ > 0 that a pooled Fisher z with standard error ``se_z`` (> 0) detects with ``power``:
    tanh((q_{1−α/2} + q_power) se_z), q normal quantiles, or Student's t on ``df`` (k − 1 for a Hartung–Knapp
    interval over k studies; approximate there, see the module docstring)."""
    q = _quantiles(alpha, power, df)
    return math.tanh(q * _number(se_z, "se_z", low=0))


def pooled_sample_size(rho: float, study_var_z: float, alpha: float = 0.05, power: float = 0.8, *,
                       t_based: bool = False) -> int:
    """Studies k ≥ 2, each with variance ``study_var_z`` on the z scale (1/(n − 3) + τ² for n pairs and
    between-study variance τ²), needed for a pooled correlation ``rho`` (0 < |rho| < 1) to be detected with
    ``power``: the smallest k with tanh(q · √(study_var_z / k)) ≤ |rho|, q = q_{1−α/2} + q_power on the normal, or
    with ``t_based`` Student's t on k − 1 df."""
    q = _level(alpha, power)
    rho = abs(_number(rho, "rho", low=-1, high=1))
    if rho == 0:
        raise ValueError("rho must be non-zero: no number of studies detects a zero correlation")
    var = _number(study_var_z, "study_var_z", low=0)
    k = max(2, math.ceil(var * (q / math.atanh(rho)) ** 2 - _EPS))
    if t_based:
        while detectable_pooled_correlation(math.sqrt(var / k), alpha, power, df=k - 1) > rho:
            k += 1
    return k
