"""Tests of semscale_lib.studies.correlation (Sec. 3.4.1, Table 1; notebook 02): per-class tables, averaging over
seeds, the Table 1 layout beside the paper's numbers, and the verdicts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from semscale_lib.imbalance import correlate
from semscale_lib.studies import correlation as co


def _clustered_features(counts, seed=0, spreads=None):
    rng = np.random.default_rng(seed)
    features, labels = [], []
    for c, n in enumerate(counts):
        spread = 1.0 if spreads is None else spreads[c]
        features.append(rng.normal(size=(n, 6)) * spread + 5 * np.eye(6)[c % 6] * (1 + c))
        labels.append(np.full(n, c))
    return np.concatenate(features), np.concatenate(labels)


def test_imbalance_table_uses_training_counts_and_correlate_reports_constant_counts_undefined():
    features, labels = _clustered_features([30] * 5, spreads=[0.5, 1, 1.5, 2, 2.5])
    accuracy = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    table = co.imbalance_table(features, labels, counts=[100] * 5, alpha=1.0, class_names=list("abcde"))
    corr = correlate(accuracy, table, n_resamples=200)
    assert (table["count"] == 100).all() and (table["vectors"] == 30).all()
    assert table["name"].tolist() == list("abcde")
    rows = corr.set_index("quantity")
    assert not rows.loc["N", "defined"] and not rows.loc["E_n", "defined"]
    assert rows.loc["S'", "defined"] and rows.loc["S'", "pearson_r"] > 0.8


def test_average_tables_recomputes_s():
    features, labels = _clustered_features([20, 20, 20])
    a = co.imbalance_table(features, labels, counts=[5, 4, 3], alpha=2.0)
    b = co.imbalance_table(features * 1.5, labels, counts=[5, 4, 3], alpha=2.0)
    mean = co.average_tables([a, b])
    assert mean["semantic_scale"].to_numpy() == pytest.approx((a["semantic_scale"] + b["semantic_scale"]) / 2)
    assert mean["imbalance_scale"].to_numpy() == pytest.approx(mean["normalized_scale"] * mean["interclass"])
    assert mean.attrs["alpha"] == 2.0
    with pytest.raises(ValueError):
        co.average_tables([])


def _corr(r_s, ci=(0.2, 0.9), r_n=0.5, n_defined=True, alpha=1.0, p=0.01):
    return pd.DataFrame([
        {"quantity": "N", "pearson_r": r_n if n_defined else np.nan, "pearson_p": 0.1, "ci_low": np.nan,
         "ci_high": np.nan, "defined": n_defined, "note": ""},
        {"quantity": f"S (alpha={alpha:g})", "pearson_r": r_s, "pearson_p": p, "ci_low": ci[0], "ci_high": ci[1],
         "defined": True, "note": ""}])


def test_correlation_verdicts_balanced_and_long_tailed():
    assert co.correlation_verdicts(_corr(0.7), balanced=True, alpha=1)["verdict"] == "held"
    assert co.correlation_verdicts(_corr(0.4, ci=(-0.2, 0.8)), balanced=True, alpha=1)["verdict"] == "not held"
    assert co.correlation_verdicts(_corr(-0.6, ci=(-0.9, -0.2)), balanced=True, alpha=1)["verdict"] == "not held"
    # an undefined CI falls back to the p-value
    assert co.correlation_verdicts(_corr(0.7, ci=(np.nan, np.nan), p=0.01), balanced=True,
                                   alpha=1)["verdict"] == "held"
    assert co.correlation_verdicts(_corr(0.9, r_n=0.8, alpha=2), balanced=False, alpha=2)["verdict"] == "held"
    decision = co.correlation_verdicts(_corr(0.7, r_n=0.8, alpha=2), balanced=False, alpha=2)
    assert decision["verdict"] == "not held" and "not above" in decision["sentence"]


def test_describe_r_states_sign_and_undefined():
    rows = _corr(-0.6, ci=(-0.9, -0.2))
    assert "undefined" in co.describe_r(rows.iloc[0].to_dict() | {"defined": False})
    text = co.describe_r(rows.iloc[1].to_dict())
    assert "negative" in text and "excludes 0" in text
    assert "not significant" in co.describe_r(_corr(0.3, ci=(-0.4, 0.8)).iloc[1].to_dict())


def test_table1_comparison_layout_and_reference():
    features, labels = _clustered_features([30] * 4, spreads=[0.5, 1, 1.5, 2])
    table = co.imbalance_table(features, labels, counts=[50] * 4, alpha=1.0)
    corr = correlate([0.2, 0.4, 0.5, 0.9], table, n_resamples=100)
    layout = co.table1_comparison({"pixels": corr}, balanced=True)
    assert list(layout.columns) == ["quantity", "pixels", "paper CIFAR-10 ResNet-18", "paper CIFAR-10 ResNet-34"]
    rows = layout.set_index("quantity")
    assert rows.loc["N", "pixels"] == "undefined" and rows.loc["N", "paper CIFAR-10 ResNet-18"] == "undefined"
    assert rows.loc["S (alpha=1)", "paper CIFAR-10 ResNet-18"] == "0.7850"
    lt = co.table1_comparison({"x": corr}, balanced=False).set_index("quantity")
    assert lt.loc["S (alpha=2)", "paper CIFAR-10-LT ResNet-34"] == "0.9884"


def test_table1_reference_matches_the_paper():
    assert co.TABLE1_REFERENCE[("CIFAR-10-LT", "ResNet-18")]["N"] == 0.8346
    assert co.TABLE1_REFERENCE[("CIFAR-10", "ResNet-34")]["S'"] == 0.5750
    assert np.isnan(co.TABLE1_REFERENCE[("CIFAR-10", "ResNet-18")]["E_n"])
    names = set(correlate(np.arange(4.0), co.imbalance_table(*_clustered_features([5] * 4), counts=[1, 2, 3, 4],
                                                             alpha=1.0), n_resamples=50)["quantity"])
    assert set(co.TABLE1_REFERENCE[("CIFAR-10", "ResNet-18")]) == names


def test_source_slugs_are_distinct_file_name_parts():
    assert [co.source_slug(s) for s in co.SOURCES] == ["pixels-training", "features-training", "features-test"]
    assert co.source_slug("pixels") == "pixels"
