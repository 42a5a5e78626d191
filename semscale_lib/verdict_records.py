"""The verdict records, the one CI rule and the plain-text pieces every verdict shares (re-exported by
:mod:`semscale_lib.verdicts`, where the rules are documented)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["VERDICTS", "VerdictRecord", "PairedVerdict", "CorrelationVerdict", "DependentCorrelationVerdict",
           "PooledVerdict", "verdict_from_ci", "format_ci", "summarize", "underpowered", "power_texts"]

VERDICTS = ("held", "contradicted", "inconclusive", "not testable")
NAN = float("nan")


@dataclass(frozen=True, kw_only=True)
class VerdictRecord:
    """Fields common to every verdict. ``estimate``, ``ci_low``, ``ci_high`` are in the inputs' units (accuracy gain)
    or unitless (correlations); NaN where undefined. ``confidence`` is a fraction (0.95).

    ``detectable_effect``: the smallest effect (estimate's units, > 0) the design detects with probability ``power``
    (the target, a fraction) at level 1 − ``confidence``; NaN when it cannot be computed, inf when nothing is.
    ``paper_effect``: the paper's figure the power is judged against (estimate's units; the margin of a
    "negligible gain" claim) or None. ``reason``: why the verdict is "not testable" (or the failed premise), else
    None. ``p_value``: for the record's own null (NaN where undefined)."""
    kind: str
    verdict: str
    n: int
    estimate: float
    ci_low: float
    ci_high: float
    confidence: float
    rule: str
    sentence: str
    p_value: float = NAN
    detectable_effect: float = NAN
    power: float = 0.8
    paper_effect: float | None = None
    reason: str | None = None

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict:
        """Plain-Python dict; NaN and +-inf become None, tuples become lists."""
        return {key: _jsonable(value) for key, value in asdict(self).items()}


@dataclass(frozen=True, kw_only=True)
class PairedVerdict(VerdictRecord):
    """Adds per-arm means, the SD of the paired differences, the p-value and the paper comparison. ``p_value``:
    the two-sided paired-t p ("paired"), or the one-sided p of H0 "gain ≥ margin" ("negligible gain")."""
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


@dataclass(frozen=True, kw_only=True)
class PooledVerdict(VerdictRecord):
    """``estimate`` is a pooled r over ``n`` = k studies. Adds the pooled z's standard error, I² (fraction), the
    interval ("normal" or "hk") and its t df (None for normal)."""
    se_z: float
    i2: float
    interval: str
    df: int | None


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


# ------------------------------------------------------------------------------------------- input checks
def vector(values, name: str) -> np.ndarray:
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


def vectors(**named) -> list[np.ndarray]:
    arrays = [vector(v, k) for k, v in named.items()]
    if len({a.size for a in arrays}) > 1:
        shapes = ", ".join(f"{k} {a.shape}" for k, a in zip(named, arrays))
        raise ValueError(f"inputs must have the same length (paired by position), got {shapes}")
    return arrays


def check_confidence(confidence: float) -> str:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return f"{100 * confidence:g} %"


def check_power(power: float) -> str:
    if isinstance(power, bool) or not isinstance(power, (int, float, np.floating)) or not 0.0 < power < 1.0:
        raise ValueError(f"power must lie in (0, 1), got {power!r}")
    return f"{100 * power:g} %"


def check_paper_effect(value, name: str = "paper_effect") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number or None, got {value!r}")
    return float(value)


def constant(*named) -> list[str]:
    return [name for name, arr in named if np.all(arr == arr[0])]


def decimals(*values) -> int:
    """2 decimals, more when the numbers are small (a gain of 0.004 as a fraction prints as +0.0040)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    return 2 if not finite else min(4, max(2, 1 - math.floor(math.log10(max(finite)))))


def safe(function, *args, **kwargs) -> float:
    """``function(*args, **kwargs)``, or NaN when its inputs are out of its domain (ValueError)."""
    try:
        return function(*args, **kwargs)
    except (ValueError, ZeroDivisionError, OverflowError):
        return NAN


# -------------------------------------------------------------------------------------------------- power
def underpowered(verdict: str, detectable: float, paper_effect: float | None) -> bool:
    """The power rule: the CI decided nothing ("inconclusive"), a paper effect is given and its absolute value lies
    below the design's detectable effect (inf counts: then nothing is detectable)."""
    return (verdict == "inconclusive" and paper_effect is not None and not math.isnan(detectable)
            and abs(paper_effect) < detectable)


def power_texts(*, detectable: float, power: float, paper_effect: float | None, needed: float, unit: str,
                design: str, what: str, paper_label: str = "the paper reports", dec: int = 2) -> tuple[str, str]:
    """(reason, clause) of the power rule. reason: "underpowered: detects ≥ X, the paper reports Y; needs about N
    <unit>" (the N part only when ``needed`` is finite; Y unsigned after "the margin is"); clause: "<design> detect
    <what> ≥ X with P power" — e.g. "3 paired seeds detect a gain ≥ 6.10 with 80 % power". An infinite
    ``detectable`` (no possible effect reaches the power) reads "detects no <what> that is possible here"."""
    pct = check_power(power)
    signed = not paper_label.startswith("the margin")
    paper = "n/a" if paper_effect is None else f"{paper_effect:+g}" if signed else f"{paper_effect:g}"
    if math.isinf(detectable):
        reason = f"underpowered: detects no {what} that is possible here, {paper_label} {paper}"
        clause = f"{design} detect no {what} that is possible here with {pct} power"
    else:
        reason = f"underpowered: detects ≥ {detectable:.{dec}f}, {paper_label} {paper}"
        clause = f"{design} detect {what} ≥ {detectable:.{dec}f} with {pct} power"
    if math.isfinite(needed):
        reason += f"; needs about {int(needed)} {unit}"
    return reason, clause
