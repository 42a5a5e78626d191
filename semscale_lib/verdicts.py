"""The one place where the suite's verdicts on the paper's claims are decided.

The four verdicts (:data:`VERDICTS`), decided from a confidence interval by :func:`verdict_from_ci`, then checked
against the design's power:

* ``"held"`` -- the CI of the effect lies wholly above 0 (a gain, a positive correlation, r(y, a) > r(y, b)).
* ``"contradicted"`` -- the CI lies wholly below the contradiction bound: below 0 for a gain or a difference of
  correlations, below ``r_min`` for a single correlation ("the correlation is at most weak").
* ``"inconclusive"`` -- the CI straddles a threshold: the data are compatible with the claim *and* with its failure,
  and the design was able to see the paper's effect. Never a refutation.
* ``"not testable"`` -- no CI can be formed (too few seeds / classes, a constant variable, or paired differences
  that are all equal, so the CI would collapse to a point), or the design is *underpowered*: the CI decides nothing
  and the paper's effect (absolute value) lies below the smallest effect the design detects with 80 % power. Its
  ``reason`` then reads "underpowered: detects ≥ X, the paper reports Y; needs about N classes" (seeds, studies).

Only the interval decides. A positive mean gain or a positive r is never a confirmation on its own, and a point estimate
of the wrong sign is never a refutation on its own. Power never overturns a CI that decides: a held or contradicted
verdict stands, with its power reported. Without a paper effect the power rule is not applied.

Every record carries its rule (with its numbers), one plain sentence with the estimate and its CI, the detectable
effect (:mod:`semscale_lib.power`; from n for a correlation, n and the sd of the paired differences for a gain,
n, r(y, b) and r(a, b) for dependent correlations, se_z and k for a pooled r), the target power, the paper's effect and
a p-value for its own null: two-sided paired t; one-sided p of "gain ≥ margin" (a TOST-style p) for a negligible gain;
the permutation p of a correlation; Williams' t for dependent correlations; the z (or Hartung–Knapp t) statistic of a
pooled r. :func:`holm_adjust` (Holm 1979) turns a family's p-values into family-wise adjusted ones. ``to_dict()``
gives a JSON-friendly form (NaN -> None).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

from .inference import fisher_ci, holm_adjust, pearson, permutation_p, williams_t, zou_ci
from .power import (correlation_difference_sample_size, correlation_sample_size, detectable_correlation,
                    detectable_correlation_difference, detectable_paired_gain, detectable_pooled_correlation,
                    paired_sample_size, pooled_sample_size)
from .verdict_records import (NAN, VERDICTS, CorrelationVerdict, DependentCorrelationVerdict, PairedVerdict,
                              PooledVerdict, VerdictRecord, check_confidence, check_paper_effect, check_power,
                              constant, decimals, format_ci, power_texts, safe, summarize, underpowered,
                              verdict_from_ci, vectors)

__all__ = ["VERDICTS", "VerdictRecord", "PairedVerdict", "CorrelationVerdict", "DependentCorrelationVerdict",
           "PooledVerdict", "verdict_from_ci", "paired_verdict", "negligible_gain_verdict", "correlation_verdict",
           "dependent_correlation_verdict", "fisher_ci", "williams_t", "zou_ci", "summarize", "format_ci",
           "pooled_correlation_verdict", "holm_adjust", "withheld", "POWER_RULE"]

#: The power rule, appended to every record's ``rule`` (``{power}`` is the target, e.g. "80 %").
POWER_RULE = ("not testable also when the CI decides nothing and the paper's effect lies below the smallest effect "
              "this design detects with {power} power (underpowered; held and contradicted stand whatever the power)")


def _paper_parts(*, verdict: str, detectable: float, effect: float | None, needed: float, unit: str, design: str,
                 what: str, power: float, dec: int, label: str = "the paper reports") -> tuple[str, str | None, str]:
    """(verdict, underpowered reason or None, the sentence's power text): the prefix "Underpowered: …. " when the
    power rule applies, else a clause "; <design> detect … with P power" to append, or "" without a paper effect."""
    if effect is None or math.isnan(detectable):
        return verdict, None, ""
    reason, clause = power_texts(detectable=detectable, power=power, paper_effect=effect, needed=needed, unit=unit,
                                 design=design, what=what, paper_label=label, dec=dec)
    if underpowered(verdict, detectable, effect):
        needs = f" (about {int(needed)} {unit} needed)" if math.isfinite(needed) else ""
        figure = f"{effect:g}" if label.startswith("the margin") else f"{effect:+g}"
        return "not testable", reason, f"Underpowered: {clause}, but {label} {figure}{needs}. "
    return verdict, None, f"; {clause}"


def _paired_stats(base: np.ndarray, treat: np.ndarray, confidence: float) -> dict:
    """Mean, sd, paired-t CI and two-sided p of treat − base. ``collapsed``: n ≥ 2 and every difference equal, so
    no CI exists (CI and p NaN)."""
    n, diff = base.size, treat - base
    est = float(diff.mean()) if n else NAN
    sd = float(diff.std(ddof=1)) if n >= 2 else NAN
    collapsed = n >= 2 and bool(np.ptp(diff) <= 1e-12 * max(1.0, float(np.abs(diff).max())))
    low = high = p = NAN
    if n >= 2 and not collapsed:
        se = sd / math.sqrt(n)
        half = stats.t.ppf((1 + confidence) / 2, n - 1) * se
        low, high, p = est - half, est + half, float(2 * stats.t.sf(abs(est) / se, n - 1))
    return dict(n=n, est=est, sd=sd, low=low, high=high, p=p, collapsed=collapsed,
                mean_baseline=float(base.mean()) if n else NAN, mean_treated=float(treat.mean()) if n else NAN)


def _paired_design(s: dict, *, confidence: float, power: float) -> float:
    ok = s["n"] >= 2 and not s["collapsed"]
    return safe(detectable_paired_gain, s["n"], s["sd"], 1 - confidence, power) if ok else NAN


def _paired_gate(s: dict, min_n: int, dec: int) -> tuple[str | None, str]:
    """(reason, sentence tail) when too few pairs or a collapsed CI make the design not testable, else (None, "")."""
    if s["n"] < min_n:
        return (f"only {s['n']} paired seeds, fewer than the {min_n} required",
                f" (only {s['n']} pairs, fewer than the {min_n} required)")
    if s["collapsed"]:
        reason = (f"every paired difference is equal ({s['est']:+.{dec}f} in all {s['n']} pairs): "
                  "no confidence interval")
        return reason, f" — {reason}"
    return None, ""


def paired_verdict(baseline, treated, *, confidence: float = 0.95, min_n: int = 3,
                   paper_delta: float | None = None, power: float = 0.8) -> PairedVerdict:
    """Does ``treated`` beat ``baseline``? Inputs: ``(n_seeds,)`` per-seed scores (e.g. top-1 %), paired by position.

    estimate = mean(treated - baseline), in the inputs' units; CI = paired t interval on n - 1 df; p = two-sided
    paired t. Not testable with fewer than ``min_n`` pairs (estimate still reported; CI NaN when n < 2), when every
    difference is equal (n ≥ 2: the CI would collapse to a point; CI and p NaN), or when underpowered: the CI decides
    nothing and |``paper_delta``| lies below :func:`~semscale_lib.power.detectable_paired_gain` (n, observed sd of
    the differences) at level 1 − ``confidence`` and ``power`` (reason names the seeds needed, from
    :func:`~semscale_lib.power.paired_sample_size` at the observed sd). ``paper_delta`` (same units) is also placed
    relative to the CI in ``paper_comparison``. Raises ValueError on shape mismatch or non-finite values, TypeError
    on non-numeric input."""
    base, treat = vectors(baseline=baseline, treated=treated)
    pct, pw = check_confidence(confidence), check_power(power)
    paper_delta = check_paper_effect(paper_delta, "paper_delta")
    s = _paired_stats(base, treat, confidence)
    n, est, low, high = s["n"], s["est"], s["low"], s["high"]
    detectable = _paired_design(s, confidence=confidence, power=power)
    dec = decimals(est, low, high, paper_delta)
    reason, tail = _paired_gate(s, min_n, dec)
    verdict = "not testable" if reason else verdict_from_ci(low, high)
    needed = (safe(paired_sample_size, paper_delta, s["sd"], 1 - confidence, power)
              if paper_delta and s["sd"] > 0 else NAN)
    verdict, weak, power_text = _paper_parts(
        verdict=verdict, detectable=detectable, effect=paper_delta, needed=needed, unit="seeds",
        design=f"{n} paired seeds", what="a gain", power=power, dec=dec)
    rule = (f"held if the {pct} paired-t CI of mean(treated − baseline) lies above 0, "
            f"contradicted if it lies below 0, inconclusive otherwise; "
            f"not testable with fewer than {min_n} paired seeds or when every paired difference is equal (no CI); "
            + POWER_RULE.format(power=pw))
    est_text = f"{est:+.{dec}f}" if n else "undefined"
    sentence = (f"Mean paired gain (treated − baseline) {est_text}, {pct} CI {format_ci(low, high, dec)}, "
                f"over n = {n} paired seeds: {verdict}{tail}")
    comparison = None
    if paper_delta is not None and math.isfinite(low):
        comparison = ("inside the CI" if low <= paper_delta <= high
                      else "above the CI" if paper_delta > high else "below the CI")
        relation = {"inside the CI": "consistent with", "above the CI": "smaller than",
                    "below the CI": "larger than"}[comparison]
        sentence += f"; {relation} the paper's {paper_delta:+g} ({comparison})"
        if comparison == "inside the CI" and low <= 0 <= high:
            sentence += ", and with no gain: the CI contains 0"
    if weak:
        sentence = power_text + sentence
    else:
        sentence += power_text
    return PairedVerdict(kind="paired", verdict=verdict, n=n, estimate=est, ci_low=low, ci_high=high,
                         confidence=confidence, rule=rule, sentence=sentence + ".",
                         mean_baseline=s["mean_baseline"], mean_treated=s["mean_treated"], sd_diff=s["sd"],
                         p_value=s["p"], paper_delta=paper_delta, paper_comparison=comparison,
                         detectable_effect=detectable, power=float(power), paper_effect=paper_delta,
                         reason=weak or reason)


def negligible_gain_verdict(before, after, *, margin: float, confidence: float = 0.95, min_n: int = 3,
                            failed_precondition: str | None = None, paper_effect: float | None = None,
                            power: float = 0.8) -> PairedVerdict:
    """Is the paired gain ``after − before`` negligible, i.e. below ``margin``? (Sec. 3.3: accuracy stops rising
    once Σ S′ has saturated.) Inputs ``(n_seeds,)`` paired by position; the CI is :func:`paired_verdict`'s.

    held if the whole CI of the gain lies below ``margin``; contradicted if it lies above ``margin``; inconclusive
    otherwise. p_value: the one-sided paired-t p of H0 "gain ≥ margin" (Schuirmann's 1987 TOST half), so held
    exactly when p < (1 − confidence)/2. Not testable with fewer than ``min_n`` pairs, when every difference is
    equal (no CI), or when underpowered: inconclusive and the effect the claim is sized by — ``paper_effect``,
    default the margin — lies below the smallest margin the design shows with ``power`` at a true gain of 0
    (:func:`~semscale_lib.power.detectable_paired_gain` of n and the observed sd). ``failed_precondition``: a
    sentence saying why the claim's premise failed on the data (e.g. Σ S′ never saturates) — then the verdict is
    "contradicted" whatever the gain, with that sentence as ``reason``."""
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number ≥ 0, got {margin}")
    before_v, after_v = vectors(before=before, after=after)
    pct, pw = check_confidence(confidence), check_power(power)
    effect = float(margin) if paper_effect is None else check_paper_effect(paper_effect)
    s = _paired_stats(before_v, after_v, confidence)
    n, est, low, high = s["n"], s["est"], s["low"], s["high"]
    p = NAN
    if math.isfinite(low):
        p = float(stats.t.cdf((est - margin) / (s["sd"] / math.sqrt(n)), n - 1))
    detectable = _paired_design(s, confidence=confidence, power=power)
    dec = decimals(est, low, high)
    reason, tail = _paired_gate(s, min_n, dec)
    if failed_precondition:
        verdict, reason = "contradicted", failed_precondition
    else:
        verdict = "not testable" if reason else verdict_from_ci(margin - high, margin - low)
    needed = safe(paired_sample_size, effect, s["sd"], 1 - confidence, power) if effect and s["sd"] > 0 else NAN
    verdict, weak, power_text = _paper_parts(
        verdict=verdict, detectable=detectable, effect=effect, needed=needed, unit="seeds",
        design=f"{n} paired seeds", what="a negligible gain against margins", power=power, dec=max(dec, 2),
        label="the margin is" if paper_effect is None else "the paper reports")
    rule = (f"held if the {pct} paired-t CI of the gain lies below the margin {margin:g}, contradicted if it lies "
            f"above it (or if the premise fails), inconclusive otherwise; not testable with fewer than {min_n} "
            "paired seeds or when every paired difference is equal (no CI); "
            + POWER_RULE.format(power=pw).replace("the paper's effect", "the margin"))
    est_text = f"{est:+.{dec}f}" if n else "undefined"
    sentence = (f"Mean paired gain {est_text}, {pct} CI {format_ci(low, high, dec)}, "
                f"over n = {n} seeds, against a margin of {margin:g}: {verdict}")
    if failed_precondition:
        sentence = f"{failed_precondition}: contradicted, whatever the gain after it"
    else:
        sentence = power_text + sentence + tail if weak else sentence + tail + power_text
    return PairedVerdict(kind="negligible gain", verdict=verdict, n=n, estimate=est, ci_low=low, ci_high=high,
                         confidence=confidence, rule=rule, sentence=sentence + ".",
                         mean_baseline=s["mean_baseline"], mean_treated=s["mean_treated"], sd_diff=s["sd"],
                         p_value=p, detectable_effect=detectable, power=float(power), paper_effect=effect,
                         reason=weak or reason)


def correlation_verdict(x, y, *, confidence: float = 0.95, r_min: float = 0.3, n_permutations: int = 10000,
                        seed: int = 0, paper_effect: float | None = None, power: float = 0.8,
                        unit: str = "classes") -> CorrelationVerdict:
    """Is y positively correlated with x? Inputs: ``(n_classes,)`` vectors paired by position (e.g. per-class
    semantic scale and per-class accuracy). estimate = Pearson r with a Fisher-z CI (:func:`fisher_ci`); the
    permutation p (seeded) and Spearman rho are reported but do not decide. Verdict by :func:`verdict_from_ci` with
    contradiction bound ``r_min``; n < 4 or a constant vector -> "not testable" (r NaN); inconclusive with
    |``paper_effect``| (the paper's r) below :func:`~semscale_lib.power.detectable_correlation` (n) ->
    "not testable" (underpowered; ``unit`` names what n counts in the reason)."""
    xv, yv = vectors(x=x, y=y)
    pct, pw = check_confidence(confidence), check_power(power)
    paper_effect = check_paper_effect(paper_effect)
    n = xv.size
    rule = (f"held if the {pct} Fisher-z CI of Pearson r lies above 0 (and not wholly below r_min = {r_min:g}); "
            f"contradicted if it lies wholly below r_min = {r_min:g} (the correlation is at most weak); "
            f"inconclusive otherwise; not testable when n < 4 or a variable is constant; "
            + POWER_RULE.format(power=pw))
    detectable = safe(detectable_correlation, n, 1 - confidence, power) if n > 3 else NAN
    common = dict(kind="correlation", n=n, confidence=confidence, rule=rule, r_min=float(r_min),
                  n_permutations=int(n_permutations), seed=int(seed), detectable_effect=detectable,
                  power=float(power), paper_effect=paper_effect)
    flat = constant(("x", xv), ("y", yv)) if n else []
    if n < 4 or flat:
        why = f"n = {n} < 4" if n < 4 else f"{' and '.join(flat)} is constant"
        return CorrelationVerdict(verdict="not testable", estimate=NAN, ci_low=NAN, ci_high=NAN,
                                  sentence=f"Pearson r is not testable: {why}.", spearman_rho=NAN,
                                  p_value=NAN, p_method="none", reason=why, **common)
    r = pearson(xv, yv)
    low, high = fisher_ci(r, n, confidence)
    rho = float(stats.spearmanr(xv, yv)[0])
    p, method = permutation_p(xv, yv, r, n_permutations, seed)
    needed = safe(correlation_sample_size, paper_effect, 1 - confidence, power) if paper_effect else NAN
    verdict, weak, power_text = _paper_parts(
        verdict=verdict_from_ci(low, high, lower_bound_for_contradiction=r_min), detectable=detectable,
        effect=paper_effect, needed=needed, unit=unit, design=f"{n} {unit}", what="r", power=power, dec=2)
    sentence = (f"Pearson r = {r:+.2f}, {pct} CI {format_ci(low, high)}, over n = {n} "
                f"(Spearman rho = {rho:+.2f}, permutation p = {p:.3g}): {verdict}")
    if verdict == "contradicted":
        sentence += f" — the correlation is at most weak: CI below r_min = {r_min:g}"
    if weak:
        sentence = power_text + sentence
    elif power_text:
        sentence += f"; the paper reports {paper_effect:+g}, and " + power_text[2:]
    return CorrelationVerdict(verdict=verdict, estimate=r, ci_low=low, ci_high=high, sentence=sentence + ".",
                              spearman_rho=rho, p_value=p, p_method=method, reason=weak, **common)


def dependent_correlation_verdict(y, a, b, *, confidence: float = 0.95, paper_effect: float | None = None,
                                  power: float = 0.8, unit: str = "classes") -> DependentCorrelationVerdict:
    """Does ``a`` track ``y`` better than ``b`` does, i.e. r(y, a) > r(y, b)? Inputs: ``(n_classes,)`` vectors paired
    by position (e.g. y = per-class accuracy, a = semantic scale, b = number of training images).

    The two correlations share y, so they are dependent and not comparable by two separate CIs. Williams' t
    (:func:`williams_t`; Steiger 1980 recommends it for this case) gives the p-value, and Zou's (2007) interval
    (:func:`zou_ci`) the CI of r_ya - r_yb. Both are closed-form and hold their level at small n; a bootstrap over
    the ~10 classes of CIFAR-10 would give intervals that are too narrow. estimate = r_ya - r_yb; verdict by
    :func:`verdict_from_ci` with bound 0; n < 4 or a constant column -> "not testable"; inconclusive with
    |``paper_effect``| (the paper's r_ya − r_yb) below
    :func:`~semscale_lib.power.detectable_correlation_difference` (n, observed r_yb and r_ab) -> "not testable"
    (underpowered; the classes needed are for r_ya = observed r_yb + the paper's difference)."""
    yv, av, bv = vectors(y=y, a=a, b=b)
    pct, pw = check_confidence(confidence), check_power(power)
    paper_effect = check_paper_effect(paper_effect)
    n = yv.size
    rule = (f"held if the {pct} Zou (2007) CI of r(y, a) − r(y, b) lies above 0, contradicted if it lies below 0, "
            f"inconclusive otherwise; not testable when n < 4 or a column is constant; "
            + POWER_RULE.format(power=pw))
    common = dict(kind="dependent correlation", n=n, confidence=confidence, rule=rule, df=max(n - 3, 0),
                  power=float(power), paper_effect=paper_effect)
    flat = constant(("y", yv), ("a", av), ("b", bv)) if n else []
    if n < 4 or flat:
        why = f"n = {n} < 4" if n < 4 else f"{' and '.join(flat)} is constant"
        return DependentCorrelationVerdict(verdict="not testable", estimate=NAN, ci_low=NAN, ci_high=NAN,
                                           sentence=f"r(y, a) − r(y, b) is not testable: {why}.", r_ya=NAN,
                                           r_yb=NAN, r_ab=NAN, williams_t=NAN, p_value=NAN, reason=why, **common)
    r_ya, r_yb, r_ab = pearson(yv, av), pearson(yv, bv), pearson(av, bv)
    t, p = williams_t(r_ya, r_yb, r_ab, n)
    low, high = zou_ci(r_ya, r_yb, r_ab, n, confidence)
    est = r_ya - r_yb
    detectable = safe(detectable_correlation_difference, n, r_yb, r_ab, 1 - confidence, power)
    needed = (safe(correlation_difference_sample_size, r_yb + paper_effect, r_yb, r_ab, 1 - confidence, power)
              if paper_effect else NAN)
    dec = decimals(est, low, high)
    verdict, weak, power_text = _paper_parts(
        verdict=verdict_from_ci(low, high), detectable=detectable, effect=paper_effect, needed=needed, unit=unit,
        design=f"{n} {unit}", what="r(y, a) − r(y, b)", power=power, dec=dec)
    sentence = (f"r(y, a) − r(y, b) = {est:+.{dec}f}, {pct} Zou CI {format_ci(low, high, dec)}, over n = {n} "
                f"(r(y, a) = {r_ya:+.2f}, r(y, b) = {r_yb:+.2f}, r(a, b) = {r_ab:+.2f}; Williams' t({n - 3}) = "
                f"{t:.2f}, p = {p:.3g}): {verdict}")
    if weak:
        sentence = power_text + sentence
    elif power_text:
        sentence += (f"; the paper reports {paper_effect:+g}, and " + power_text[2:]
                     + " at the observed r(y, b) and r(a, b)")
    return DependentCorrelationVerdict(verdict=verdict, estimate=est, ci_low=low, ci_high=high,
                                       sentence=sentence + ".", r_ya=r_ya, r_yb=r_yb, r_ab=r_ab, williams_t=t,
                                       p_value=p, detectable_effect=detectable, reason=weak, **common)


def pooled_correlation_verdict(estimate: float, ci_low: float, ci_high: float, *, k: int, i2: float,
                               confidence: float = 0.95, se_z: float | None = None, interval: str = "normal",
                               paper_effect: float | None = None, power: float = 0.8,
                               unit: str = "studies") -> PooledVerdict:
    """Our rule for "per-class accuracy rises with a predictor across studies" (notebook 06): a random-effects
    pooled Pearson r over ``k`` studies (or groups of studies) with its CI at ``confidence`` (the caller's, e.g.
    Bonferroni-adjusted) and heterogeneity ``i2`` (fraction) — :func:`verdict_from_ci`: held above 0, contradicted
    below 0, inconclusive otherwise; not testable when fewer than 2 studies define it (NaN bounds).

    ``interval``: how the CI was formed, "normal" (z quantiles) or "hk" (Hartung–Knapp, t on k − 1 df), as in
    :func:`semscale_lib.meta.pooled_correlation`; ``se_z``: the pooled Fisher z's standard error (default: read
    back from the CI's width on the z scale). p_value: two-sided, from atanh(estimate) / se_z on the normal or
    t_{k−1}. Inconclusive with |``paper_effect``| below :func:`~semscale_lib.power.detectable_pooled_correlation`
    (se_z, df) -> "not testable" (underpowered; ``unit`` needed from
    :func:`~semscale_lib.power.pooled_sample_size` with the average study's variance k · se_z²)."""
    pct, pw = check_confidence(confidence), check_power(power)
    if interval not in ("normal", "hk"):
        raise ValueError(f"interval must be 'normal' or 'hk', got {interval!r}")
    paper_effect = check_paper_effect(paper_effect)
    kind = "normal-theory" if interval == "normal" else "Hartung–Knapp t (k − 1 df)"
    rule = (f"random-effects pooled Pearson r over studies on Fisher z with a {kind} CI; held if its {pct} CI "
            "lies above 0, contradicted if below 0, inconclusive otherwise; not testable in < 2 studies; "
            + POWER_RULE.format(power=pw))
    df = int(k) - 1 if interval == "hk" and k >= 2 else None
    if k < 2:
        estimate = ci_low = ci_high = NAN
    verdict = verdict_from_ci(ci_low, ci_high)
    z_bounds = [math.atanh(float(np.clip(v, -1 + 1e-12, 1 - 1e-12))) for v in (ci_low, ci_high)] \
        if verdict != "not testable" else [NAN, NAN]
    quantile = (stats.norm.ppf((1 + confidence) / 2) if df is None else stats.t.ppf((1 + confidence) / 2, df))
    if se_z is None:
        se_z = (z_bounds[1] - z_bounds[0]) / (2 * quantile)
    se_z, p = float(se_z), NAN
    if verdict != "not testable" and se_z > 0:
        stat = math.atanh(float(np.clip(estimate, -1 + 1e-12, 1 - 1e-12))) / se_z
        p = float(2 * (stats.norm.sf(abs(stat)) if df is None else stats.t.sf(abs(stat), df)))
    detectable = safe(detectable_pooled_correlation, se_z, 1 - confidence, power, df=df) \
        if verdict != "not testable" and se_z > 0 else NAN
    needed = (safe(pooled_sample_size, paper_effect, k * se_z**2, 1 - confidence, power, t_based=df is not None)
              if paper_effect and math.isfinite(detectable) else NAN)
    verdict, weak, power_text = _paper_parts(
        verdict=verdict, detectable=detectable, effect=paper_effect, needed=needed, unit=unit,
        design=f"{k} {unit}", what="a pooled r", power=power, dec=2)
    if verdict == "not testable" and not weak:
        sentence = f"defined in {k} studies: not testable"
    else:
        sentence = (f"pooled r = {estimate:+.2f}, {pct} CI {format_ci(ci_low, ci_high)} over {k} studies "
                    f"(I² = {100 * i2:.0f} %): {verdict}")
        if weak:
            sentence = power_text + sentence
        elif power_text:
            sentence += f"; the paper reports {paper_effect:+g}, and " + power_text[2:]
    return PooledVerdict(kind="pooled correlation", verdict=verdict, n=int(k), estimate=float(estimate),
                         ci_low=float(ci_low), ci_high=float(ci_high), confidence=confidence, rule=rule,
                         sentence=sentence + ".", p_value=p, detectable_effect=detectable, power=float(power),
                         paper_effect=paper_effect, reason=weak or ("fewer than 2 studies" if k < 2 else None),
                         se_z=se_z, i2=float(i2), interval=interval, df=df)



def withheld(record: VerdictRecord, reason: str | None) -> VerdictRecord:
    """``record`` as "not testable" with ``reason`` when the data behind it cannot bear a verdict whatever its CI
    says (e.g. models not trained to a plateau); ``record`` unchanged when ``reason`` is None. The estimate and CI
    stay in the record, the sentence says why no verdict was given."""
    if not reason:
        return record
    return dataclasses.replace(record, verdict="not testable", reason=reason,
                               sentence=f"Not judged — {reason}. The numbers: {record.sentence}")
