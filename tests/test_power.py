"""semscale_lib.power and holm_adjust against published power tables, closed forms and seeded Monte Carlo."""
import math

import numpy as np
import pytest
from scipy import stats

from semscale_lib import power as pw
from semscale_lib.inference import estimates_correlation, holm_adjust, zou_ci

Q80 = 1.959963985 + 0.841621234   # z_0.975 + z_0.80, written out


# ------------------------------------------------------------------------------------------------ correlation
def test_detectable_correlation_closed_form():
    # 10 classes: tanh(2.8016 / √7) = 0.785 (the issue's "80 % power needs ρ ≈ 0.79"); 100 classes: 0.277
    assert pw.detectable_correlation(10) == pytest.approx(math.tanh(Q80 / math.sqrt(7)), rel=1e-9)
    assert round(pw.detectable_correlation(10), 3) == 0.785
    assert round(pw.detectable_correlation(100), 3) == 0.277
    # a stricter level or a higher power needs a larger correlation
    assert pw.detectable_correlation(100, alpha=0.01) > pw.detectable_correlation(100)
    assert pw.detectable_correlation(100, power=0.9) > pw.detectable_correlation(100)


def test_correlation_sample_size_against_cohen_1988():
    # Cohen (1988), Table 3.4.1, two-sided α = .05, power .80: r = .10 → 783, r = .30 → 85 (G*Power's exact
    # bivariate-normal computation gives 782 and 84)
    assert pw.correlation_sample_size(0.1) == 783
    assert pw.correlation_sample_size(0.3) == 85
    assert pw.correlation_sample_size(-0.3) == 85
    # r = .50: Cohen's table says 28 and G*Power 29; the Fisher-z formula gives (2.8016 / atanh .5)² + 3 = 29.01,
    # so 30 — the approximation is one pair conservative here
    assert ((Q80 / math.atanh(0.5)) ** 2 + 3) == pytest.approx(29.0123, abs=1e-4)
    assert pw.correlation_sample_size(0.5) == 30


@pytest.mark.parametrize("rho", [0.1, 0.3, 0.5, 0.8])
def test_correlation_size_and_detectable_are_inverse(rho):
    n = pw.correlation_sample_size(rho)
    assert pw.detectable_correlation(n) <= rho < pw.detectable_correlation(n - 1)


# ------------------------------------------------------------------------------------------------ paired t
@pytest.mark.parametrize("d,n", [(0.2, 199), (0.5, 34), (0.8, 15)])
def test_paired_sample_size_against_gpower(d, n):
    # G*Power 3 (Faul et al. 2007), t tests, "means: difference from constant (one sample case)" = paired,
    # two tails, α = .05, power .80: d = 0.2 → 199, 0.5 → 34, 0.8 → 15
    assert pw.paired_sample_size(d, 1.0) == n
    assert pw.paired_sample_size(10 * d, 10.0) == n            # only δ / sd matters
    assert pw.paired_t_power(d, 1.0, n) >= 0.8 > pw.paired_t_power(d, 1.0, n - 1)


def test_paired_t_power_matches_statsmodels_and_normal_limit():
    from statsmodels.stats.power import TTestPower
    for d, n in [(0.5, 34), (0.8, 15), (1.2, 5), (0.3, 60)]:
        assert pw.paired_t_power(d, 1.0, n) == pytest.approx(TTestPower().power(d, n, 0.05), abs=1e-8)
    assert pw.paired_t_power(0.0, 1.0, 10) == pytest.approx(0.05, abs=1e-12)      # the level at no effect
    assert pw.paired_t_power(-0.5, 1.0, 34) == pytest.approx(pw.paired_t_power(0.5, 1.0, 34))


def test_paired_t_power_far_in_the_tail_matches_monte_carlo():
    # n = 2 (1 df), δ = 20 sd: scipy's nct.cdf(−c, 1, 20 √2) is NaN, so the lower tail is taken as the upper tail at
    # −nc; the result is checked against 10⁶ seeded draws of (Z + nc) / χ_1
    c = stats.t.ppf(0.975, 1)
    value = pw.paired_t_power(20.0, 1.0, 2)
    rng = np.random.default_rng(0)
    z, chi = rng.standard_normal(1_000_000), np.abs(rng.standard_normal(1_000_000))   # χ_1 = |N(0, 1)|
    t = (z + 20 * math.sqrt(2)) / chi
    assert value == pytest.approx(np.mean(np.abs(t) > c), abs=0.002)


def test_noncentral_tail_fallback_integral_matches_scipy(monkeypatch):
    # where scipy's nct.sf fails (NaN) the tail is integrated: E_S[Φ(nc − c S)], S = √(χ²_df / df)
    cases = [(2.0, 1, 3.0), (2.3, 4, 1.5), (2.0, 29, 2.8), (2.0, 9, -1.0)]
    expected = [stats.nct.sf(c, df, nc) for c, df, nc in cases]
    monkeypatch.setattr(pw.stats.nct, "sf", lambda *args: float("nan"))
    for (c, df, nc), value in zip(cases, expected):
        assert pw._t_upper_tail(c, df, nc) == pytest.approx(value, abs=1e-7)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
def test_detectable_paired_gain_reaches_the_power_exactly(n):
    d = pw.detectable_paired_gain(n, 1.0)
    assert pw.paired_t_power(d, 1.0, n) == pytest.approx(0.8, abs=1e-8)
    assert pw.detectable_paired_gain(n, 2.5) == pytest.approx(2.5 * d, rel=1e-8)
    assert pw.paired_sample_size(d * 1.000001, 1.0) == n


def test_detectable_paired_gain_of_the_issue_designs():
    # 3 seeds, sd of the differences 2.5 points: 80 % power needs a gain of 3.264 sd = 8.16 points; 10 seeds detect
    # 0.996 sd (the normal approximation, 2.80 / √10 = 0.886 sd, is too optimistic at small n)
    assert pw.detectable_paired_gain(3, 1.0) == pytest.approx(3.26404, abs=1e-4)
    assert pw.detectable_paired_gain(3, 2.5) == pytest.approx(8.1601, abs=1e-3)
    assert pw.detectable_paired_gain(10, 1.0) == pytest.approx(0.99600, abs=1e-4)
    assert pw.paired_sample_size(2.5, 2.5) == 10


# ------------------------------------------------------------------------------------- dependent correlations
def test_detectable_difference_when_a_and_b_are_uncorrelated_with_y_b_zero():
    # r_yb = r_ab = 0 gives c = 0 at every r_ya, so atanh(d) = 2.8016 √(2 / (n − 3)) by hand
    assert estimates_correlation(0.4, 0.0, 0.0) == 0.0
    for n in (20, 50, 200):
        assert pw.detectable_correlation_difference(n, 0.0, 0.0) == pytest.approx(
            math.tanh(Q80 * math.sqrt(2 / (n - 3))), rel=1e-7)


def test_difference_size_and_detectable_are_inverse():
    n = pw.correlation_difference_sample_size(0.5, 0.3, 0.4)
    assert n == 186
    d = pw.detectable_correlation_difference(n, 0.3, 0.4)
    assert d <= 0.2 < pw.detectable_correlation_difference(n - 1, 0.3, 0.4)
    assert pw.correlation_difference_sample_size(0.3 + d, 0.3, 0.4) == n


def _trivariate_correlations(r_ya, r_yb, r_ab, n, reps, seed):
    """(reps,) sample r_ya, r_yb, r_ab of ``reps`` seeded samples of n standard trivariate normal triples."""
    chol = np.linalg.cholesky(np.array([[1, r_ya, r_yb], [r_ya, 1, r_ab], [r_yb, r_ab, 1]]))
    x = np.random.default_rng(seed).standard_normal((reps, n, 3)) @ chol.T
    x -= x.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    c = np.einsum("rni,rnj->rij", x, x)
    return c[:, 0, 1], c[:, 0, 2], c[:, 1, 2]


def test_difference_power_and_variance_by_monte_carlo():
    # at the n the formula asks for, Zou's 95 % CI lies above 0 in about 80 % of 2000 seeded samples (SE 0.009)
    n = pw.correlation_difference_sample_size(0.5, 0.3, 0.4)
    ya, yb, ab = _trivariate_correlations(0.5, 0.3, 0.4, n, 2000, seed=1)
    held = np.mean([zou_ci(a, b, c, n)[0] > 0 for a, b, c in zip(ya, yb, ab)])
    assert held == pytest.approx(0.8, abs=0.04)
    # and the variance of z_ya − z_yb is 2 (1 − c) / (n − 3)
    spread = np.var(np.arctanh(ya) - np.arctanh(yb))
    assert spread == pytest.approx(2 * (1 - estimates_correlation(0.5, 0.3, 0.4)) / (n - 3), rel=0.1)


def test_difference_edge_cases():
    # r_yb = 0.9, r_ab = −0.9: r_ya can be at most r_yb r_ab + √((1 − r_yb²)(1 − r_ab²)) = −0.81 + 0.19 < r_yb,
    # so no positive difference exists
    assert pw.detectable_correlation_difference(10, 0.9, -0.9) == math.inf
    with pytest.raises(ValueError, match="positive semi-definite"):
        pw.correlation_difference_sample_size(0.9, 0.9 - 1e-3, -0.9)
    with pytest.raises(ValueError, match="differ"):
        pw.correlation_difference_sample_size(0.3, 0.3, 0.5)


# -------------------------------------------------------------------------------------- pooled correlation
def test_pooled_se_and_detectable_by_hand():
    assert pw.pooled_se_z([10, 20, 30]) == pytest.approx(1 / math.sqrt(7 + 17 + 27))
    tau2 = 0.05
    hand = 1 / math.sqrt(sum(1 / (1 / (n - 3) + tau2) for n in (10, 20, 30)))
    assert pw.pooled_se_z([10, 20, 30], tau2) == pytest.approx(hand)
    assert pw.detectable_pooled_correlation(0.1) == pytest.approx(math.tanh(Q80 * 0.1), rel=1e-9)
    q_t = stats.t.ppf(0.975, 3) + stats.t.ppf(0.8, 3)
    assert pw.detectable_pooled_correlation(0.1, df=3) == pytest.approx(math.tanh(q_t * 0.1))
    # one study of n pairs is the single-correlation case
    assert pw.detectable_pooled_correlation(pw.pooled_se_z([50])) == pytest.approx(pw.detectable_correlation(50))


def test_pooled_sample_size():
    # studies of 10 classes (var 1/7), ρ = 0.3: k = ⌈(1/7)(2.8016 / atanh 0.3)²⌉ = ⌈11.70⌉ = 12
    assert (1 / 7) * (Q80 / math.atanh(0.3)) ** 2 == pytest.approx(11.70, abs=0.01)
    assert pw.pooled_sample_size(0.3, 1 / 7) == 12
    k = pw.pooled_sample_size(0.3, 1 / 7, t_based=True)
    assert k > 12
    assert pw.detectable_pooled_correlation(math.sqrt(1 / 7 / k), df=k - 1) <= 0.3 < \
        pw.detectable_pooled_correlation(math.sqrt(1 / 7 / (k - 1)), df=k - 2)


@pytest.mark.parametrize("call,error,match", [
    (lambda: pw.detectable_correlation(3), ValueError, "n"),
    (lambda: pw.detectable_correlation(10, alpha=1.5), ValueError, "alpha"),
    (lambda: pw.detectable_correlation(10, power=0.01), ValueError, "power"),
    (lambda: pw.correlation_sample_size(0.0), ValueError, "rho"),
    (lambda: pw.correlation_sample_size(1.0), ValueError, "rho"),
    (lambda: pw.paired_t_power(1.0, 0.0, 5), ValueError, "sd"),
    (lambda: pw.paired_t_power(1.0, 1.0, 1), ValueError, "n"),
    (lambda: pw.paired_t_power(1.0, 1.0, 2.5), TypeError, "n"),
    (lambda: pw.detectable_paired_gain(3, -1.0), ValueError, "sd"),
    (lambda: pw.paired_sample_size(0.0, 1.0), ValueError, "delta"),
    (lambda: pw.paired_sample_size("1", 1.0), TypeError, "delta"),
    (lambda: pw.pooled_se_z([10, 3]), ValueError, "n"),
    (lambda: pw.pooled_se_z([10], tau2=-1), ValueError, "tau2"),
    (lambda: pw.detectable_pooled_correlation(0.0), ValueError, "se_z"),
])
def test_bad_input_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------------------------------ Holm
def test_holm_adjust_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # capped at 1; NaN stays NaN and is not counted (m = 2 here)
    out = holm_adjust([0.6, np.nan, 0.01])
    assert out[0] == 0.6 and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert holm_adjust([0.7, 0.8])[0] == 1.0 and holm_adjust([]).size == 0


def test_holm_adjust_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests
    p = np.random.default_rng(3).uniform(0, 0.2, size=12)
    np.testing.assert_allclose(holm_adjust(p), multipletests(p, method="holm")[1], rtol=1e-12)


def test_holm_adjust_bad_input():
    with pytest.raises(ValueError, match="0, 1"):
        holm_adjust([0.1, 1.2])
    with pytest.raises(ValueError, match="1-D"):
        holm_adjust([[0.1, 0.2]])
    with pytest.raises(TypeError):
        holm_adjust(["a"])
