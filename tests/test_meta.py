"""Random-effects pooling of correlations (semscale_lib.meta) against hand-computed DerSimonian–Laird."""
import math

import numpy as np
import pytest
from scipy import optimize, stats

from semscale_lib.meta import MetaResult, pooled_correlation, pooled_correlation_by_group
from semscale_lib.verdicts import fisher_ci

Z975 = stats.norm.ppf(0.975)


def dersimonian_laird_by_hand(r, n):
    """Plain numpy: Fisher z, Q, C, τ² = max(0, (Q − df)/C), random-effects mean, se, weights, I²."""
    r, n = np.asarray(r, float), np.asarray(n, float)
    z, v = np.arctanh(r), 1 / (n - 3)
    w = 1 / v
    z_fe = (w * z).sum() / w.sum()
    q = (w * (z - z_fe) ** 2).sum()
    df = len(r) - 1
    c = w.sum() - (w**2).sum() / w.sum()
    tau2 = max(0.0, (q - df) / c)
    w_re = 1 / (v + tau2)
    z_re = (w_re * z).sum() / w_re.sum()
    se = math.sqrt(1 / w_re.sum())
    i2 = max(0.0, (q - df) / q)
    return dict(z=z_re, se=se, tau2=tau2, q=q, i2=i2, weights=w_re / w_re.sum(), q_p=stats.chi2.sf(q, df))


@pytest.mark.parametrize("method", ["dl", "pm"])
def test_identical_studies_pool_to_the_same_r_without_heterogeneity(method):
    res = pooled_correlation([0.4, 0.4, 0.4, 0.4], [10, 20, 30, 50], method=method)
    assert isinstance(res, MetaResult)
    assert res.estimate == pytest.approx(0.4, abs=1e-12)
    assert res.tau2 == 0.0 and res.i2 == 0.0
    assert res.q == pytest.approx(0.0, abs=1e-10) and res.q_p == pytest.approx(1.0)
    assert res.k == 4 and res.method == method


def test_dersimonian_laird_by_hand():
    r, n = [0.2, 0.5, 0.8], [20, 30, 40]
    hand = dersimonian_laird_by_hand(r, n)
    assert hand["tau2"] > 0  # a real random-effects case
    res = pooled_correlation(r, n, method="dl")
    assert res.z == pytest.approx(hand["z"], abs=1e-10)
    assert res.estimate == pytest.approx(math.tanh(hand["z"]), abs=1e-10)
    assert res.se_z == pytest.approx(hand["se"], abs=1e-10)
    assert res.tau2 == pytest.approx(hand["tau2"], abs=1e-10)
    assert res.q == pytest.approx(hand["q"], abs=1e-10)
    assert res.i2 == pytest.approx(hand["i2"], abs=1e-10)
    assert res.q_p == pytest.approx(hand["q_p"], abs=1e-10)
    np.testing.assert_allclose(res.studies["weight"], hand["weights"], rtol=0, atol=1e-10)


def test_fixed_effect_weights_are_proportional_to_n_minus_3_when_tau2_is_zero():
    # Q < k − 1 here: statsmodels' untruncated DL τ² would be negative; the published estimator truncates it at 0
    r, n = [0.30, 0.31, 0.29], np.array([20, 50, 100])
    hand = dersimonian_laird_by_hand(r, n)
    assert hand["q"] < 2 and hand["tau2"] == 0.0
    for method in ("dl", "pm"):
        res = pooled_correlation(r, n, method=method)
        assert res.tau2 == 0.0 and res.i2 == 0.0
        np.testing.assert_allclose(res.studies["weight"], (n - 3) / (n - 3).sum(), rtol=1e-12)
        assert res.se_z == pytest.approx(1 / math.sqrt((n - 3).sum()), rel=1e-12)
        assert res.z == pytest.approx(hand["z"], abs=1e-12)


def test_ci_is_the_back_transformed_normal_interval():
    res = pooled_correlation([0.1, 0.45, 0.7, 0.3], [15, 40, 25, 60])
    assert res.ci_low == pytest.approx(math.tanh(res.z - Z975 * res.se_z), abs=1e-12)
    assert res.ci_high == pytest.approx(math.tanh(res.z + Z975 * res.se_z), abs=1e-12)
    assert res.ci_low < res.estimate < res.ci_high
    # per-study intervals: the ordinary Fisher-z CI of each r, as the verdicts module computes it
    for row in res.studies.itertuples():
        assert (row.ci_low, row.ci_high) == pytest.approx(fisher_ci(row.r, int(row.n)), abs=1e-12)
    assert 0.0 <= res.i2 <= 1.0
    res90 = pooled_correlation([0.1, 0.45, 0.7, 0.3], [15, 40, 25, 60], confidence=0.9)
    assert res90.ci_high - res90.ci_low < res.ci_high - res.ci_low


def test_paule_mandel_solves_its_estimating_equation():
    r, n = np.array([0.2, 0.5, 0.8, -0.1]), np.array([20, 30, 40, 25])
    z, v = np.arctanh(r), 1 / (n - 3)

    def excess(tau2):
        w = 1 / (v + tau2)
        return (w * (z - (w * z).sum() / w.sum()) ** 2).sum() - (len(r) - 1)

    tau2 = optimize.brentq(excess, 0.0, 10.0, xtol=1e-14)
    res = pooled_correlation(r, n, method="pm")
    assert res.tau2 == pytest.approx(tau2, abs=1e-8)
    assert pooled_correlation(r, n, method="iterated").tau2 == res.tau2
    w = 1 / (v + res.tau2)
    assert res.z == pytest.approx((w * z).sum() / w.sum(), abs=1e-12)


def test_study_table_and_labels():
    res = pooled_correlation(np.array([0.2, 0.5]), [10, 12], labels=["cifar10", "cifar100"])
    assert list(res.studies.columns) == ["label", "r", "n", "z", "var_z", "ci_low", "ci_high", "weight"]
    assert list(res.studies["label"]) == ["cifar10", "cifar100"]
    np.testing.assert_allclose(res.studies["var_z"], [1 / 7, 1 / 9])
    assert res.studies["weight"].sum() == pytest.approx(1.0)
    assert res.to_dict()["studies"][0]["label"] == "cifar10"


def test_perfect_correlation_is_clipped_not_infinite():
    res = pooled_correlation([1.0, 0.9, -1.0], [10, 10, 10])
    assert np.isfinite([res.z, res.se_z, res.ci_low, res.ci_high]).all()
    assert np.isfinite(res.studies["z"]).all()


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(r=[0.1, 0.2], n=[10, 3]), ValueError, "n"),
    (dict(r=[0.1, 0.2], n=[10, 2.5]), ValueError, "n"),
    (dict(r=[0.1, np.nan], n=[10, 10]), ValueError, "r"),
    (dict(r=[0.1, 1.2], n=[10, 10]), ValueError, "r"),
    (dict(r=[0.1, 0.2, 0.3], n=[10, 10]), ValueError, "n"),
    (dict(r=[0.1], n=[10]), ValueError, "r"),
    (dict(r=[0.1, 0.2], n=[10, 10], method="reml"), ValueError, "method"),
    (dict(r=[0.1, 0.2], n=[10, 10], interval="t"), ValueError, "interval"),
    (dict(r=[0.1, 0.2], n=[10, 10], labels=["a"]), ValueError, "labels"),
    (dict(r=[0.1, 0.2], n=[10, 10], confidence=95), ValueError, "confidence"),
    (dict(r=None, n=[10, 10]), TypeError, "r"),
    (dict(r=["a", "b"], n=[10, 10]), TypeError, "r"),
    (dict(r=[[0.1, 0.2]], n=[10, 10]), ValueError, "r"),
])
def test_bad_input_is_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        pooled_correlation(**kwargs)


# --------------------------------------------------------------------------- Hartung–Knapp and pooling by group
def test_normal_interval_is_the_default_and_reports_its_p():
    res = pooled_correlation([0.1, 0.45, 0.7, 0.3], [15, 40, 25, 60])
    assert res.interval == "normal" and res.df is None and math.isnan(res.hk_q)
    assert res.p_value == pytest.approx(2 * stats.norm.sf(abs(res.z) / res.se_z))


def test_hartung_knapp_matches_statsmodels_where_q_is_at_least_one():
    from statsmodels.stats.meta_analysis import combine_effects
    r, n = np.array([0.1, 0.45, 0.7, 0.3]), np.array([15, 40, 25, 60])
    res = pooled_correlation(r, n, interval="hk")
    sm = combine_effects(np.arctanh(r), 1 / (n - 3), method_re="dl", use_t=True)
    assert res.hk_q == pytest.approx(sm.scale_hksj_re, rel=1e-10) and res.hk_q > 1
    hk_low, hk_high = np.tanh(sm.conf_int(alpha=0.05, use_t=True)[3])   # statsmodels' RE HKSJ interval
    assert (res.ci_low, res.ci_high) == pytest.approx((hk_low, hk_high), abs=1e-10)
    assert res.df == 3 and res.se_z == pytest.approx(sm.sd_eff_w_re_hksj, rel=1e-10)
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(res.z) / res.se_z, 3))
    # the point estimate, τ² and the study table do not depend on the interval
    normal = pooled_correlation(r, n)
    assert (res.z, res.tau2, res.i2) == pytest.approx((normal.z, normal.tau2, normal.i2))


def test_hartung_knapp_with_q_below_one_keeps_the_plain_standard_error():
    # three nearly equal studies: τ² = 0, q = Σ w (z − ẑ)² / 2 = 0.0078 < 1, so se = 1/√Σ(n − 3) with t on 2 df —
    # the plain HK interval (√q · se) would be 11 times narrower than this
    r, n = np.array([0.30, 0.31, 0.29]), np.array([20, 50, 100])
    res = pooled_correlation(r, n, interval="hk")
    z, w = np.arctanh(r), n - 3.0
    mean = (w * z).sum() / w.sum()
    assert res.hk_q == pytest.approx((w * (z - mean) ** 2).sum() / 2) and res.hk_q < 0.01
    se = 1 / math.sqrt(w.sum())
    half = stats.t.ppf(0.975, 2) * se
    assert res.se_z == pytest.approx(se)
    assert (res.ci_low, res.ci_high) == pytest.approx((math.tanh(mean - half), math.tanh(mean + half)))
    # equal studies: q = 0, still a finite, non-degenerate t interval
    equal = pooled_correlation([0.4, 0.4], [20, 20], interval="hk")
    assert equal.hk_q == pytest.approx(0.0, abs=1e-20)
    assert equal.ci_high - equal.ci_low > 0.5


def test_by_group_with_identical_studies_equals_one_study_per_group():
    grouped = pooled_correlation_by_group([0.3, 0.3, 0.6, 0.6, 0.6], [20, 20, 30, 30, 30],
                                          ["cifar", "cifar", "mnist", "mnist", "mnist"], labels=list("abcde"))
    single = pooled_correlation([0.3, 0.6], [20, 30], interval="hk")
    assert grouped.k == 2 and grouped.interval == "hk" and grouped.df == 1
    for name in ("estimate", "ci_low", "ci_high", "z", "se_z", "tau2", "i2", "q", "p_value"):
        assert getattr(grouped, name) == pytest.approx(getattr(single, name), abs=1e-12), name
    assert list(grouped.studies["label"]) == list("abcde")
    assert list(grouped.studies["group"]) == ["cifar", "cifar", "mnist", "mnist", "mnist"]
    assert grouped.studies["weight"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(grouped.studies["weight"].iloc[[0, 2]] * [2, 3], grouped.groups["weight"])
    assert grouped.groups["studies"].tolist() == [2, 3]


def test_by_group_uses_the_mean_z_and_the_squared_mean_standard_error():
    r, n = np.array([0.2, 0.4, 0.7, 0.5]), np.array([12, 28, 19, 53])
    grouped = pooled_correlation_by_group(r, n, [0, 0, 1, 2], method="dl", interval="normal")
    z = np.arctanh(r)
    se = 1 / np.sqrt(n - 3)
    z_g = np.array([(z[0] + z[1]) / 2, z[2], z[3]])
    var_g = np.array([((se[0] + se[1]) / 2) ** 2, se[2] ** 2, se[3] ** 2])
    np.testing.assert_allclose(grouped.groups["z"], z_g)
    np.testing.assert_allclose(grouped.groups["var_z"], var_g)
    # the conservative variance exceeds the independent-studies one, 1 / (9 + 25)
    assert var_g[0] > 1 / (9 + 25)
    # then ordinary DerSimonian–Laird over the three groups, by hand
    w = 1 / var_g
    z_fe = (w * z_g).sum() / w.sum()
    q = (w * (z_g - z_fe) ** 2).sum()
    tau2 = max(0.0, (q - 2) / (w.sum() - (w**2).sum() / w.sum()))
    w_re = 1 / (var_g + tau2)
    assert grouped.tau2 == pytest.approx(tau2, abs=1e-10)
    assert grouped.z == pytest.approx((w_re * z_g).sum() / w_re.sum(), abs=1e-10)
    assert grouped.se_z == pytest.approx(1 / math.sqrt(w_re.sum()), abs=1e-10)
    assert grouped.k == 3 and grouped.to_dict()["groups"][0]["studies"] == 2


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(r=[0.1, 0.2], n=[10, 10], groups=["a", "a"]), ValueError, "2 groups"),
    (dict(r=[0.1, 0.2], n=[10, 10], groups=["a"]), ValueError, "groups"),
    (dict(r=[0.1, 0.2], n=[10, 10], groups="ab"), TypeError, "groups"),
    (dict(r=[0.1, 0.2], n=[10, 10], groups=["a", "b"], interval="t"), ValueError, "interval"),
    (dict(r=[0.1, 0.2], n=[10, 2], groups=["a", "b"]), ValueError, "n"),
])
def test_by_group_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        pooled_correlation_by_group(**kwargs)
