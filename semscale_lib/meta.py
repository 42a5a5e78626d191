"""Random-effects meta-analysis of correlations: one pooled r (with its CI and heterogeneity) from k studies.

Each study i reports a correlation r_i over n_i pairs (e.g. the per-class correlation of accuracy with a difficulty
measure, on one dataset / model / seed). On Fisher's z scale,

    z_i = atanh(r_i),   var(z_i) = 1 / (n_i − 3)

(Fisher 1921, "On the 'probable error' of a coefficient of correlation deduced from a small sample", Metron 1:3–32),
and the z_i are pooled with inverse-variance weights 1 / (var(z_i) + τ²), τ² the between-study variance:

* ``method="dl"``: DerSimonian & Laird (1986), "Meta-analysis in clinical trials", Controlled Clinical Trials
  7(3):177–188 — τ² = max(0, (Q − (k − 1)) / C), Q = Σ w_i (z_i − z̄_FE)², C = Σ w_i − Σ w_i² / Σ w_i, w_i = 1/var(z_i).
* ``method="pm"`` (alias ``"iterated"``): Paule & Mandel (1982), "Consensus values and weighting factors", J. Res.
  National Bureau of Standards 87(5):377–385 — τ² solves Σ (z_i − z̄(τ²))² / (var(z_i) + τ²) = k − 1 (0 if the left
  side is already below k − 1 at τ² = 0).

τ² and Q are statsmodels' (``statsmodels.stats.meta_analysis.combine_effects``, not re-implemented here), with one
correction: statsmodels returns the DerSimonian–Laird τ² *untruncated*, so negative when Q < k − 1 (its random-
effects weights and I² are then meaningless: negative weights, I² ≪ 0). We apply the published truncation at 0,
which makes the random-effects result the fixed-effect one. The pooled z is then Σ w_i z_i / Σ w_i.

I² = max(0, (Q − (k − 1)) / Q) (Higgins & Thompson 2002, "Quantifying heterogeneity in a meta-analysis", Statistics in
Medicine 21:1539–1558), from Cochran's Q for both methods; q_p = P(χ²_{k−1} ≥ Q). The CI is on the z scale,
back-transformed, with one of two intervals (``interval=``):

* ``"normal"`` (the default): z ± z_{(1+c)/2} · se_z, se_z² = 1 / Σ w_i, w_i = 1/(var(z_i) + τ²); p from the normal.
* ``"hk"``: Hartung & Knapp (2001), "On tests of the overall treatment effect in meta-analysis with normally
  distributed responses", Statistics in Medicine 20:1771–1782 (also Sidik & Jonkman 2002): z ± t_{k−1,(1+c)/2} · se,
  se² = max(1, q) / Σ w_i with q = Σ w_i (z_i − ẑ)² / (k − 1). The max(1, ·) is the modification of Knapp & Hartung
  (2003) recommended by Röver, Knapp & Friede (2015, BMC Med. Res. Methodol. 15:99): the plain HK interval (q < 1
  allowed) can be *narrower* than the normal one when the studies agree more than chance allows, and has zero width when
  all z_i are equal, which two or three studies often do by chance. IntHout, Ioannidis & Borm (2014, BMC Med. Res.
  Methodol. 14:25) show the t-based interval keeps its level at small k where the normal one does not. Where q ≥ 1
  it equals statsmodels' ``combine_effects(..., use_t=True)`` random-effects HKSJ interval. p from t_{k−1}.

Studies that are not independent (the same dataset's classes and test images under two settings or two models) are
pooled in two levels by :func:`pooled_correlation_by_group`: within a group, the mean z with the variance that
assumes the group's studies perfectly correlated, (mean of their standard errors)² — conservative: it never
understates the group's uncertainty — then the groups by random effects, with the HK interval on (groups − 1) df.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .inference import numeric_vector

__all__ = ["MetaResult", "pooled_correlation", "pooled_correlation_by_group", "R_CLIP", "INTERVALS"]

R_CLIP = 1.0 - 1e-12  # |r| is clipped to this before atanh (|r| = 1 would give z = ±inf)
_METHODS = {"dl": "dl", "pm": "pm", "iterated": "pm"}
_PM_OPTIONS = dict(atol=1e-12, maxiter=500)  # Paule–Mandel: tolerance on the estimating equation (default 1e-5)
INTERVALS = ("normal", "hk")


@dataclass(frozen=True, eq=False)
class MetaResult:
    """Pooled correlation from :func:`pooled_correlation` or :func:`pooled_correlation_by_group`.

    estimate, ci_low, ci_high: pooled r and its CI (back-transformed from z); z, se_z: pooled Fisher z and its standard
    error (the Hartung–Knapp one, max(1, q) / Σ w, with ``interval="hk"``); tau2: between-study variance on the z
    scale (≥ 0); i2: Higgins' I² in [0, 1]; q, q_p: Cochran's Q and its χ²_{k−1} p-value; k: number of studies (of
    groups, when pooled by group); method: "dl" or "pm"; confidence: the CI's level.
    studies: one row per study — label, r, n, z, var_z, ci_low, ci_high (the study's own r CI), weight (its random-
    effects weight, normalised to sum to 1; by group: its group's weight shared equally), and group when pooled by
    group. interval: "normal" or "hk"; df: the t df (k − 1) of an "hk" interval, None for "normal"; hk_q: the HK
    scale q = Σ w_i (z_i − ẑ)² / (k − 1) before max(1, ·) (NaN for "normal"); p_value: two-sided p of pooled z = 0
    (normal, or t on df); groups: one row per group (group, studies, r, z, var_z, ci_low, ci_high, weight) when
    pooled by group, else None.
    """
    estimate: float
    ci_low: float
    ci_high: float
    z: float
    se_z: float
    tau2: float
    i2: float
    q: float
    q_p: float
    k: int
    method: str
    confidence: float
    studies: pd.DataFrame = field(repr=False)
    interval: str = "normal"
    df: int | None = None
    hk_q: float = float("nan")
    p_value: float = float("nan")
    groups: pd.DataFrame | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """Scalars as plain floats / ints / str, ``studies`` (and ``groups``) as lists of row dicts."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in ("studies", "groups")}
        out["studies"] = self.studies.to_dict(orient="records")
        out["groups"] = None if self.groups is None else self.groups.to_dict(orient="records")
        return out


def _labels(labels, k: int, name: str = "labels") -> list:
    if labels is None:
        return list(range(k))
    if isinstance(labels, (str, bytes)):
        raise TypeError(f"{name} must be a sequence with one label per study, got a string")
    labels = list(labels)
    if len(labels) != k:
        raise ValueError(f"{name} must have one entry per study: {k} studies, {len(labels)} {name}")
    return labels


def _studies_input(r, n, method, confidence, interval, minimum: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Checked (r, n, method); ``minimum``: the fewest studies allowed."""
    rv, nv = numeric_vector(r, "r"), numeric_vector(n, "n")
    if len(nv) != len(rv):
        raise ValueError(f"n must have one entry per study: {len(rv)} correlations r, {len(nv)} sizes n")
    if len(rv) < minimum:
        raise ValueError(f"r: a meta-analysis needs at least {minimum} studies, got {len(rv)}")
    if not np.all(np.isfinite(rv)):
        raise ValueError(f"r contains NaN or inf (studies {np.flatnonzero(~np.isfinite(rv)).tolist()})")
    if np.any(np.abs(rv) > 1):
        raise ValueError(f"r must lie in [-1, 1] (studies {np.flatnonzero(np.abs(rv) > 1).tolist()})")
    if not np.all(np.isfinite(nv)) or np.any(nv <= 3):
        bad = np.flatnonzero(~(np.isfinite(nv) & (nv > 3))).tolist()
        raise ValueError(f"n must be > 3 in every study (Fisher z has variance 1/(n − 3)); offending studies {bad}")
    if not isinstance(method, str) or method.lower() not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    return rv, nv, _METHODS[method.lower()]


def _pool(z: np.ndarray, var_z: np.ndarray, labels: list, method: str, confidence: float, interval: str) -> dict:
    """Random-effects pooling of (k,) Fisher z with (k,) variances: the MetaResult scalars plus the (k,) study CI
    bounds on the z scale and the normalised weights."""
    from statsmodels.stats.meta_analysis import combine_effects  # heavy import, only when used

    k, alpha = len(z), 1.0 - confidence
    kwargs = _PM_OPTIONS if method == "pm" else {}
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # statsmodels' untruncated DL τ² < 0 → sqrt of negatives
        res = combine_effects(z, var_z, method_re=method, row_names=labels, use_t=False, alpha=alpha, **kwargs)
        study_low, study_high = res.conf_int_samples(alpha=alpha, use_t=False)
    tau2 = float(res.tau2)
    if tau2 <= 0:  # DL truncation at 0 (and PM's τ² = 0): the random-effects model is the fixed-effect one
        tau2 = 0.0
    w = 1.0 / (var_z + tau2)
    mean = float(w @ z / w.sum())
    if method == "pm":  # statsmodels drops its convergence flag: check the estimating equation ourselves
        residual = float(w @ (z - mean) ** 2) - (k - 1)
        if (abs(residual) if tau2 > 0 else residual) > 1e-6 * (k - 1):
            warnings.warn(f"Paule–Mandel τ² did not converge (estimating equation off by {residual:.3g})",
                          RuntimeWarning, stacklevel=3)
    se, df, hk_q = math.sqrt(1.0 / w.sum()), None, float("nan")
    if interval == "hk":
        df = k - 1
        hk_q = float(w @ (z - mean) ** 2) / df
        se *= math.sqrt(max(1.0, hk_q))
        crit = float(stats.t.ppf(1 - alpha / 2, df))
        p_value = float(2 * stats.t.sf(abs(mean) / se, df))
    else:
        crit = float(stats.norm.ppf(1 - alpha / 2))
        p_value = float(2 * stats.norm.sf(abs(mean) / se))
    q = max(float(res.q), 0.0)  # statsmodels' Σwz² − (Σwz)²/Σw can round to a tiny negative number
    i2 = min(max((q - (k - 1)) / q, 0.0), 1.0) if q > 0 else 0.0
    return dict(estimate=math.tanh(mean), ci_low=math.tanh(mean - crit * se), ci_high=math.tanh(mean + crit * se),
                z=mean, se_z=se, tau2=tau2, i2=float(i2), q=q, q_p=float(stats.chi2.sf(q, k - 1)), k=k,
                method=method, confidence=float(confidence), interval=interval, df=df, hk_q=hk_q,
                p_value=p_value, study_low=np.asarray(study_low, dtype=np.float64),
                study_high=np.asarray(study_high, dtype=np.float64), weight=w / w.sum())


def pooled_correlation(r, n, *, method: str = "dl", labels=None, confidence: float = 0.95,
                       interval: str = "normal") -> MetaResult:
    """Random-effects pooled correlation of k ≥ 2 studies (module docstring: formulas and sources).

    r: (k,) correlations in [−1, 1] (|r| clipped to 1 − 1e-12 before atanh); n: (k,) pairs behind each r, all > 3
    (real numbers allowed, e.g. an effective n); method: "dl" (DerSimonian–Laird, default) or "pm" / "iterated"
    (Paule–Mandel); labels: (k,) study names (default 0..k−1); confidence: the CI level (default 0.95); interval:
    "normal" (default) or "hk" (Hartung–Knapp t on k − 1 df with max(1, q)).
    Raises ValueError naming the argument for NaN / out-of-range r, n ≤ 3, lengths that differ, k < 2, an unknown
    method or interval; TypeError for non-numeric input.
    """
    rv, nv, method = _studies_input(r, n, method, confidence, interval, minimum=2)
    labels = _labels(labels, len(rv))
    z = np.arctanh(np.clip(rv, -R_CLIP, R_CLIP))
    var_z = 1.0 / (nv - 3.0)
    pooled = _pool(z, var_z, labels, method, confidence, interval)
    studies = pd.DataFrame({"label": labels, "r": rv, "n": nv, "z": z, "var_z": var_z,
                            "ci_low": np.tanh(pooled.pop("study_low")), "ci_high": np.tanh(pooled.pop("study_high")),
                            "weight": pooled.pop("weight")})
    return MetaResult(**pooled, studies=studies)


def pooled_correlation_by_group(r, n, groups, *, method: str = "dl", labels=None, confidence: float = 0.95,
                                interval: str = "hk") -> MetaResult:
    """Two-level pooling of studies that are not independent: studies sharing a group (a dataset — the same
    classes and test images) are combined first, the G ≥ 2 groups are then pooled by random effects.

    Within group g: z_g = mean of its studies' Fisher z, var_g = (mean of their standard errors 1/√(n_i − 3))², the
    variance of that mean if the studies were perfectly correlated — conservative, as their real correlation is
    unknown. The groups are pooled as :func:`pooled_correlation` pools studies, by default with the Hartung–Knapp
    interval on G − 1 df. r, n, labels: (k,) per study as in :func:`pooled_correlation`; groups: (k,) group keys
    (any hashable; order of first appearance is kept). Returns a :class:`MetaResult` with k = G, one ``studies``
    row per study (with its group; weight = its group's weight shared equally among the group's studies) and one
    ``groups`` row per group. Raises ValueError for fewer than 2 groups or the input errors of
    :func:`pooled_correlation`.
    """
    rv, nv, method = _studies_input(r, n, method, confidence, interval, minimum=1)
    labels = _labels(labels, len(rv))
    keys = _labels(groups, len(rv), "groups")
    order = list(dict.fromkeys(keys))
    if len(order) < 2:
        raise ValueError(f"groups: pooling by group needs at least 2 groups, got {len(order)} ({order})")
    z = np.arctanh(np.clip(rv, -R_CLIP, R_CLIP))
    se = 1.0 / np.sqrt(nv - 3.0)
    member = np.array([order.index(key) for key in keys])
    sizes = np.bincount(member, minlength=len(order))
    z_g = np.bincount(member, weights=z) / sizes
    var_g = (np.bincount(member, weights=se) / sizes) ** 2
    pooled = _pool(z_g, var_g, order, method, confidence, interval)
    weight = pooled.pop("weight")
    table = pd.DataFrame({"group": order, "studies": sizes, "r": np.tanh(z_g), "z": z_g, "var_z": var_g,
                          "ci_low": np.tanh(pooled.pop("study_low")), "ci_high": np.tanh(pooled.pop("study_high")),
                          "weight": weight})
    crit = stats.norm.ppf((1 + confidence) / 2)
    studies = pd.DataFrame({"label": labels, "group": keys, "r": rv, "n": nv, "z": z, "var_z": se**2,
                            "ci_low": np.tanh(z - crit * se), "ci_high": np.tanh(z + crit * se),
                            "weight": weight[member] / sizes[member]})
    return MetaResult(**pooled, studies=studies, groups=table)
