"""Tests for semscale_lib.verdicts on known answers: hand-computed intervals and published reference values."""
import json
import math

import numpy as np
import pytest
from scipy import stats

from semscale_lib.power import (correlation_sample_size, detectable_correlation, detectable_correlation_difference,
                                detectable_paired_gain, detectable_pooled_correlation, paired_sample_size)
from semscale_lib.verdicts import (VERDICTS, PooledVerdict, VerdictRecord, correlation_verdict,
                                   dependent_correlation_verdict, fisher_ci, format_ci, holm_adjust,
                                   negligible_gain_verdict, paired_verdict, pooled_correlation_verdict, summarize,
                                   verdict_from_ci, williams_t, zou_ci)

BASE = np.array([70.0, 71.0, 72.0, 73.0])
GAIN = np.array([2.0, 2.1, 1.9, 2.0])
Z975 = 1.959963985  # standard-normal 97.5 % quantile, written out


def exact_pair(r, n, seed=0):
    """(x, y) of length n whose sample Pearson correlation is exactly r (Gram–Schmidt on centred noise)."""
    rng = np.random.default_rng(seed)
    x, e = rng.normal(size=n), rng.normal(size=n)
    x -= x.mean()
    x /= np.linalg.norm(x)
    e -= e.mean()
    e -= (e @ x) * x
    e /= np.linalg.norm(e)
    return x, r * x + math.sqrt(1 - r * r) * e


def steiger_eq7(r_ya, r_yb, r_ab, n):
    """Williams' t as printed in Steiger (1980), eq. 7, written out independently of the module."""
    det_r = 1 - r_ya**2 - r_yb**2 - r_ab**2 + 2 * r_ya * r_yb * r_ab
    r_bar = (r_ya + r_yb) / 2
    denominator = 2 * (n - 1) / (n - 3) * det_r + r_bar**2 * (1 - r_ab) ** 3
    return (r_ya - r_yb) * math.sqrt((n - 1) * (1 + r_ab) / denominator)


# --------------------------------------------------------------------------- the rule
def test_verdict_from_ci_rule():
    assert VERDICTS == ("held", "contradicted", "inconclusive", "not testable")
    assert verdict_from_ci(0.1, 0.5) == "held"
    assert verdict_from_ci(-0.5, -0.1) == "contradicted"
    assert verdict_from_ci(-0.1, 0.5) == "inconclusive"
    assert verdict_from_ci(0.0, 0.5) == "inconclusive"  # touching 0 is not above 0
    assert verdict_from_ci(float("nan"), 1.0) == "not testable"
    assert verdict_from_ci(-0.1, 0.2, lower_bound_for_contradiction=0.3) == "contradicted"
    # a demonstrably positive but demonstrably weak correlation counts as contradicted, not held
    assert verdict_from_ci(0.05, 0.2, lower_bound_for_contradiction=0.3) == "contradicted"
    assert verdict_from_ci(0.05, 0.35, lower_bound_for_contradiction=0.3) == "held"
    with pytest.raises(ValueError):
        verdict_from_ci(0.5, 0.1)


def test_summarize_and_format_ci():
    recs = [paired_verdict(BASE, BASE + GAIN), paired_verdict(BASE, BASE - GAIN), {"verdict": "held"}, "not testable"]
    counts = summarize(recs)
    assert list(counts) == list(VERDICTS)
    assert counts == {"held": 2, "contradicted": 1, "inconclusive": 0, "not testable": 1}
    with pytest.raises(ValueError):
        summarize(["refuted"])
    assert format_ci(1.87007, 2.12993, 2) == "[+1.87, +2.13]"
    assert format_ci(-0.0001, 0.5, 2) == "[+0.00, +0.50]"
    assert format_ci(float("nan"), float("nan"), 3) == "[n/a, n/a]"


# --------------------------------------------------------------------------- paired
def test_paired_clear_gain_held_with_hand_ci():
    rec = paired_verdict(BASE, BASE + GAIN)
    sd = math.sqrt((0.0 + 0.01 + 0.01 + 0.0) / 3)
    q = 3.182446305284263  # t quantile 0.975 on 3 df
    assert stats.t.ppf(0.975, 3) == pytest.approx(q)
    assert rec.verdict == "held" and rec.n == 4
    assert rec.estimate == pytest.approx(2.0)
    assert rec.ci_low == pytest.approx(2.0 - q * sd / 2)
    assert rec.ci_high == pytest.approx(2.0 + q * sd / 2)
    assert rec.sd_diff == pytest.approx(sd)
    assert "+2.00" in rec.sentence and "[+1.87, +2.13]" in rec.sentence and "held" in rec.sentence
    assert "paired-t" in rec.rule and "95 %" in rec.rule


def test_paired_loss_contradicted_and_mixed_inconclusive():
    assert paired_verdict(BASE, BASE - GAIN).verdict == "contradicted"
    mixed = paired_verdict(BASE, BASE + np.array([1.0, -1.5, 0.5, -0.2]))
    assert mixed.verdict == "inconclusive"
    assert mixed.ci_low < 0 < mixed.ci_high


def test_paired_too_few_pairs_not_testable():
    rec = paired_verdict([70.0, 71.0], [72.0, 73.5], min_n=3)
    assert rec.verdict == "not testable"
    assert rec.estimate == pytest.approx(2.25)
    assert math.isfinite(rec.ci_low)  # reported, but does not decide
    one = paired_verdict([70.0], [72.0], min_n=1)
    assert one.verdict == "not testable" and one.estimate == 2.0
    assert math.isnan(one.ci_low) and math.isnan(one.ci_high)


def test_paired_constant_difference_has_no_ci_and_is_not_testable():
    # duplicated runs or a seed that changes nothing: every difference equal, sd 0, so no CI — never held
    rec = paired_verdict(BASE, BASE + 2.0)
    assert rec.estimate == 2.0 and rec.sd_diff == 0.0
    assert math.isnan(rec.ci_low) and math.isnan(rec.ci_high) and math.isnan(rec.p_value)
    assert rec.verdict == "not testable" and math.isnan(rec.detectable_effect)
    assert rec.reason == "every paired difference is equal (+2.00 in all 4 pairs): no confidence interval"
    assert rec.sentence == ("Mean paired gain (treated − baseline) +2.00, 95 % CI [n/a, n/a], over n = 4 paired seeds: "
                            "not testable — every paired difference is equal (+2.00 in all 4 pairs): no confidence "
                            "interval.")
    # the same with a loss (never contradicted) and with two pairs
    assert paired_verdict(BASE, BASE - 2.0).verdict == "not testable"
    assert paired_verdict([1.0, 2.0], [1.0, 2.0], min_n=2).reason.startswith("every paired difference is equal")
    assert "every paired difference is equal" in paired_verdict(BASE, BASE + 2.0).rule


def test_paired_paper_delta_comparison():
    inside = paired_verdict(BASE, BASE + GAIN, paper_delta=2.05)
    assert inside.paper_comparison == "inside the CI" and inside.paper_delta == 2.05
    above = paired_verdict(BASE, BASE + GAIN, paper_delta=4.8)
    assert above.paper_comparison == "above the CI"
    assert "smaller than the paper's +4.8" in above.sentence
    below = paired_verdict(BASE, BASE + GAIN, paper_delta=1.0)
    assert below.paper_comparison == "below the CI" and "larger than" in below.sentence
    assert paired_verdict(BASE, BASE + GAIN).paper_comparison is None


def test_paired_bad_input():
    with pytest.raises(ValueError, match="same length"):
        paired_verdict([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        paired_verdict([1.0, float("nan"), 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="1-D"):
        paired_verdict(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(TypeError):
        paired_verdict(["a", "b", "c"], [1.0, 2.0, 3.0])


def test_to_dict_is_json_friendly():
    d = paired_verdict([70.0], [72.0], min_n=3).to_dict()
    assert d["ci_low"] is None and d["verdict"] == "not testable"
    json.dumps(d, allow_nan=False)
    json.dumps(correlation_verdict([1, 2, 3], [3, 1, 2]).to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- negligible gain (Sec. 3.3)
T975_3DF = 3.182446305284263   # t quantile 0.975 on 3 df
T975_2DF = 4.302652729911275   # t quantile 0.975 on 2 df


def test_negligible_gain_held_when_the_whole_ci_lies_below_the_margin():
    # gains 0.1, 0.0, 0.2, 0.1: mean 0.1, sd sqrt(0.02 / 3), CI 0.1 ± 3.1824 · sd / 2 = [-0.03, +0.23] < margin 1
    rec = negligible_gain_verdict(BASE, BASE + np.array([0.1, 0.0, 0.2, 0.1]), margin=1.0)
    half = T975_3DF * math.sqrt(0.02 / 3) / 2
    assert rec.kind == "negligible gain" and rec.n == 4
    assert rec.estimate == pytest.approx(0.1)
    assert (rec.ci_low, rec.ci_high) == pytest.approx((0.1 - half, 0.1 + half))
    assert rec.ci_low < 0 < rec.ci_high < 1.0   # straddles 0, but that is not what this verdict asks
    assert rec.verdict == "held"
    assert "margin 1" in rec.rule and "paired-t" in rec.rule
    # its power: 4 seeds with sd sqrt(0.02 / 3) show margins ≥ 0.17 with 80 % power; the margin 1 is well above
    assert rec.detectable_effect == pytest.approx(detectable_paired_gain(4, math.sqrt(0.02 / 3)))
    assert rec.paper_effect == 1.0 and rec.power == 0.8 and rec.reason is None
    assert rec.sentence == ("Mean paired gain +0.10, 95 % CI [-0.03, +0.23], over n = 4 seeds, against a margin of "
                            "1: held; 4 paired seeds detect a negligible gain against margins ≥ 0.17 with 80 % power.")


def test_negligible_gain_contradicted_when_the_whole_ci_lies_above_the_margin():
    rec = negligible_gain_verdict(BASE, BASE + GAIN, margin=1.0)   # CI [1.87, 2.13], hand-checked above
    assert rec.verdict == "contradicted"
    assert rec.ci_low == pytest.approx(2.0 - T975_3DF * math.sqrt(0.02 / 3) / 2) and rec.ci_low > 1.0
    assert rec.sentence.endswith("against a margin of 1: contradicted; 4 paired seeds detect a negligible gain "
                                 "against margins ≥ 0.17 with 80 % power.")


def test_negligible_gain_inconclusive_when_the_ci_straddles_the_margin():
    # gains 0.5, 1.5, 0.8, 1.3: mean 1.025, sum of squared deviations 0.6275, sd sqrt(0.6275 / 3)
    rec = negligible_gain_verdict(BASE, BASE + np.array([0.5, 1.5, 0.8, 1.3]), margin=1.0)
    half = T975_3DF * math.sqrt(0.6275 / 3) / 2
    assert rec.estimate == pytest.approx(1.025)
    assert (rec.ci_low, rec.ci_high) == pytest.approx((1.025 - half, 1.025 + half))
    assert rec.ci_low < 1.0 < rec.ci_high
    assert rec.verdict == "inconclusive"
    # a constant gain has no CI at all: not testable, even exactly at the margin
    constant_gain = negligible_gain_verdict(BASE, BASE + 1.0, margin=1.0)
    assert math.isnan(constant_gain.ci_low) and constant_gain.verdict == "not testable"
    assert constant_gain.reason.startswith("every paired difference is equal (+1.00 in all 4 pairs)")


def test_negligible_gain_two_pairs_not_testable():
    rec = negligible_gain_verdict([70.0, 71.0], [70.1, 71.0], margin=1.0)
    assert rec.verdict == "not testable" and rec.n == 2
    assert rec.estimate == pytest.approx(0.05)
    assert "n = 2 seeds" in rec.sentence and rec.sentence.endswith(
        "not testable (only 2 pairs, fewer than the 3 required); 2 paired seeds detect a negligible gain against "
        "margins ≥ 0.82 with 80 % power.")
    assert rec.reason == "only 2 paired seeds, fewer than the 3 required"
    # min_n is the caller's: the same two pairs are testable with min_n = 2 (sd of (0.1, 0) = 0.0707, se 0.05,
    # CI 0.05 ± 12.706 · 0.05 = [-0.59, +0.69], below the margin 1)
    two = negligible_gain_verdict([70.0, 71.0], [70.1, 71.0], margin=1.0, min_n=2)
    assert two.ci_high == pytest.approx(0.05 + stats.t.ppf(0.975, 1) * 0.05)
    assert two.verdict == "held"


def test_negligible_gain_failed_precondition_is_contradicted_whatever_the_gain():
    reason = "Σ S′ does not reach 95% of its final value before the largest m"
    flat = BASE + np.array([0.1, 0.0, 0.2, 0.1])   # held on its own (first test)
    rec = negligible_gain_verdict(BASE, flat, margin=1.0, failed_precondition=reason)
    assert rec.verdict == "contradicted"
    assert rec.sentence.startswith(reason + ": contradicted")
    assert "contradicted, whatever the gain after it" in rec.sentence and rec.estimate == pytest.approx(0.1)
    # the CI is still the paired one
    plain = negligible_gain_verdict(BASE, flat, margin=1.0)
    assert (rec.ci_low, rec.ci_high) == (plain.ci_low, plain.ci_high) and plain.verdict == "held"
    # it wins over "not testable" too
    few = negligible_gain_verdict([70.0, 71.0], [70.1, 71.0], margin=1.0, failed_precondition=reason)
    assert few.verdict == "contradicted" and reason in few.sentence


def test_negligible_gain_margin_must_be_finite_and_not_negative():
    with pytest.raises(ValueError, match="margin"):
        negligible_gain_verdict(BASE, BASE + GAIN, margin=-0.01)
    with pytest.raises(ValueError, match="margin"):
        negligible_gain_verdict(BASE, BASE + GAIN, margin=float("nan"))
    # 0 is a valid margin: a gain wholly below 0 (a loss) is negligible
    assert negligible_gain_verdict(BASE, BASE - GAIN, margin=0.0).verdict == "held"


@pytest.mark.parametrize("gain", [[0.1, 0.0, 0.2, 0.1], [2.0, 2.1, 1.9, 2.0], [0.5, 1.5, 0.8, 1.3]])
def test_negligible_gain_ci_is_the_paired_ci_and_p_is_the_one_sided_tost_p(gain):
    after = BASE + np.array(gain)
    for confidence in (0.9, 0.95):
        rec = negligible_gain_verdict(BASE, after, margin=1.0, confidence=confidence)
        paired = paired_verdict(BASE, after, confidence=confidence)
        assert (rec.estimate, rec.ci_low, rec.ci_high, rec.n) == (paired.estimate, paired.ci_low, paired.ci_high,
                                                                 paired.n)
        assert rec.sd_diff == paired.sd_diff
        # H0: gain ≥ margin; t = (mean − margin) / (sd / √n) on n − 1 df, lower tail
        t = (np.mean(gain) - 1.0) / (np.std(gain, ddof=1) / 2)
        assert rec.p_value == pytest.approx(stats.t.cdf(t, 3))
        # held exactly when that p is below (1 − confidence) / 2
        assert (rec.verdict == "held") == (rec.p_value < (1 - confidence) / 2)
    json.dumps(rec.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- correlation
def test_fisher_ci_r05_n10():
    x, y = exact_pair(0.5, 10)
    rec = correlation_verdict(x, y)
    half = Z975 / math.sqrt(7)
    assert rec.estimate == pytest.approx(0.5, abs=1e-12)
    assert rec.ci_low == pytest.approx(math.tanh(math.atanh(0.5) - half), abs=1e-8)
    assert rec.ci_high == pytest.approx(math.tanh(math.atanh(0.5) + half), abs=1e-8)
    assert fisher_ci(0.5, 10) == pytest.approx((rec.ci_low, rec.ci_high))
    assert rec.verdict == "inconclusive"


def test_correlation_strong_monotone_held():
    x = np.arange(1.0, 21.0)
    rec = correlation_verdict(x, np.log(x))
    assert rec.verdict == "held" and rec.ci_low > 0
    assert rec.spearman_rho == pytest.approx(1.0)


def test_correlation_near_zero_large_n_contradicted():
    x, y = exact_pair(0.0, 500, seed=3)
    rec = correlation_verdict(x, y, n_permutations=2000)
    assert rec.verdict == "contradicted"
    assert rec.ci_low < 0 < rec.ci_high < 0.3
    assert "at most weak" in rec.sentence and "r_min = 0.3" in rec.sentence and "r_min = 0.3" in rec.rule


def test_correlation_weak_but_positive_is_contradicted():
    x, y = exact_pair(0.15, 1000, seed=4)
    rec = correlation_verdict(x, y, n_permutations=0)
    assert 0 < rec.ci_low < rec.ci_high < 0.3
    assert rec.verdict == "contradicted"
    assert math.isnan(rec.p_value) and rec.p_method == "none"


def test_correlation_r055_n10_inconclusive():
    x, y = exact_pair(0.55, 10, seed=1)
    rec = correlation_verdict(x, y)
    assert rec.estimate == pytest.approx(0.55)
    assert rec.ci_low < 0 and rec.ci_high > 0.3
    assert rec.verdict == "inconclusive"


def test_correlation_not_testable():
    const = correlation_verdict([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 2.0, 2.0, 2.0, 2.0])
    assert const.verdict == "not testable" and math.isnan(const.estimate)
    assert "y is constant" in const.sentence
    small = correlation_verdict([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert small.verdict == "not testable" and math.isnan(small.estimate)


def test_perfect_correlation_no_crash_and_exact_permutation():
    rec = correlation_verdict([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0, 8.0, 10.0])
    assert rec.estimate == pytest.approx(1.0)
    assert math.isfinite(rec.ci_low) and math.isfinite(rec.ci_high)
    assert rec.verdict == "held"
    assert rec.p_method == "exact"  # 5! = 120 <= 10000: all orderings; identity and reversal reach |r| = 1
    assert rec.p_value == pytest.approx(2 / 120)


def test_permutation_p_seeded_and_close_to_t_test():
    x, y = exact_pair(0.15, 200, seed=2)
    a = correlation_verdict(x, y, seed=7)
    b = correlation_verdict(x, y, seed=7)
    assert a.p_value == b.p_value and a.p_method == "Monte Carlo"
    assert a.p_value == pytest.approx(stats.pearsonr(x, y)[1], abs=0.01)


# --------------------------------------------------------------------------- dependent correlations
def test_williams_t_published_and_hand_values():
    # depcor (Silver, Hittner & May 2006), as used in the cocor test suite: t = -1.0767, p = 0.2843
    t, p = williams_t(0.3, 0.4, 0.5, 100)
    assert round(t, 4) == -1.0767 and round(p, 4) == 0.2843
    assert t == pytest.approx(steiger_eq7(0.3, 0.4, 0.5, 100))
    rng = np.random.default_rng(5)
    y = rng.normal(size=30)
    a, b = y + rng.normal(size=30), y + 2 * rng.normal(size=30)
    rec = dependent_correlation_verdict(y, a, b)
    corr = np.corrcoef([y, a, b])
    r_ya, r_yb, r_ab = corr[0, 1], corr[0, 2], corr[1, 2]
    assert (rec.r_ya, rec.r_yb, rec.r_ab) == pytest.approx((r_ya, r_yb, r_ab))
    assert rec.williams_t == pytest.approx(steiger_eq7(r_ya, r_yb, r_ab, 30))
    assert rec.p_value == pytest.approx(2 * stats.t.sf(abs(rec.williams_t), 27))
    assert rec.df == 27 and rec.estimate == pytest.approx(r_ya - r_yb)


def test_zou_ci_published_value():
    # Zou (2007), overlapping dependent correlations example: 95 % CI (-0.093, 0.517)
    low, high = zou_ci(0.396, 0.179, 0.088, 66)
    assert (round(low, 3), round(high, 3)) == (-0.093, 0.517)


def test_dependent_tight_vs_noise_held_and_swapped_contradicted():
    rng = np.random.default_rng(0)
    y = rng.normal(size=40)
    a, b = y + 0.2 * rng.normal(size=40), rng.normal(size=40)
    held = dependent_correlation_verdict(y, a, b)
    assert held.verdict == "held" and held.ci_low > 0
    swapped = dependent_correlation_verdict(y, b, a)
    assert swapped.verdict == "contradicted" and swapped.ci_high < 0
    assert swapped.estimate == pytest.approx(-held.estimate)
    assert "Zou" in held.rule and "Williams' t(37)" in held.sentence


def test_dependent_identical_columns_inconclusive():
    rng = np.random.default_rng(1)
    y = rng.normal(size=20)
    a = y + rng.normal(size=20)
    rec = dependent_correlation_verdict(y, a, a.copy())
    assert rec.verdict == "inconclusive"
    assert rec.estimate == 0.0 and rec.williams_t == 0.0 and rec.p_value == pytest.approx(1.0)
    assert rec.ci_low <= 0 <= rec.ci_high


def test_dependent_not_testable():
    assert dependent_correlation_verdict([1.0, 2, 3, 4], [1.0, 2, 3, 5], [3.0, 3, 3, 3]).verdict == "not testable"
    small = dependent_correlation_verdict([1.0, 2, 3], [1.0, 3, 2], [2.0, 1, 3])
    assert small.verdict == "not testable" and math.isnan(small.estimate)
    with pytest.raises(ValueError):
        dependent_correlation_verdict([1.0, 2, 3, 4], [1.0, 2, 3], [1.0, 2, 3, 4])


# --------------------------------------------------------------------------- power and the underpowered rule
MIXED = np.array([1.0, -1.5, 0.5, -0.2])       # mean −0.05, sd 1.0847: CI [−1.78, +1.68], inconclusive


def test_record_power_fields_have_defaults_for_old_constructors():
    rec = VerdictRecord(kind="x", verdict="held", n=3, estimate=1.0, ci_low=0.5, ci_high=1.5, confidence=0.95,
                        rule="r", sentence="s")
    assert math.isnan(rec.detectable_effect) and rec.power == 0.8 and rec.paper_effect is None
    assert rec.reason is None and math.isnan(rec.p_value)
    assert rec.to_dict()["detectable_effect"] is None


def test_paired_underpowered_is_not_testable_with_the_seeds_needed():
    rec = paired_verdict(BASE, BASE + MIXED, paper_delta=0.5)
    sd = float(np.std(MIXED, ddof=1))
    assert rec.detectable_effect == pytest.approx(detectable_paired_gain(4, sd))
    assert round(rec.detectable_effect, 2) == 2.31
    assert paired_sample_size(0.5, sd) == 39
    assert rec.verdict == "not testable" and rec.paper_effect == 0.5
    assert rec.reason == "underpowered: detects ≥ 2.31, the paper reports +0.5; needs about 39 seeds"
    # said before the CI, and the paper's figure inside a CI that also contains 0 says both
    assert rec.sentence == ("Underpowered: 4 paired seeds detect a gain ≥ 2.31 with 80 % power, but the paper reports "
                            "+0.5 (about 39 seeds needed). Mean paired gain (treated − baseline) -0.05, 95 % CI "
                            "[-1.78, +1.68], over n = 4 paired seeds: not testable; consistent with the paper's +0.5 "
                            "(inside the CI), and with no gain: the CI contains 0.")
    assert "underpowered" in rec.rule and "80 % power" in rec.rule
    # a negative paper figure counts by its size
    assert paired_verdict(BASE, BASE + MIXED, paper_delta=-0.5).verdict == "not testable"


def test_paired_powered_inconclusive_stays_and_a_decided_ci_stands():
    # the paper's +4.8 is above what 4 seeds detect (2.31): inconclusive stays, with the power stated
    rec = paired_verdict(BASE, BASE + MIXED, paper_delta=4.8)
    assert rec.verdict == "inconclusive" and rec.reason is None
    assert rec.sentence.endswith("smaller than the paper's +4.8 (above the CI); 4 paired seeds detect a gain ≥ 2.31 "
                                 "with 80 % power.")
    # held although the paper's figure (0.1) lies below the detectable gain (0.17): the CI decides
    held = paired_verdict(BASE, BASE + GAIN, paper_delta=0.1)
    assert held.detectable_effect > 0.1 and held.verdict == "held" and held.reason is None
    # without a paper figure: today's rule, power still recorded, sentence unchanged
    plain = paired_verdict(BASE, BASE + MIXED)
    assert plain.verdict == "inconclusive" and plain.detectable_effect == rec.detectable_effect
    assert plain.sentence == ("Mean paired gain (treated − baseline) -0.05, 95 % CI [-1.78, +1.68], over n = 4 "
                              "paired seeds: inconclusive.")
    # a higher power target asks for a larger gain
    assert paired_verdict(BASE, BASE + MIXED, power=0.9).detectable_effect > rec.detectable_effect


def test_negligible_gain_underpowered_against_its_margin():
    # gains 0.5, 1.5, 0.8, 1.3 (sd 0.457): margins ≥ 0.97 are shown with 80 % power; a margin of 0.5 is not
    gains = np.array([0.5, 1.5, 0.8, 1.3])
    sd = float(np.std(gains, ddof=1))
    rec = negligible_gain_verdict(BASE, BASE + gains, margin=1.2)
    assert rec.verdict == "inconclusive" and rec.detectable_effect == pytest.approx(detectable_paired_gain(4, sd))
    weak = negligible_gain_verdict(BASE + 0.6, BASE + gains, margin=0.5)   # gains − 0.6: CI straddles 0.5
    assert weak.ci_low < 0.5 < weak.ci_high
    assert weak.verdict == "not testable"
    assert weak.reason == (f"underpowered: detects ≥ 0.97, the margin is 0.5; needs about "
                           f"{paired_sample_size(0.5, sd)} seeds")
    assert weak.sentence.startswith("Underpowered: 4 paired seeds detect a negligible gain against margins ≥ 0.97 "
                                    "with 80 % power, but the margin is 0.5 (about")
    assert "the margin lies below the smallest effect" in weak.rule


def test_correlation_underpowered_at_ten_classes():
    # r = 0.5 over 10 classes: CI [−0.19, +0.86]; 10 classes detect r ≥ 0.785; the paper's 0.5433 needs 25
    x, y = exact_pair(0.5, 10)
    rec = correlation_verdict(x, y, paper_effect=0.5433)
    assert rec.detectable_effect == pytest.approx(detectable_correlation(10))
    assert correlation_sample_size(0.5433) == 25
    assert rec.verdict == "not testable"
    assert rec.reason == "underpowered: detects ≥ 0.79, the paper reports +0.5433; needs about 25 classes"
    assert rec.sentence.startswith("Underpowered: 10 classes detect r ≥ 0.79 with 80 % power, but the paper reports "
                                   "+0.5433 (about 25 classes needed). Pearson r = +0.50, 95 % CI [-0.19, +0.86]")
    strong = correlation_verdict(x, y, paper_effect=0.9)
    assert strong.verdict == "inconclusive"
    assert strong.sentence.endswith("inconclusive; the paper reports +0.9, and 10 classes detect r ≥ 0.79 with 80 % "
                                    "power.")
    assert correlation_verdict(x, y).verdict == "inconclusive"      # no paper figure: today's rule
    assert correlation_verdict([1.0, 2, 3], [1.0, 3, 2], paper_effect=0.5).reason == "n = 3 < 4"


def _dependent_sample(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=12)
    return y, y + 0.8 * rng.normal(size=12), y + 0.9 * rng.normal(size=12)


def test_dependent_correlation_power_from_n_and_the_observed_correlations():
    plain = dependent_correlation_verdict(*_dependent_sample(5))
    assert plain.verdict == "inconclusive"
    assert plain.detectable_effect == pytest.approx(
        detectable_correlation_difference(12, plain.r_yb, plain.r_ab))
    small = dependent_correlation_verdict(*_dependent_sample(5), paper_effect=0.12)
    assert round(small.detectable_effect, 2) == 0.19 and small.verdict == "not testable"
    assert small.reason == "underpowered: detects ≥ 0.19, the paper reports +0.12; needs about 70 classes"
    assert small.p_value == plain.p_value     # Williams' p is unchanged by the power rule
    # seed 9: 12 classes detect 0.11 here, so the paper's +0.12 leaves the inconclusive verdict standing
    powered = dependent_correlation_verdict(*_dependent_sample(9), paper_effect=0.12)
    assert powered.detectable_effect < 0.12 and powered.verdict == "inconclusive" and powered.reason is None
    assert powered.sentence.endswith("inconclusive; the paper reports +0.12, and 12 classes detect r(y, a) − r(y, b) "
                                     "≥ 0.11 with 80 % power at the observed r(y, b) and r(a, b).")
    # seed 0: r(y, b) = 0.71, r(a, b) = 0.39 allow r(y, a) ≤ 0.925, and even that is not detected at n = 12
    none = dependent_correlation_verdict(*_dependent_sample(0), paper_effect=0.12)
    assert none.detectable_effect == math.inf and none.verdict == "not testable"
    assert none.reason.startswith("underpowered: detects no r(y, a) − r(y, b) that is possible here, the paper "
                                  "reports +0.12")


def test_pooled_verdict_power_p_and_hk():
    # a normal-theory CI [0.1, 0.5] around r = 0.3: se_z read back from its width on the z scale
    rec = pooled_correlation_verdict(0.3, 0.1, 0.5, k=6, i2=0.1)
    se = (math.atanh(0.5) - math.atanh(0.1)) / (2 * stats.norm.ppf(0.975))
    assert isinstance(rec, PooledVerdict) and rec.se_z == pytest.approx(se) and rec.df is None
    assert rec.p_value == pytest.approx(2 * stats.norm.sf(math.atanh(0.3) / se))
    assert rec.detectable_effect == pytest.approx(detectable_pooled_correlation(se))
    # Hartung–Knapp: t on k − 1 = 2 df, everywhere
    hk = pooled_correlation_verdict(0.3, -0.2, 0.7, k=3, i2=0.1, interval="hk", se_z=0.12, paper_effect=0.3)
    assert hk.df == 2 and hk.p_value == pytest.approx(2 * stats.t.sf(math.atanh(0.3) / 0.12, 2))
    assert hk.detectable_effect == pytest.approx(detectable_pooled_correlation(0.12, df=2))
    assert hk.verdict == "not testable" and hk.reason.startswith("underpowered: detects ≥ 0.57, the paper reports +0.3")
    assert hk.reason.endswith(" studies") and "Hartung–Knapp" in hk.rule
    with pytest.raises(ValueError, match="interval"):
        pooled_correlation_verdict(0.3, 0.1, 0.5, k=6, i2=0.1, interval="t")


def test_holm_is_importable_from_verdicts():
    np.testing.assert_allclose(holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


# --------------------------------------------------------------------------- paired records from run tables
def _runs(top1_a, top1_b, *, seeds_a=(0, 1, 2), seeds_b=(0, 1, 2), dirs_b=None):
    import pandas as pd
    a = [{"method": "A", "seed": s, "top1": t, "run_dir": f"runs/a{s}"} for s, t in zip(seeds_a, top1_a)]
    b = [{"method": "B", "seed": s, "top1": t, "run_dir": (dirs_b or [f"runs/b{s}" for s in seeds_b])[i]}
         for i, (s, t) in enumerate(zip(seeds_b, top1_b))]
    return pd.DataFrame(a + b)


def test_compare_pairs_refuses_duplicated_seeds_and_shared_run_folders():
    from semscale_lib.studies.reweighting import compare_pairs
    with pytest.raises(ValueError, match=r"method 'B' has seed 1 more than once"):
        compare_pairs(_runs([0.6, 0.7, 0.8], [0.5, 0.6, 0.6], seeds_b=(0, 1, 1)), {"A": "B"})
    with pytest.raises(ValueError, match=r"'A' and 'B' are the same run for seed 0 \(run_dir 'runs/a0'\)"):
        compare_pairs(_runs([0.6, 0.7, 0.8], [0.6, 0.7, 0.8], dirs_b=["runs/a0", "runs/b1", "runs/b2"]), {"A": "B"})
    # distinct runs whose gains are all equal: no CI, not testable (never held)
    row = compare_pairs(_runs([0.62, 0.72, 0.82], [0.60, 0.70, 0.80]), {"A": "B"}, paper_deltas={"A": 4.8}).iloc[0]
    assert row["verdict"] == "not testable" and math.isnan(row["ci_low"])
    assert row["record"].reason == "every paired difference is equal (+2.00 in all 3 pairs): no confidence interval"
