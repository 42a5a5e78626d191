"""Imbalance quantification (Sec. 3.4.1) and the correlation table, against hand-computed cases."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from semscale_lib.imbalance import (
    UNDEFINED,
    SingleSampleWarning,
    correlate,
    imbalance_scale,
    imbalance_summary,
    interclass_term,
    quantify_imbalance,
    with_alpha,
)
from semscale_lib.scale import class_semantic_scales


def three_classes_on_a_line():
    """Classes centred at 0, 1, 3 on the first axis, each with 2 samples at ±spread on the second axis."""
    rows, labels = [], []
    for c, (centre, spread) in enumerate([(0.0, 1.0), (1.0, 2.0), (3.0, 0.5)]):
        rows += [[centre, spread], [centre, -spread]]
        labels += [c, c]
    return np.array(rows), np.array(labels)


def test_interclass_term_by_hand():
    # mean distances: (1+3)/2 = 2, (1+2)/2 = 1.5, (3+2)/2 = 2.5 → W' = [.8, .6, 1]
    w_prime, w = interclass_term(np.array([[0.0], [1.0], [3.0]]), alpha=1.0)
    np.testing.assert_allclose(w_prime, [0.8, 0.6, 1.0])
    np.testing.assert_allclose(w, np.log2([1.8, 1.6, 2.0]))
    _, w2 = interclass_term(torch.tensor([[0.0], [1.0], [3.0]]), alpha=2.0)
    np.testing.assert_allclose(w2.numpy(), np.log2([2.8, 2.6, 3.0]))


def test_quantify_imbalance_by_hand():
    x, y = three_classes_on_a_line()
    table = quantify_imbalance(x, y, alpha=2.0, class_names=["a", "b", "c"])
    # class c: centred rows (0, ±s); scatter diag(0, 2s²); d/m = 1 → S' = ½ log2(1 + 2 s²)
    raw = [0.5 * math.log2(1 + 2 * s**2) for s in (1.0, 2.0, 0.5)]
    np.testing.assert_allclose(table["semantic_scale"], raw, rtol=1e-12)
    np.testing.assert_allclose(table["normalized_scale"], np.array(raw) / max(raw))
    np.testing.assert_allclose(table["interclass"], np.log2([2.8, 2.6, 3.0]))
    np.testing.assert_allclose(table["imbalance_scale"], np.array(raw) / max(raw) * np.log2([2.8, 2.6, 3.0]))
    assert list(table.columns) == ["class", "name", "count", "semantic_scale", "normalized_scale",
                                   "normalized_distance", "interclass", "imbalance_scale"]
    assert table.attrs["alpha"] == 2.0
    np.testing.assert_allclose(with_alpha(table, 2.0), table["imbalance_scale"])


def test_imbalance_scale_tensor_and_numpy_agree():
    rng = np.random.default_rng(0)
    scales, centres = rng.uniform(1, 5, 6), rng.normal(size=(6, 4))
    expected = imbalance_scale(scales, centres, alpha=1.5)
    got = imbalance_scale(torch.from_numpy(scales), torch.from_numpy(centres), alpha=1.5)
    np.testing.assert_allclose(got.numpy(), expected)


@pytest.mark.parametrize("alpha", [0.5, float("nan")])
def test_alpha_below_one_is_rejected(alpha):
    x, y = three_classes_on_a_line()
    with pytest.raises(ValueError, match="alpha"):
        quantify_imbalance(x, y, alpha=alpha)


def test_quantify_needs_two_classes_and_distinct_centres():
    with pytest.raises(ValueError, match="at least 2 classes"):
        quantify_imbalance(np.ones((3, 2)), [0, 0, 0])
    with pytest.raises(ValueError, match="coincide"):
        quantify_imbalance(np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]]), [0, 0, 1, 1])


def make_table(counts, scales, distances):
    raw = np.asarray(scales, float)
    return pd.DataFrame({"class": range(len(counts)), "count": counts, "semantic_scale": raw,
                         "normalized_scale": raw / raw.max(), "normalized_distance": distances,
                         "interclass": np.log2(1 + np.asarray(distances))}).assign(
        imbalance_scale=lambda t: t.normalized_scale * t.interclass)


def test_correlate_reports_constant_counts_as_undefined():
    table = make_table([500] * 5, [1, 2, 3, 4, 5], [1, .9, .8, .7, .6])
    result = correlate([0.5, 0.6, 0.7, 0.8, 0.9], table).set_index("quantity")
    for name in ("N", "log N", "E_n"):
        assert not result.loc[name, "defined"]
        assert np.isnan(result.loc[name, "pearson_r"])
        assert "constant" in result.loc[name, "note"]
    assert result.loc["S'", "pearson_r"] == pytest.approx(1.0)
    w = np.log2(1 + np.array([1, .9, .8, .7, .6]))
    assert result.loc["W", "pearson_r"] == pytest.approx(np.corrcoef(w, [0.5, 0.6, 0.7, 0.8, 0.9])[0, 1])
    assert result.loc["W", "pearson_r"] < 0                         # the sign is reported as measured
    assert list(result.index[:5]) == ["N", "log N", "E_n", "W", "S'"]               # log N right after N
    assert list(result.index[5:]) == [f"S (alpha={a:g})" for a in (1, 1.5, 2, 2.5, 3)]


def test_correlate_values_and_ci():
    rng = np.random.default_rng(1)
    counts = np.array([5000, 2775, 1540, 855, 475, 263, 146, 81, 45, 25])
    table = make_table(counts, rng.uniform(1, 3, 10), rng.uniform(.5, 1, 10))
    accuracy = np.log(counts) / 10 + rng.normal(scale=.02, size=10)
    result = correlate(accuracy, table).set_index("quantity")
    assert result.loc["N", "pearson_r"] == pytest.approx(np.corrcoef(counts, accuracy)[0, 1])
    # log N is log2 of the counts: accuracy built from ln(counts) follows it far more closely than N
    assert result.loc["log N", "pearson_r"] == pytest.approx(np.corrcoef(np.log2(counts), accuracy)[0, 1])
    assert result.loc["log N", "pearson_r"] > result.loc["N", "pearson_r"] + 0.1
    assert result.loc["log N", "spearman_rho"] == pytest.approx(result.loc["N", "spearman_rho"])   # same ranks
    from scipy.stats import spearmanr
    assert result.loc["N", "spearman_rho"] == pytest.approx(spearmanr(counts, accuracy).statistic)
    alpha_15 = table.normalized_scale * np.log2(1.5 + table.normalized_distance)
    assert result.loc["S (alpha=1.5)", "pearson_r"] == pytest.approx(np.corrcoef(alpha_15, accuracy)[0, 1])
    row = result.loc["N"]
    assert row.ci_low <= row.pearson_r <= row.ci_high
    with pytest.raises(ValueError, match="shape"):
        correlate(accuracy[:5], table)


Z975 = 1.959963985  # standard-normal 97.5 % quantile, written out


def test_correlate_ci_is_fisher_z_by_hand():
    # S' = scales / 5 = (.2, .4, .6, .8, 1); accuracy (.1, .3, .2, .5, .4): centred (-2, -1, 0, 1, 2) and
    # (-2, 0, -1, 2, 1) (× 0.1), Σ dx·dy = 8, Σ dx² = Σ dy² = 10 → r = 0.8 exactly, n = 5
    table = make_table([10, 20, 30, 40, 50], [1, 2, 3, 4, 5], [1.0] * 5)
    result = correlate([0.1, 0.3, 0.2, 0.5, 0.4], table).set_index("quantity")
    row = result.loc["S'"]
    assert row.pearson_r == pytest.approx(0.8)
    half = Z975 / math.sqrt(5 - 3)
    assert row.ci_low == pytest.approx(math.tanh(math.atanh(0.8) - half), abs=1e-8)     # -0.2796
    assert row.ci_high == pytest.approx(math.tanh(math.atanh(0.8) + half), abs=1e-8)    # +0.9862
    assert round(row.ci_low, 4) == -0.2796 and round(row.ci_high, 4) == 0.9862
    assert row.defined and row.note == ""
    # N = (10, ..., 50) is S' × 50: the same r and the same interval
    assert (result.loc["N", "ci_low"], result.loc["N", "ci_high"]) == pytest.approx((row.ci_low, row.ci_high))
    # W is constant (equal distances): undefined, no interval
    assert not result.loc["W", "defined"] and np.isnan(result.loc["W", "ci_low"])


def test_correlate_three_classes_has_no_ci():
    table = make_table([30, 20, 10], [1, 2, 3], [1.0, 0.8, 0.6])
    result = correlate([0.9, 0.5, 0.6], table).set_index("quantity")
    row = result.loc["S'"]
    assert row.defined and row.n_classes == 3
    assert row.pearson_r == pytest.approx(np.corrcoef([1, 2, 3], [0.9, 0.5, 0.6])[0, 1])
    assert np.isnan(row.ci_low) and np.isnan(row.ci_high)
    assert "3 classes" in row.note
    with pytest.raises(ValueError, match="at least 3 classes"):
        correlate([0.1, 0.2], make_table([2, 1], [1, 2], [1.0, 0.5]))


def test_imbalance_summary_is_labelled_ours():
    table = make_table([100, 10], [2.0, 1.0], [1.0, 1.0])
    summary = imbalance_summary(table).set_index("quantity")
    assert summary.loc["count N", "max_over_min [ours]"] == pytest.approx(10.0)
    assert summary.loc["S' (raw)", "max_over_min [ours]"] == pytest.approx(2.0)


def test_balanced_gaussians_scale_tracks_spread():
    """Sample-balanced data can still be imbalanced in S: wider classes get a larger semantic scale."""
    rng = np.random.default_rng(2)
    spreads = [0.5, 1.0, 2.0, 4.0]
    x = np.concatenate([rng.normal(size=(200, 8)) * s + 10 * c for c, s in enumerate(spreads)])
    y = np.repeat(np.arange(4), 200)
    assert np.all(np.diff(class_semantic_scales(x, y)) > 0)


# ------------------------------------------------------------------------------------------- hostile inputs
FEATURES_TYPES = [("a string", "features"), ({"x": [1.0]}, "features"), (["a", "b"], "features"),
                  ([["1", "2"], ["3", "4"]], "features"), (None, "features"), ({1.0, 2.0}, "features"),
                  (np.array([[1 + 1j, 0], [0, 1]]), "features"), (np.array([[True], [False]]), "features")]


@pytest.mark.parametrize("features,name", FEATURES_TYPES)
def test_quantify_imbalance_refuses_wrong_types_with_a_typeerror(features, name):
    with pytest.raises(TypeError, match=rf"^{name}: expected an \(N, d\) array of numbers"):
        quantify_imbalance(features, [0, 1])


@pytest.mark.parametrize("labels", ["ab", {"a": 0}, ["a", "b", "c", "d"], None, np.array([True, False] * 2)])
def test_quantify_imbalance_refuses_labels_of_the_wrong_type(labels):
    with pytest.raises(TypeError, match=r"^labels: expected a 1-D array of integer class indices"):
        quantify_imbalance(np.eye(4), labels)


def test_quantify_imbalance_refuses_other_arguments_of_the_wrong_type():
    x, y = three_classes_on_a_line()
    with pytest.raises(TypeError, match="^alpha: expected a number"):
        quantify_imbalance(x, y, alpha="2")
    with pytest.raises(TypeError, match="^num_classes: expected an integer"):
        quantify_imbalance(x, y, num_classes=3.0)
    with pytest.raises(TypeError, match="^class_names: expected a sequence"):
        quantify_imbalance(x, y, class_names="abc")


def _overflowed() -> np.float64:
    """1e308 × 10: inf, as an overflowing computation leaves it."""
    with np.errstate(over="ignore"):
        return np.float64(1e308) * 10


def _with(value, row=1, col=0):
    x, _ = three_classes_on_a_line()
    x = x.copy()
    x[row, col] = value
    return x


@pytest.mark.parametrize("features,labels,message", [
    (np.ones(6), [0, 0, 1, 1, 2, 2], r"^features: expected a 2-D array \(N vectors × d dims\), got shape \(6,\)"),
    (np.ones((6, 2, 1)), [0, 0, 1, 1, 2, 2], r"^features: expected a 2-D array .* got shape \(6, 2, 1\)"),
    (np.ones((0, 2)), [], r"^features: expected at least one vector .* \(empty\)"),
    (np.ones((6, 0)), [0, 0, 1, 1, 2, 2], r"^features: expected at least one vector .* \(empty\)"),
    ([[1.0, 2.0], [3.0]], [0, 1], r"^features: expected .* got a ragged sequence"),
    (_with(np.nan), [0, 0, 1, 1, 2, 2], r"^features: expected finite numbers, found NaN or inf in 1 of 6 rows "
                                        r"\(first: row 1\)"),
    (_with(np.inf, row=4), [0, 0, 1, 1, 2, 2], r"^features: expected finite numbers.*\(first: row 4\)"),
    (_with(_overflowed()), [0, 0, 1, 1, 2, 2], r"^features: expected finite numbers"),
    (_with(1e308), [0, 0, 1, 1, 2, 2], r"^features: expected values of magnitude ≤ 1e\+100 .* found 1e\+308 "
                                       r"\(row 1\)"),
    (torch.from_numpy(_with(1e200)), [0, 0, 1, 1, 2, 2], r"^features: expected values of magnitude"),
    (torch.from_numpy(_with(np.nan)), [0, 0, 1, 1, 2, 2], r"^features: expected finite numbers"),
    (np.eye(6), np.zeros((3, 2), int), r"^labels: expected a 1-D array of class indices .* got shape \(3, 2\)"),
    (np.eye(6), [0, 1, 2], r"^labels: expected 6 labels \(one per row of features\), got 3: features and labels "
                           r"differ in length"),
    (np.eye(6), [0, 0, 1, 1, 2, 2.5], r"^labels: expected integer class indices, found 2\.5 at position 5"),
    (np.eye(6), [0, 0, 1, 1, 2, np.nan], r"^labels: expected integer class indices, found nan"),
    (np.eye(6), [0, 0, 1, 1, 2, -1], r"^labels: expected class indices ≥ 0, found -1"),
    (np.eye(6), [0, 0, 1, 1, 2, 10**12], r"^labels: expected class indices 0 … C−1 .* found 1000000000000"),
])
def test_quantify_imbalance_refuses_bad_values_with_a_valueerror(features, labels, message):
    with pytest.raises(ValueError, match=message):
        quantify_imbalance(features, labels)


@pytest.mark.parametrize("accuracy", ["high", {"a": 1.0}, ["a", "b", "c"], None, [0.5, None, 0.7]])
def test_correlate_refuses_accuracy_of_the_wrong_type(accuracy):
    table = make_table([5, 4, 3], [1, 2, 3], [1, .9, .8])
    with pytest.raises(TypeError, match=r"^per_class_accuracy: expected a 1-D array of one accuracy per class"):
        correlate(accuracy, table)


@pytest.mark.parametrize("table", [{"count": [1, 2, 3]}, "table", [[1, 2, 3]]])
def test_correlate_refuses_a_table_that_is_not_a_dataframe(table):
    with pytest.raises(TypeError, match="^table: expected the DataFrame returned by quantify_imbalance"):
        correlate([0.5, 0.6, 0.7], table)


@pytest.mark.parametrize("accuracy,message", [
    ([0.5, 0.6], r"^per_class_accuracy: expected shape \(3,\) .* got shape \(2,\)"),
    ([[0.5, 0.6, 0.7]], r"^per_class_accuracy: expected shape \(3,\) .* got shape \(1, 3\)"),
    ([0.5, np.nan, 0.7], r"^per_class_accuracy: expected finite numbers, found NaN or inf in 1 of 3 classes "
                         r"\(first: class 1\)"),
    ([0.5, np.inf, 0.7], r"^per_class_accuracy: expected finite numbers"),
    ([0.5, 1e308, 0.7], r"^per_class_accuracy: expected values of magnitude ≤ 1e\+100 .*\(class 1\)"),
])
def test_correlate_refuses_bad_accuracy_values(accuracy, message):
    table = make_table([5, 4, 3], [1, 2, 3], [1, .9, .8])
    with pytest.raises(ValueError, match=message):
        correlate(accuracy, table)
    with pytest.raises(ValueError, match=r"^table: expected the columns of quantify_imbalance, missing \['interclass'\]"):
        correlate([0.5, 0.6, 0.7], table.drop(columns="interclass"))


# ---------------------------------------------------------------------------------------- one-sample classes
def test_every_class_of_one_sample_is_a_valueerror_not_nan():
    with pytest.raises(ValueError, match=r"every class has a single sample: S′ is 0 for every class"):
        quantify_imbalance(np.random.default_rng(0).normal(size=(4, 3)), [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"single sample or identical vectors"):
        quantify_imbalance(np.repeat(np.eye(3), 2, axis=0), [0, 0, 1, 1, 2, 2])


def test_a_class_of_one_sample_warns_and_its_ratios_are_undefined():
    x, y = three_classes_on_a_line()
    x, y = np.vstack([x, [[5.0, 0.0]]]), np.append(y, 3)
    with pytest.warns(SingleSampleWarning, match=r"classes \[3\] have a single sample: their S′ is 0"):
        table = quantify_imbalance(x, y)
    assert table.loc[3, "semantic_scale"] == 0.0 and table.loc[3, "imbalance_scale"] == 0.0
    summary = imbalance_summary(table).set_index("quantity")
    assert summary.loc["S' (raw)", "max_over_min [ours]"] == UNDEFINED
    assert summary.loc["S", "max_over_min [ours]"] == UNDEFINED
    assert summary.loc["count N", "max_over_min [ours]"] == pytest.approx(2.0)
    assert not np.isinf(pd.to_numeric(summary["max_over_min [ours]"], errors="coerce")).any()
