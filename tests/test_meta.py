"""Random-effects pooling of correlations (semscale_lib.meta) against hand-computed DerSimonian–Laird."""
import math

import numpy as np
import pytest
from scipy import optimize, stats

from semscale_lib.meta import MetaResult, pooled_correlation
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
    (dict(r=[0.1, 0.2], n=[10, 10], labels=["a"]), ValueError, "labels"),
    (dict(r=[0.1, 0.2], n=[10, 10], confidence=95), ValueError, "confidence"),
    (dict(r=None, n=[10, 10]), TypeError, "r"),
    (dict(r=["a", "b"], n=[10, 10]), TypeError, "r"),
    (dict(r=[[0.1, 0.2]], n=[10, 10]), ValueError, "r"),
])
def test_bad_input_is_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        pooled_correlation(**kwargs)
