"""The one place where the suite's verdicts on the paper's claims are decided.

The four verdicts (:data:`VERDICTS`), all decided from a confidence interval by :func:`verdict_from_ci`:

* ``"held"`` -- the CI of the effect lies wholly above 0 (a gain, a positive correlation, r(y, a) > r(y, b)).
* ``"contradicted"`` -- the CI lies wholly below the contradiction bound: below 0 for a gain or a difference of
  correlations, below ``r_min`` for a single correlation ("the correlation is at most weak").
* ``"inconclusive"`` -- the CI straddles a threshold: the data are compatible with the claim *and* with its failure.
  An inconclusive result is never a refutation; more seeds or classes may settle it either way.
* ``"not testable"`` -- no CI can be formed: too few seeds / classes, or a constant variable.

Only the interval decides. A positive mean gain or a positive r is never a confirmation on its own, and a point estimate
of the wrong sign is never a refutation on its own. Every record carries the rule it applied (with its numbers) and one
plain sentence with the estimate and its CI, for reports; ``to_dict()`` gives a JSON-friendly form (NaN -> None).
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import asdict, dataclass
from itertools import permutations

import numpy as np
from scipy import stats

__all__ = ["VERDICTS", "VerdictRecord", "PairedVerdict", "CorrelationVerdict", "DependentCorrelationVerdict",
           "verdict_from_ci", "paired_verdict", "negligible_gain_verdict", "correlation_verdict",
           "dependent_correlation_verdict",
           "fisher_ci", "williams_t", "zou_ci", "summarize", "format_ci", "pooled_correlation_verdict"]

VERDICTS = ("held", "contradicted", "inconclusive", "not testable")
_NAN = float("nan")
_R_CLIP = 1.0 - 1e-12  # |r| = 1 would make atanh infinite


@dataclass(frozen=True, kw_only=True)
class VerdictRecord:
    """Fields common to every verdict. ``estimate``, ``ci_low``, ``ci_high`` are in the inputs' units (accuracy gain)
    or unitless (correlations); NaN where undefined. ``confidence`` is a fraction (0.95)."""
    kind: str
    verdict: str
    n: int
    estimate: float
    ci_low: float
    ci_high: float
    confidence: float
    rule: str
    sentence: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict:
        """Plain-Python dict; NaN and +-inf become None, tuples become lists."""
        return {key: _jsonable(value) for key, value in asdict(self).items()}


@dataclass(frozen=True, kw_only=True)
class PairedVerdict(VerdictRecord):
    """Adds per-arm means, the SD of the paired differences, the two-sided paired-t p and the paper comparison."""
    mean_baseline: float
    mean_treated: float
    sd_diff: float
    p_value: float
    paper_delta: float | None = None
    paper_comparison: str | None = None  # "inside the CI" | "above the CI" (ours smaller) | "below the CI" (larger)


@dataclass(frozen=True, kw_only=True)
class CorrelationVerdict(VerdictRecord):
    """``estimate`` is Pearson r. Adds Spearman rho, the permutation p and how it was obtained."""
    r_min: float
    spearman_rho: float
    p_value: float
    p_method: str  # "exact" (all n! orderings), "Monte Carlo" or "none"
    n_permutations: int
    seed: int


@dataclass(frozen=True, kw_only=True)
class DependentCorrelationVerdict(VerdictRecord):
    """``estimate`` is r(y, a) - r(y, b). Adds the three correlations and Williams' t with its df and p."""
    r_ya: float
    r_yb: float
    r_ab: float
    williams_t: float
    df: int
    p_value: float


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_, str)) or value is None:
        return value if not isinstance(value, np.bool_) else bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def verdict_from_ci(ci_low, ci_high, *, lower_bound_for_contradiction: float = 0.0) -> str:
    """The one rule. "not testable" if a bound is NaN; "contradicted" if ``ci_high < lower_bound_for_contradiction``;
    else "held" if ``ci_low > 0``; else "inconclusive". Inequalities are strict (a CI touching the bound is
    inconclusive). Contradiction is checked first: with a bound above 0 (``r_min``), a CI inside ``(0, r_min)`` is a
    demonstrably weak correlation and counts as "contradicted", not "held"."""
    low, high = float(ci_low), float(ci_high)
    if math.isnan(low) or math.isnan(high):
        return "not testable"
    if low > high:
        raise ValueError(f"ci_low ({low}) must not exceed ci_high ({high})")
    if high < lower_bound_for_contradiction:
        return "contradicted"
    return "held" if low > 0 else "inconclusive"


def format_ci(low, high, decimals: int = 2) -> str:
    """``"[+1.87, +2.13]"``; an undefined (NaN) bound prints as ``n/a``."""
    def one(v):
        return "n/a" if not math.isfinite(v) else f"{round(float(v), decimals) + 0.0:+.{decimals}f}"
    return f"[{one(low)}, {one(high)}]"


def summarize(records) -> dict:
    """Count per verdict, keys in :data:`VERDICTS` order. Accepts records, dicts with a "verdict" key, or strings."""
    counts = dict.fromkeys(VERDICTS, 0)
    for rec in records:
        verdict = rec if isinstance(rec, str) else rec["verdict"] if isinstance(rec, dict) else rec.verdict
        if verdict not in counts:
            raise ValueError(f"unknown verdict {verdict!r}; expected one of {VERDICTS}")
        counts[verdict] += 1
    return counts


def _vector(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold numbers, got non-numeric values") from exc
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per seed or class), got shape {arr.shape}")
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name} has NaN or infinite values at positions {bad.tolist()}")
    return arr


def _vectors(**named) -> list[np.ndarray]:
    arrays = [_vector(v, k) for k, v in named.items()]
    if len({a.size for a in arrays}) > 1:
        shapes = ", ".join(f"{k} {a.shape}" for k, a in zip(named, arrays))
        raise ValueError(f"inputs must have the same length (paired by position), got {shapes}")
    return arrays


def _check_confidence(confidence: float) -> str:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return f"{100 * confidence:g} %"


def _decimals(*values) -> int:
    """2 decimals, more when the numbers are small (a gain of 0.004 as a fraction prints as +0.0040)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    return 2 if not finite else min(4, max(2, 1 - math.floor(math.log10(max(finite)))))


def _unit(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean()
    return centred / np.linalg.norm(centred)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.clip(_unit(x) @ _unit(y), -1.0, 1.0))


def _constant(*named) -> list[str]:
    return [name for name, arr in named if np.all(arr == arr[0])]


def fisher_ci(r: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Fisher-z CI of a Pearson r from ``n`` pairs: tanh(atanh(r) +- z_{(1+c)/2} / sqrt(n - 3)); |r| is clipped just
    below 1 so a perfect correlation gives a (degenerate) finite interval. NaN for n < 4."""
    if n < 4 or not math.isfinite(r):
        return _NAN, _NAN
    z = math.atanh(float(np.clip(r, -_R_CLIP, _R_CLIP)))
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


def zou_ci(r_ya: float, r_yb: float, r_ab: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Zou's (2007) CI of r_ya - r_yb for two overlapping dependent correlations: the two Fisher-z intervals
    (l_i, u_i) are combined through c, the correlation between the two estimates (Zou 2007, p. 409):
    L = d - sqrt((r_ya-l1)^2 + (u2-r_yb)^2 - 2c(r_ya-l1)(u2-r_yb)),
    U = d + sqrt((u1-r_ya)^2 + (r_yb-l2)^2 - 2c(u1-r_ya)(r_yb-l2))."""
    (l1, u1), (l2, u2) = fisher_ci(r_ya, n, confidence), fisher_ci(r_yb, n, confidence)
    r1, r2 = (float(np.clip(r, -_R_CLIP, _R_CLIP)) for r in (r_ya, r_yb))
    c = ((r_ab - r1 * r2 / 2) * (1 - r1**2 - r2**2 - r_ab**2) + r_ab**3) / ((1 - r1**2) * (1 - r2**2))
    c = float(np.clip(c, -1.0, 1.0))
    d = r_ya - r_yb
    low = d - math.sqrt(max((r_ya - l1) ** 2 + (u2 - r_yb) ** 2 - 2 * c * (r_ya - l1) * (u2 - r_yb), 0.0))
    high = d + math.sqrt(max((u1 - r_ya) ** 2 + (r_yb - l2) ** 2 - 2 * c * (u1 - r_ya) * (r_yb - l2), 0.0))
    return low, high


def paired_verdict(baseline, treated, *, confidence: float = 0.95, min_n: int = 3,
                   paper_delta: float | None = None) -> PairedVerdict:
    """Does ``treated`` beat ``baseline``? Inputs: ``(n_seeds,)`` per-seed scores (e.g. top-1 %), paired by position.

    estimate = mean(treated - baseline), in the inputs' units; CI = paired t interval on n - 1 df. Fewer than ``min_n``
    pairs -> "not testable" (estimate still reported; CI NaN when n < 2). When every difference is equal the CI
    collapses to the estimate. ``paper_delta`` (same units) is placed relative to the CI in ``paper_comparison``.
    Raises ValueError on shape mismatch or non-finite values, TypeError on non-numeric input."""
    base, treat = _vectors(baseline=baseline, treated=treated)
    pct = _check_confidence(confidence)
    if paper_delta is not None and not math.isfinite(paper_delta):
        raise ValueError(f"paper_delta must be finite, got {paper_delta}")
    n, diff = base.size, treat - base
    est = float(diff.mean()) if n else _NAN
    sd = float(diff.std(ddof=1)) if n >= 2 else _NAN
    low = high = p = _NAN
    collapsed = n >= 2 and np.ptp(diff) <= 1e-12 * max(1.0, float(np.abs(diff).max()))
    if collapsed:
        low = high = est
    elif n >= 2:
        se = sd / math.sqrt(n)
        half = stats.t.ppf((1 + confidence) / 2, n - 1) * se
        low, high, p = est - half, est + half, float(2 * stats.t.sf(abs(est) / se, n - 1))
    verdict = verdict_from_ci(low, high) if n >= min_n else "not testable"
    rule = (f"held if the {pct} paired-t CI of mean(treated − baseline) lies above 0, "
            f"contradicted if it lies below 0, inconclusive otherwise; "
            f"not testable with fewer than {min_n} paired seeds")
    dec = _decimals(est, low, high, paper_delta)
    est_text = f"{est:+.{dec}f}" if n else "undefined"
    sentence = (f"Mean paired gain (treated − baseline) {est_text}, {pct} CI {format_ci(low, high, dec)}, "
                f"over n = {n} paired seeds: {verdict}")
    if n < min_n:
        sentence += f" (only {n} pairs, fewer than the {min_n} required)"
    elif collapsed:
        sentence += " (all differences are equal, so the CI collapses to the estimate)"
    comparison = None
    if paper_delta is not None and math.isfinite(low):
        comparison = ("inside the CI" if low <= paper_delta <= high
                      else "above the CI" if paper_delta > high else "below the CI")
        relation = {"inside the CI": "consistent with", "above the CI": "smaller than",
                    "below the CI": "larger than"}[comparison]
        sentence += f"; {relation} the paper's {paper_delta:+g} ({comparison})"
    return PairedVerdict(kind="paired", verdict=verdict, n=n, estimate=est, ci_low=low, ci_high=high,
                         confidence=confidence, rule=rule, sentence=sentence + ".",
                         mean_baseline=float(base.mean()) if n else _NAN,
                         mean_treated=float(treat.mean()) if n else _NAN,
                         sd_diff=sd, p_value=p, paper_delta=None if paper_delta is None else float(paper_delta),
                         paper_comparison=comparison)


def negligible_gain_verdict(before, after, *, margin: float, confidence: float = 0.95, min_n: int = 3,
                            failed_precondition: str | None = None) -> PairedVerdict:
    """Is the paired gain ``after − before`` negligible, i.e. below ``margin``? (Sec. 3.3: accuracy stops rising
    once Σ S′ has saturated.) Inputs ``(n_seeds,)`` paired by position; the CI is :func:`paired_verdict`'s.

    held if the whole CI of the gain lies below ``margin``; contradicted if it lies above ``margin``; inconclusive
    otherwise; fewer than ``min_n`` pairs → not testable. ``failed_precondition``: a sentence saying why the claim's
    premise failed on the data (e.g. Σ S′ never saturates) — then the verdict is "contradicted" whatever the
    gain."""
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number ≥ 0, got {margin}")
    base = paired_verdict(before, after, confidence=confidence, min_n=min_n)
    pct = _check_confidence(confidence)
    if failed_precondition:
        verdict = "contradicted"
    elif base.n < min_n:
        verdict = "not testable"
    else:
        verdict = verdict_from_ci(margin - base.ci_high, margin - base.ci_low)
    rule = (f"held if the {pct} paired-t CI of the gain lies below the margin {margin:g}, contradicted if it lies "
            f"above it (or if the premise fails), inconclusive otherwise; not testable with fewer than {min_n} "
            "paired seeds")
    dec = _decimals(base.estimate, base.ci_low, base.ci_high)
    est_text = f"{base.estimate:+.{dec}f}" if base.n else "undefined"
    sentence = (f"Mean paired gain {est_text}, {pct} CI {format_ci(base.ci_low, base.ci_high, dec)}, "
                f"over n = {base.n} seeds, against a margin of {margin:g}: {verdict}")
    if failed_precondition:
        sentence = f"{failed_precondition}: contradicted, whatever the gain after it"
    elif base.n < min_n:
        sentence += f" (only {base.n} pairs, fewer than the {min_n} required)"
    return dataclasses.replace(base, kind="negligible gain", verdict=verdict, rule=rule, sentence=sentence + ".")


def _permutation_p(x: np.ndarray, y: np.ndarray, r: float, n_permutations: int, seed: int) -> tuple[float, str]:
    """Two-sided p of |r| under random re-pairing: exact over all n! orderings when n! <= n_permutations, else
    Monte Carlo with the (hits + 1) / (B + 1) estimate."""
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


def correlation_verdict(x, y, *, confidence: float = 0.95, r_min: float = 0.3, n_permutations: int = 10000,
                        seed: int = 0) -> CorrelationVerdict:
    """Is y positively correlated with x? Inputs: ``(n_classes,)`` vectors paired by position (e.g. per-class
    semantic scale and per-class accuracy). estimate = Pearson r with a Fisher-z CI (:func:`fisher_ci`); the
    permutation p (seeded) and Spearman rho are reported but do not decide. Verdict by :func:`verdict_from_ci` with
    contradiction bound ``r_min``; n < 4 or a constant vector -> "not testable" (r NaN)."""
    xv, yv = _vectors(x=x, y=y)
    pct = _check_confidence(confidence)
    n = xv.size
    rule = (f"held if the {pct} Fisher-z CI of Pearson r lies above 0 (and not wholly below r_min = {r_min:g}); "
            f"contradicted if it lies wholly below r_min = {r_min:g} (the correlation is at most weak); "
            f"inconclusive otherwise; not testable when n < 4 or a variable is constant")
    common = dict(kind="correlation", n=n, confidence=confidence, rule=rule, r_min=float(r_min),
                  n_permutations=int(n_permutations), seed=int(seed))
    constant = _constant(("x", xv), ("y", yv)) if n else []
    if n < 4 or constant:
        why = f"n = {n} < 4" if n < 4 else f"{' and '.join(constant)} is constant"
        return CorrelationVerdict(verdict="not testable", estimate=_NAN, ci_low=_NAN, ci_high=_NAN,
                                  sentence=f"Pearson r is not testable: {why}.", spearman_rho=_NAN,
                                  p_value=_NAN, p_method="none", **common)
    r = _pearson(xv, yv)
    low, high = fisher_ci(r, n, confidence)
    rho = float(stats.spearmanr(xv, yv)[0])
    p, method = _permutation_p(xv, yv, r, n_permutations, seed)
    verdict = verdict_from_ci(low, high, lower_bound_for_contradiction=r_min)
    sentence = (f"Pearson r = {r:+.2f}, {pct} CI {format_ci(low, high)}, over n = {n} "
                f"(Spearman rho = {rho:+.2f}, permutation p = {p:.3g}): {verdict}")
    if verdict == "contradicted":
        sentence += f" — the correlation is at most weak: CI below r_min = {r_min:g}"
    return CorrelationVerdict(verdict=verdict, estimate=r, ci_low=low, ci_high=high, sentence=sentence + ".",
                              spearman_rho=rho, p_value=p, p_method=method, **common)


def dependent_correlation_verdict(y, a, b, *, confidence: float = 0.95) -> DependentCorrelationVerdict:
    """Does ``a`` track ``y`` better than ``b`` does, i.e. r(y, a) > r(y, b)? Inputs: ``(n_classes,)`` vectors paired
    by position (e.g. y = per-class accuracy, a = semantic scale, b = number of training images).

    The two correlations share y, so they are dependent and not comparable by two separate CIs. Williams' t
    (:func:`williams_t`; Steiger 1980 recommends it for this case) gives the p-value, and Zou's (2007) interval
    (:func:`zou_ci`) the CI of r_ya - r_yb. Both are closed-form and hold their level at small n; a bootstrap over
    the ~10 classes of CIFAR-10 would give intervals that are too narrow. estimate = r_ya - r_yb; verdict by
    :func:`verdict_from_ci` with bound 0; n < 4 or a constant column -> "not testable"."""
    yv, av, bv = _vectors(y=y, a=a, b=b)
    pct = _check_confidence(confidence)
    n = yv.size
    rule = (f"held if the {pct} Zou (2007) CI of r(y, a) − r(y, b) lies above 0, contradicted if it lies below 0, "
            f"inconclusive otherwise; not testable when n < 4 or a column is constant")
    common = dict(kind="dependent correlation", n=n, confidence=confidence, rule=rule, df=max(n - 3, 0))
    constant = _constant(("y", yv), ("a", av), ("b", bv)) if n else []
    if n < 4 or constant:
        why = f"n = {n} < 4" if n < 4 else f"{' and '.join(constant)} is constant"
        return DependentCorrelationVerdict(verdict="not testable", estimate=_NAN, ci_low=_NAN, ci_high=_NAN,
                                           sentence=f"r(y, a) − r(y, b) is not testable: {why}.", r_ya=_NAN,
                                           r_yb=_NAN, r_ab=_NAN, williams_t=_NAN, p_value=_NAN, **common)
    r_ya, r_yb, r_ab = _pearson(yv, av), _pearson(yv, bv), _pearson(av, bv)
    t, p = williams_t(r_ya, r_yb, r_ab, n)
    low, high = zou_ci(r_ya, r_yb, r_ab, n, confidence)
    est = r_ya - r_yb
    verdict = verdict_from_ci(low, high)
    dec = _decimals(est, low, high)
    sentence = (f"r(y, a) − r(y, b) = {est:+.{dec}f}, {pct} Zou CI {format_ci(low, high, dec)}, over n = {n} "
                f"(r(y, a) = {r_ya:+.2f}, r(y, b) = {r_yb:+.2f}, r(a, b) = {r_ab:+.2f}; Williams' t({n - 3}) = "
                f"{t:.2f}, p = {p:.3g}): {verdict}.")
    return DependentCorrelationVerdict(verdict=verdict, estimate=est, ci_low=low, ci_high=high, sentence=sentence,
                                       r_ya=r_ya, r_yb=r_yb, r_ab=r_ab, williams_t=t, p_value=p, **common)


def pooled_correlation_verdict(estimate: float, ci_low: float, ci_high: float, *, k: int, i2: float,
                               confidence: float = 0.95) -> VerdictRecord:
    """Our rule for "per-class accuracy rises with a predictor across studies" (notebook 06): a random-effects
    pooled Pearson r over ``k`` studies with its CI at ``confidence`` (the caller's, e.g. Bonferroni-adjusted)
    and heterogeneity ``i2`` (fraction) — :func:`verdict_from_ci`: held above 0, contradicted below 0,
    inconclusive otherwise; not testable when fewer than 2 studies define it (NaN bounds)."""
    pct = _check_confidence(confidence)
    rule = (f"random-effects (DerSimonian–Laird) pooled Pearson r over studies on Fisher z; held if its {pct} CI "
            "lies above 0, contradicted if below 0, inconclusive otherwise; not testable in < 2 studies")
    if k < 2:
        estimate = ci_low = ci_high = _NAN
    verdict = verdict_from_ci(ci_low, ci_high)
    if verdict == "not testable":
        sentence = f"defined in {k} studies: not testable."
    else:
        sentence = (f"pooled r = {estimate:+.2f}, {pct} CI {format_ci(ci_low, ci_high)} over {k} studies "
                    f"(I² = {100 * i2:.0f} %): {verdict}.")
    return VerdictRecord(kind="pooled correlation", verdict=verdict, n=int(k), estimate=float(estimate),
                         ci_low=float(ci_low), ci_high=float(ci_high), confidence=confidence, rule=rule,
                         sentence=sentence)
