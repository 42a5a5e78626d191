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

The arithmetic is statsmodels' ``statsmodels.stats.meta_analysis.combine_effects`` (not re-implemented here), with
one correction: statsmodels returns the DerSimonian–Laird τ² *untruncated*, so negative when Q < k − 1 (its random-
effects weights and I² are then meaningless: negative weights, I² ≪ 0). We apply the published truncation at 0,
which makes the random-effects result equal statsmodels' own fixed-effect result, and take that.

I² = max(0, (Q − (k − 1)) / Q) (Higgins & Thompson 2002, "Quantifying heterogeneity in a meta-analysis", Statistics in
Medicine 21:1539–1558), from Cochran's Q for both methods; q_p = P(χ²_{k−1} ≥ Q). The CI is normal-theory on the z
scale, back-transformed: tanh(z ± z_{(1+c)/2} · se_z) (no Hartung–Knapp adjustment).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["MetaResult", "pooled_correlation", "R_CLIP"]

R_CLIP = 1.0 - 1e-12  # |r| is clipped to this before atanh (|r| = 1 would give z = ±inf)
_METHODS = {"dl": "dl", "pm": "pm", "iterated": "pm"}
_PM_OPTIONS = dict(atol=1e-12, maxiter=500)  # Paule–Mandel: tolerance on the estimating equation (default 1e-5)


@dataclass(frozen=True, eq=False)
class MetaResult:
    """Pooled correlation from :func:`pooled_correlation`.

    estimate, ci_low, ci_high: pooled r and its CI (back-transformed from z); z, se_z: pooled Fisher z and its standard
    error; tau2: between-study variance on the z scale (≥ 0); i2: Higgins' I² in [0, 1]; q, q_p: Cochran's Q and its
    χ²_{k−1} p-value; k: number of studies; method: "dl" or "pm"; confidence: the CI's level.
    studies: one row per study — label, r, n, z, var_z, ci_low, ci_high (the study's own r CI), weight (its random-
    effects weight, normalised to sum to 1).
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

    def to_dict(self) -> dict:
        """Scalars as plain floats / ints / str, ``studies`` as a list of row dicts."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "studies"}
        out["studies"] = self.studies.to_dict(orient="records")
        return out


def _vector(values, name: str) -> np.ndarray:
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


def pooled_correlation(r, n, *, method: str = "dl", labels=None, confidence: float = 0.95) -> MetaResult:
    """Random-effects pooled correlation of k ≥ 2 studies (module docstring: formulas and sources).

    r: (k,) correlations in [−1, 1] (|r| clipped to 1 − 1e-12 before atanh); n: (k,) pairs behind each r, all > 3
    (real numbers allowed, e.g. an effective n); method: "dl" (DerSimonian–Laird, default) or "pm" / "iterated"
    (Paule–Mandel); labels: (k,) study names (default 0..k−1); confidence: the CI level (default 0.95).
    Raises ValueError naming the argument for NaN / out-of-range r, n ≤ 3, lengths that differ, k < 2, an unknown
    method; TypeError for non-numeric input.
    """
    from statsmodels.stats.meta_analysis import combine_effects  # heavy import, only when used

    rv, nv = _vector(r, "r"), _vector(n, "n")
    if len(nv) != len(rv):
        raise ValueError(f"n must have one entry per study: {len(rv)} correlations r, {len(nv)} sizes n")
    if len(rv) < 2:
        raise ValueError(f"r: a meta-analysis needs at least 2 studies, got {len(rv)}")
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
    k = len(rv)
    if labels is None:
        labels = list(range(k))
    else:
        if isinstance(labels, (str, bytes)):
            raise TypeError("labels must be a sequence with one label per study, got a string")
        labels = list(labels)
        if len(labels) != k:
            raise ValueError(f"labels must have one entry per study: {k} studies, {len(labels)} labels")
    method = _METHODS[method.lower()]

    z = np.arctanh(np.clip(rv, -R_CLIP, R_CLIP))
    var_z = 1.0 / (nv - 3.0)
    alpha = 1.0 - confidence
    kwargs = _PM_OPTIONS if method == "pm" else {}
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # statsmodels' untruncated DL τ² < 0 → sqrt of negatives
        res = combine_effects(z, var_z, method_re=method, row_names=labels, use_t=False, alpha=alpha, **kwargs)
        ci_fe, ci_re = res.conf_int(alpha=alpha, use_t=False)[:2]
        study_low, study_high = res.conf_int_samples(alpha=alpha, use_t=False)
    tau2 = float(res.tau2)
    if tau2 <= 0:  # DL truncation at 0 (and PM's τ² = 0): the random-effects model is the fixed-effect one
        tau2 = 0.0
        mean, se, ci, weights = res.mean_effect_fe, res.sd_eff_w_fe, ci_fe, res.weights_rel_fe
    else:
        mean, se, ci, weights = res.mean_effect_re, res.sd_eff_w_re, ci_re, res.weights_rel_re
    if method == "pm":  # statsmodels drops its convergence flag: check the estimating equation ourselves
        w = 1.0 / (var_z + tau2)
        residual = float(w @ (z - w @ z / w.sum()) ** 2) - (k - 1)
        if (abs(residual) if tau2 > 0 else residual) > 1e-6 * (k - 1):
            warnings.warn(f"Paule–Mandel τ² did not converge (estimating equation off by {residual:.3g})",
                          RuntimeWarning, stacklevel=2)
    q = max(float(res.q), 0.0)  # statsmodels' Σwz² − (Σwz)²/Σw can round to a tiny negative number
    i2 = min(max((q - (k - 1)) / q, 0.0), 1.0) if q > 0 else 0.0
    studies = pd.DataFrame({
        "label": labels, "r": rv, "n": nv, "z": z, "var_z": var_z,
        "ci_low": np.tanh(np.asarray(study_low, dtype=np.float64)),
        "ci_high": np.tanh(np.asarray(study_high, dtype=np.float64)),
        "weight": np.asarray(weights, dtype=np.float64) / float(np.sum(weights)),
    })
    return MetaResult(estimate=math.tanh(float(mean)), ci_low=math.tanh(float(ci[0])),
                      ci_high=math.tanh(float(ci[1])), z=float(mean), se_z=float(se), tau2=tau2, i2=float(i2),
                      q=q, q_p=float(stats.chi2.sf(q, k - 1)), k=k, method=method, confidence=float(confidence),
                      studies=studies)
