"""Tests of semscale_lib.studies.tracking (notebook 06, beyond the paper): predictors per class, correlations per
study, random-effects ranking, the DSB target chosen on training data, and the weighting arms and pairs."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from semscale_lib.imbalance import quantify_imbalance, with_alpha
from semscale_lib.studies import tracking as tr
from semscale_lib.verdicts import pooled_correlation_verdict


def _clusters(sizes, spreads, seed=0, dim=6):
    rng = np.random.default_rng(seed)
    features = np.concatenate([rng.normal(30.0 * c, s, size=(n, dim)) for c, (n, s) in enumerate(zip(sizes, spreads))])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return features, labels


def test_predictor_table_has_every_predictor_and_matches_its_definitions():
    features, labels = _clusters([30, 20, 25, 15], [0.5, 1.0, 1.5, 2.0])
    counts = np.array([300, 200, 250, 150])
    table = tr.predictor_table(features, labels, counts=counts)
    assert list(table.columns) == ["class", *tr.PREDICTORS]
    reference = quantify_imbalance(features, labels, alpha=1.0)
    np.testing.assert_array_equal(table["N"], counts)
    np.testing.assert_allclose(table["E_n"], (1 - 0.9999 ** counts) / (1 - 0.9999))
    np.testing.assert_allclose(table["S'"], reference["normalized_scale"])
    np.testing.assert_allclose(table["W"], reference["interclass"])
    np.testing.assert_allclose(table["S (alpha=2)"], with_alpha(reference, 2.0))
    # well separated clusters: every point's 5 nearest neighbours share its class
    np.testing.assert_allclose(table["knn_accuracy"], 1.0)


def test_study_correlations_pearson_spearman_and_undefined_constant_columns():
    predictors = pd.DataFrame({"class": range(5), "N": [10.0] * 5, "q": [1.0, 2.0, 3.0, 4.0, 6.0]})
    accuracy = np.array([0.1, 0.3, 0.2, 0.5, 0.9])
    table = tr.study_correlations(predictors, accuracy).set_index("predictor")
    assert not table.loc["N", "defined"] and math.isnan(table.loc["N", "pearson_r"])
    assert table.loc["q", "pearson_r"] == pytest.approx(np.corrcoef(predictors["q"], accuracy)[0, 1])
    # ranks of accuracy 1,3,2,4,5 against 1..5: ρ = 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/120 = 0.9
    assert table.loc["q", "spearman_rho"] == pytest.approx(0.9)
    assert table.loc["q", "n"] == 5


def _correlations(rows):
    return pd.DataFrame(rows, columns=["study", "predictor", "n", "pearson_r", "spearman_rho", "defined"])


def test_pooled_ranking_pools_defined_studies_and_sorts_by_r():
    rows = []
    for study in ("a", "b", "c"):
        rows += [(study, "good", 10, 0.8, 0.7, True), (study, "bad", 10, -0.5, -0.4, True)]
    rows += [("a", "N", 10, np.nan, np.nan, False), ("b", "N", 10, np.nan, np.nan, False),
             ("c", "N", 10, 0.3, 0.3, True)]
    ranking = tr.pooled_ranking(_correlations(rows))
    assert ranking["predictor"].tolist() == ["good", "bad", "N"]
    good = ranking.iloc[0]
    # identical r in every study: the pooled r is that r, no heterogeneity, CI = tanh(atanh r ± 1.96/√(3·7))
    assert good["r"] == pytest.approx(0.8) and good["tau2"] == pytest.approx(0) and good["i2"] == pytest.approx(0)
    half = 1.959963984540054 / math.sqrt(3 * 7)
    assert good["ci_low"] == pytest.approx(math.tanh(math.atanh(0.8) - half))
    assert ranking.iloc[2]["k"] == 1 and math.isnan(ranking.iloc[2]["r"])   # N: defined in one study only


def test_forest_table_ends_with_the_pooled_row():
    rows = [(s, "q", 10, r, r, True) for s, r in (("a", 0.2), ("b", 0.5), ("c", 0.8))]
    table = tr.forest_table(_correlations(rows), "q")
    assert table["study"].tolist() == ["a", "b", "c", "pooled"]
    assert table["weight"].iloc[:3].sum() == pytest.approx(1.0)
    assert 0.2 < table["r"].iloc[-1] < 0.8
    with pytest.raises(ValueError, match="≥ 2"):
        tr.forest_table(_correlations(rows[:1]), "q")


def test_the_dsb_target_is_the_best_positive_computable_predictor():
    selection = pd.DataFrame({"predictor": ["N", "S (alpha=2)", "knn_accuracy", "W"], "r": [0.9, 0.5, 0.6, 0.4]})
    assert tr.choose_dsb_target(selection) == ("knn_accuracy", "knn_accuracy")   # N cannot weight a DSB pool
    selection["r"] = [0.9, 0.7, 0.6, 0.4]
    assert tr.choose_dsb_target(selection) == ("S (alpha=2)", "S")
    selection["r"] = [0.9, -0.1, -0.2, -0.3]
    with pytest.raises(ValueError, match="positive"):
        tr.choose_dsb_target(selection)


def test_weighting_arms_and_every_counted_pair():
    methods = tr.weighting_methods("knn_accuracy")
    assert list(methods) == ["CE", "LDAM-DRW", "DSB-S", "DSB-S'", "DSB-W", "DSB-knn_accuracy"]
    assert methods["DSB-W"] == {"loss": "ce", "reweight": "dsb", "dsb_target": "W"}
    pairs = tr.weighting_pairs(methods)
    assert len(pairs) == 4 + 3 + 4
    assert ("DSB-knn_accuracy", "DSB-S") in pairs and ("DSB-S", "DSB-S") not in pairs
    # the best predictor is one of S, S′, W: no duplicate arm
    assert list(tr.weighting_methods("W")) == ["CE", "LDAM-DRW", "DSB-S", "DSB-S'", "DSB-W"]


def test_pooled_correlation_verdict_rule():
    held = pooled_correlation_verdict(0.5, 0.2, 0.7, k=4, i2=0.1, confidence=0.99)
    assert held.verdict == "held" and "99 %" in held.rule and "I² = 10 %" in held.sentence
    assert pooled_correlation_verdict(-0.5, -0.7, -0.2, k=4, i2=0.0).verdict == "contradicted"
    assert pooled_correlation_verdict(0.1, -0.2, 0.4, k=4, i2=0.0).verdict == "inconclusive"
    untestable = pooled_correlation_verdict(0.9, 0.5, 0.99, k=1, i2=0.0)
    assert untestable.verdict == "not testable" and math.isnan(untestable.estimate)
