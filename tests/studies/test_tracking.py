"""Tests of semscale_lib.studies.tracking (notebook 06, beyond the paper): predictors per class, correlations per
study, random-effects ranking, the DSB target chosen on training data, and the weighting arms and pairs."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from semscale_lib.imbalance import quantify_imbalance, with_alpha
from semscale_lib.studies import tracking as tr
from semscale_lib.studies.tolerance import CheckedBlock
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
    return pd.DataFrame(rows, columns=["study", "dataset", "predictor", "n", "pearson_r", "spearman_rho", "defined"])


T975_2DF = 4.302652729911275   # t quantile 0.975 on 2 df


def test_pooled_ranking_pools_by_dataset_with_hartung_knapp_and_sorts_by_r():
    # four studies on three datasets: d1 holds two (balanced and long-tailed, say), d2 and d3 one each
    studies = (("a1", "d1"), ("a2", "d1"), ("b", "d2"), ("c", "d3"))
    rows = []
    for study, dataset in studies:
        rows += [(study, dataset, "good", 10, 0.8, 0.7, True), (study, dataset, "bad", 10, -0.5, -0.4, True)]
    rows += [("a1", "d1", "N", 10, 0.3, 0.3, True), ("a2", "d1", "N", 10, 0.4, 0.4, True),
             ("b", "d2", "N", 10, np.nan, np.nan, False), ("c", "d3", "N", 10, np.nan, np.nan, False)]
    ranking = tr.pooled_ranking(_correlations(rows))
    assert list(ranking.columns) == ["predictor", "k", "studies", "r", "ci_low", "ci_high", "se_z", "tau2", "i2",
                                     "q_p"]
    # N (one dataset: its studies' mean z, 0.35) ranks between good (0.8) and bad (−0.5)
    assert ranking["predictor"].tolist() == ["good", "N", "bad"]
    good = ranking.iloc[0]
    # k counts datasets, not studies: d1's two studies are combined first (mean z, the mean of their SEs)
    assert (good["k"], good["studies"]) == (3, 4)
    # identical r everywhere: each dataset's z = atanh 0.8 with variance 1/7; no heterogeneity; Hartung–Knapp
    # se = √(1 / (3·7)) (its q = 0 is raised to 1), CI on t with 2 df
    se = 1 / math.sqrt(3 * 7)
    assert good["r"] == pytest.approx(0.8) and good["tau2"] == pytest.approx(0) and good["i2"] == pytest.approx(0)
    assert good["se_z"] == pytest.approx(se)
    assert (good["ci_low"], good["ci_high"]) == pytest.approx((math.tanh(math.atanh(0.8) - T975_2DF * se),
                                                               math.tanh(math.atanh(0.8) + T975_2DF * se)))
    # N: defined in two studies, but both on d1 — one dataset: the back-transformed mean of their Fisher z, and
    # no interval (nothing independent to pool)
    n_row = ranking.iloc[1]
    assert (n_row["k"], n_row["studies"]) == (1, 2)
    assert n_row["r"] == pytest.approx(math.tanh((math.atanh(0.3) + math.atanh(0.4)) / 2))
    assert all(math.isnan(n_row[c]) for c in ("ci_low", "ci_high", "se_z", "tau2", "i2", "q_p"))
    # a predictor defined nowhere has no estimate at all and sorts last
    nowhere = tr.pooled_ranking(_correlations(rows + [("a1", "d1", "E_n", 10, np.nan, np.nan, False)]))
    assert nowhere["predictor"].iloc[-1] == "E_n" and nowhere["k"].iloc[-1] == 0 and math.isnan(nowhere["r"].iloc[-1])


def test_forest_table_ends_with_the_pooled_row():
    rows = [("a1", "d1", "q", 10, 0.2, 0.2, True), ("a2", "d1", "q", 10, 0.5, 0.5, True),
            ("b", "d2", "q", 10, 0.8, 0.8, True)]
    table = tr.forest_table(_correlations(rows), "q")
    assert list(table.columns) == ["study", "r", "ci_low", "ci_high", "weight"]
    assert table["study"].tolist() == ["a1", "a2", "b", "pooled"]
    # two datasets of equal variance (1/7) weigh half each; d1's half is shared by its two studies
    assert table["weight"].iloc[:3].tolist() == pytest.approx([0.25, 0.25, 0.5])
    # equal weights: the pooled z is the mean of the datasets' z, d1's z the mean of its studies'
    d1 = (math.atanh(0.2) + math.atanh(0.5)) / 2
    assert table["r"].iloc[-1] == pytest.approx(math.tanh((d1 + math.atanh(0.8)) / 2))
    with pytest.raises(ValueError, match="≥ 2"):
        tr.forest_table(_correlations(rows[:2]), "q")            # two studies, one dataset


def test_ranking_claims_pool_across_datasets_with_studies_as_evidence():
    rows = [("a1", "d1", "q", 10, 0.8, 0.7, True), ("b", "d2", "q", 10, 0.8, 0.75, True),
            ("c", "d3", "q", 10, 0.8, 0.6, True), ("a1", "d1", "N", 10, np.nan, np.nan, False),
            ("b", "d2", "N", 10, 0.3, 0.3, True), ("c", "d3", "N", 10, np.nan, np.nan, False)]
    correlations = _correlations(rows)
    claims = tr.ranking_claims(tr.pooled_ranking(correlations), correlations, confidence=0.95, data="toy")
    q, n = claims
    assert q["claim_id"] == "tracks-q" and q["scope"] == "beyond" and q["dataset"] == "pooled"
    assert q["claim"].startswith("per-class accuracy rises with q across datasets") and "models" not in q["claim"]
    assert q["numbers"]["interval"] == "hk" and q["numbers"]["n"] == 3 and q["numbers"]["df"] == 2
    assert q["numbers"]["se_z"] == pytest.approx(1 / math.sqrt(21))
    assert q["evidence"] == [{"study": "a1", "pearson": 0.8, "spearman": 0.7, "defined": True},
                             {"study": "b", "pearson": 0.8, "spearman": 0.75, "defined": True},
                             {"study": "c", "pearson": 0.8, "spearman": 0.6, "defined": True}]
    # N on one dataset only: no interval, not testable; its undefined studies are evidence, not verdicts
    assert n["verdict"] == "not testable" and [e["defined"] for e in n["evidence"]] == [False, True, False]
    assert all("verdict" not in e for e in n["evidence"])


def test_the_dsb_target_is_the_best_positive_computable_predictor():
    selection = pd.DataFrame({"predictor": ["N", "S (alpha=2)", "knn_accuracy", "W"], "r": [0.9, 0.5, 0.6, 0.4]})
    assert tr.choose_dsb_target(selection) == ("knn_accuracy", "knn_accuracy")   # N cannot weight a DSB pool
    selection["r"] = [0.9, 0.7, 0.6, 0.4]
    assert tr.choose_dsb_target(selection) == ("S (alpha=2)", "S")
    selection["r"] = [0.9, -0.1, -0.2, -0.3]
    assert tr.choose_dsb_target(selection) == (None, None)
    selection["r"] = [np.nan, np.nan, np.nan, np.nan]        # training accuracy flat at 100 %: every r undefined
    assert tr.choose_dsb_target(selection) == (None, None)


def test_without_a_chosen_target_the_arms_are_the_papers_three():
    assert list(tr.weighting_methods(None)) == ["CE", "LDAM-DRW", "DSB-S", "DSB-S'", "DSB-W"]
    assert list(tr.weighting_methods("W")) == ["CE", "LDAM-DRW", "DSB-S", "DSB-S'", "DSB-W"]
    assert list(tr.weighting_methods("knn_accuracy"))[-1] == "DSB-knn_accuracy"


def _numbers() -> dict:
    """The fields a checked block reads from a claim record."""
    return {"dataset": "digits", "estimate": 0.5, "ci_low": -1.0, "ci_high": 2.0, "verdict": "inconclusive",
            "tolerance": {"estimate": 1.0, "bound": 2.0}, "edge": None}


def test_the_chosen_arm_is_unchecked_unless_it_is_one_of_the_papers():
    ids = ["tracks-W", "weights-DSB-S-vs-CE", "weights-DSB-knn_accuracy-vs-CE", "weights-DSB-knn_accuracy-vs-DSB-S",
           "weights-DSB-W-vs-LDAM-DRW", "weights-DSB-knn_accuracy-vs-LDAM-DRW"]
    claims = [{"claim_id": i} for i in ids]
    marked = tr.chosen_arm_unchecked(claims, "knn_accuracy")
    assert [c.get("checked", True) for c in marked] == [True, True, False, False, True, False]
    assert "checked" not in claims[2]                                     # copies: the input is left alone
    assert tr.chosen_arm_unchecked(claims, "W") == claims and tr.chosen_arm_unchecked(claims, None) == claims
    block = repr(CheckedBlock().claims([{**c, **_numbers()} for c in marked]))
    assert "knn_accuracy" not in block and "weights-DSB-S-vs-CE" in block and "tracks-W" in block


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
