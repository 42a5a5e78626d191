"""Tests of semscale_lib.studies.correlation (Sec. 3.4.1, Table 1; notebook 02): per-class tables, averaging over
seeds, the Table 1 layout beside the paper's numbers, the Table 1 verdicts and claims, and the balanced
settings."""
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
    corr = correlate(accuracy, table)
    assert (table["count"] == 100).all() and (table["vectors"] == 30).all()
    assert table["name"].tolist() == list("abcde")
    rows = corr.set_index("quantity")
    assert not rows.loc["N", "defined"] and not rows.loc["E_n", "defined"] and not rows.loc["log N", "defined"]
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


Z975 = 1.959963985  # standard-normal 97.5 % quantile, written out


def _table(scales, distances=None, counts=None):
    """A per-class table as ``imbalance_table`` returns it, from S'/max (``scales``), W' (``distances``, default 1)
    and training counts (default 100 each); S at α is then scales · log2(α + W')."""
    scales = np.asarray(scales, float)
    distances = np.ones_like(scales) if distances is None else np.asarray(distances, float)
    counts = np.full(len(scales), 100) if counts is None else np.asarray(counts)
    return pd.DataFrame({"class": np.arange(len(scales)), "count": counts, "vectors": counts,
                         "semantic_scale": scales, "normalized_scale": scales, "normalized_distance": distances,
                         "interclass": np.log2(1 + distances), "imbalance_scale": scales * np.log2(1 + distances)})


def _orthogonal(x, seed=0):
    """A unit vector, centred, orthogonal to centred ``x``: its Pearson r with x is exactly 0."""
    e = np.random.default_rng(seed).normal(size=len(x))
    xc = np.asarray(x, float) - np.mean(x)
    e -= e.mean()
    e -= (e @ xc) / (xc @ xc) * xc
    return e / np.linalg.norm(e)


ACCURACY = np.linspace(0.5, 0.95, 10)        # 10 classes


def test_table1_verdict_balanced_perfectly_increasing_s_is_held():
    # S = S'·log2(1 + 1) = S' rises linearly with accuracy: r = 1, Fisher CI (r clipped below 1) ≈ [1, 1] > 0
    table = _table(np.linspace(0.1, 1.0, 10))
    record = co.table1_verdict(ACCURACY, table, balanced=True, alpha=1.0)
    assert record.kind == "correlation" and record.n == 10
    assert record.estimate == pytest.approx(1.0)
    assert record.ci_low > 0.999 and record.verdict == "held"
    assert "r_min = 0.3" in record.rule


def test_table1_verdict_balanced_uses_s_at_alpha_with_fisher_ci():
    # W' varies widely and S' little, so S at α = 2 (what accuracy follows here) differs from S' and from S at α = 1;
    # the verdict is correlation_verdict(S(α), accuracy), its CI tanh(atanh r ± z/√(n − 3)) written out
    rng = np.random.default_rng(3)
    scales, distances = rng.uniform(0.8, 1.0, 10), rng.uniform(0.05, 1.0, 10)
    s = scales * np.log2(2.0 + distances)
    accuracy = s + 0.02 * rng.normal(size=10)
    record = co.table1_verdict(accuracy, _table(scales, distances), balanced=True, alpha=2.0)
    r = np.corrcoef(s, accuracy)[0, 1]
    half = Z975 / np.sqrt(10 - 3)
    assert record.estimate == pytest.approx(r) and r > 0.99
    assert abs(np.corrcoef(scales, accuracy)[0, 1] - r) > 0.2                          # not r(S', accuracy)
    assert abs(np.corrcoef(scales * np.log2(1 + distances), accuracy)[0, 1] - r) > 0.05   # not S at α = 1
    assert (record.ci_low, record.ci_high) == pytest.approx((np.tanh(np.arctanh(r) - half),
                                                             np.tanh(np.arctanh(r) + half)))
    assert record.verdict == "held"


def test_table1_verdict_balanced_constant_s_not_testable_and_falling_s_contradicted():
    constant = co.table1_verdict(ACCURACY, _table(np.full(10, 0.5)), balanced=True, alpha=1.0)
    assert constant.verdict == "not testable" and np.isnan(constant.estimate)
    assert "constant" in constant.sentence
    # S falling with accuracy, r = -1: the CI lies below r_min = 0.3
    falling = co.table1_verdict(ACCURACY, _table(np.linspace(1.0, 0.1, 10)), balanced=True, alpha=1.0)
    assert falling.estimate == pytest.approx(-1.0) and falling.verdict == "contradicted"


def test_table1_verdict_long_tailed_s_tracks_accuracy_and_n_does_not():
    counts = np.array([5000, 2775, 1540, 855, 475, 263, 146, 81, 45, 25])
    accuracy = 0.6 + 0.1 * _orthogonal(counts)                 # r(accuracy, N) = 0 exactly
    scales = accuracy - accuracy.min() + 0.1                     # S = S' (W' = 1, α = 1): r(accuracy, S) = 1
    record = co.table1_verdict(accuracy, _table(scales, counts=counts), balanced=False, alpha=1.0)
    assert record.kind == "dependent correlation" and record.n == 10
    assert record.r_ya == pytest.approx(1.0) and record.r_yb == pytest.approx(0.0, abs=1e-12)
    assert record.estimate == pytest.approx(1.0)
    assert record.ci_low > 0 and record.verdict == "held"
    # swap the roles: S unrelated to accuracy, N tracking it → contradicted
    tracking = 0.4 + 1e-4 * counts                                # r(accuracy, N) = 1
    swapped = co.table1_verdict(tracking, _table(0.5 + 0.1 * _orthogonal(counts), counts=counts), balanced=False,
                                alpha=1.0)
    assert swapped.estimate == pytest.approx(-1.0) and swapped.verdict == "contradicted"


def _study(accuracy, primary_table, other_table):
    return {"accuracy": accuracy, "tables": {co.PRIMARY_SOURCE: primary_table, co.PIXELS: other_table}}


def test_table1_claims_balanced_decides_on_the_primary_source_with_the_others_as_evidence():
    rising, constant = _table(np.linspace(0.1, 1.0, 10)), _table(np.full(10, 0.5))
    assert co.PRIMARY_SOURCE == "features (training set)" and co.PRIMARY_SOURCE in co.SOURCES
    claims = co.table1_claims(_study(ACCURACY, rising, constant), balanced=True, alpha=1.0, dataset="mnist",
                              data="MNIST, 5421 per class", figures=["a.png"])
    assert len(claims) == 1
    claim = claims[0]
    assert claim["claim_id"] == "table1-balanced" and claim["dataset"] == "mnist"
    assert claim["verdict"] == "held" and claim["section"] == "Sec. 3.4.1, Table 1"
    assert claim["data"] == f"MNIST, 5421 per class; primary source: {co.PRIMARY_SOURCE}"   # no count compared
    # the paper's r(acc, S α = 1) on CIFAR-10 with ResNet-18, also the effect the power rule is judged against
    assert claim["paper_value"] == 0.7850 and "0.7850" in claim["paper"]
    assert claim["numbers"]["paper_effect"] == 0.7850
    expected = co.table1_verdict(ACCURACY, rising, balanced=True, alpha=1.0, paper_effect=0.7850)
    assert claim["measured"] == expected.sentence
    assert claim["figures"] == ["a.png"]
    primary, other = claim["evidence"]
    assert set(primary) == {"source", "pearson", "ci_low", "ci_high", "verdict", "spearman S"}
    assert (primary["source"], primary["verdict"]) == (co.PRIMARY_SOURCE + " (primary)", "held")
    assert primary["pearson"] == pytest.approx(1.0) and primary["spearman S"] == pytest.approx(1.0)
    assert (other["source"], other["verdict"]) == (co.PIXELS, "not testable")
    assert np.isnan(other["spearman S"])                         # a constant S has no rank correlation
    # another primary decides differently; a primary that was not computed is refused
    other_primary = co.table1_claims(_study(ACCURACY, rising, constant), balanced=True, alpha=1.0, dataset="mnist",
                                     data="d", primary=co.PIXELS)
    assert other_primary[0]["verdict"] == "not testable"
    with pytest.raises(ValueError, match="primary source"):
        co.table1_claims(_study(ACCURACY, rising, constant), balanced=True, alpha=1.0, dataset="m", data="d",
                         primary=co.TEST_FEATURES)


LT_COUNTS = np.array([5000, 2775, 1540, 855, 475, 263, 146, 81, 45, 25])


def _unit(x):
    x = np.asarray(x, float) - np.mean(x)
    return x / np.linalg.norm(x)


def _log_n_world():
    """Accuracy with r = 0.8 to log N exactly, and S with r = 0.96 to accuracy (0.6 to log N): centred unit vectors
    L (log N) and e ⟂ L; accuracy = 0.8 L + 0.6 e, S = 0.6 L + 0.8 e (so r(acc, S) = 0.48 + 0.48)."""
    log_n = _unit(np.log2(LT_COUNTS))
    e = _orthogonal(log_n, seed=4)
    accuracy = 0.6 + 0.1 * (0.8 * log_n + 0.6 * e)
    scales = 1.0 + 0.1 * (0.6 * log_n + 0.8 * e)
    return accuracy, _table(scales, counts=LT_COUNTS)


def test_best_count_predictor_is_the_count_accuracy_follows_most_closely():
    effective = (1 - 0.9999 ** LT_COUNTS) / (1 - 0.9999)
    assert co.COUNT_PREDICTORS == ("N", "log N", "E_n")
    table = _table(np.ones(10), counts=LT_COUNTS)
    assert co.best_count_predictor(0.3 + 0.05 * np.log2(LT_COUNTS), table) == "log N"   # r(log N) = 1
    assert co.best_count_predictor(1e-4 * LT_COUNTS, table) == "N"                       # r(N) = 1
    assert co.best_count_predictor(1e-4 * effective, table) == "E_n"                     # r(E_n) = 1
    accuracy, table = _log_n_world()
    assert co.best_count_predictor(accuracy, table) == "log N"
    assert max(np.corrcoef(LT_COUNTS, accuracy)[0, 1], np.corrcoef(effective, accuracy)[0, 1]) < 0.8


def test_table1_claims_long_tailed_against_n_and_against_the_best_count():
    from scipy.stats import spearmanr

    accuracy, table = _log_n_world()
    claims = co.table1_claims(_study(accuracy, table, table), balanced=False, alpha=2.0, dataset="cifar10-lt",
                              data="toy")
    versus_n, versus_best = claims
    assert [c["claim_id"] for c in claims] == ["table1-lt", "table1-lt-counts"]
    assert versus_best["claim"].endswith("(here log N)")
    assert versus_n["data"] == f"toy; primary source: {co.PRIMARY_SOURCE}; compared with N"
    assert versus_best["data"] == f"toy; primary source: {co.PRIMARY_SOURCE}; compared with log N"
    # CIFAR-10-LT, ResNet-18: r(acc, S α=2) = 0.9553, r(acc, N) = 0.8346, r(acc, E_n) = 0.8664
    assert versus_n["paper_value"] == pytest.approx(0.9553 - 0.8346) and "S − N = +0.1207" in versus_n["paper"]
    assert versus_best["paper_value"] == pytest.approx(0.9553 - 0.8664)
    assert "S − E_n = +0.0889" in versus_best["paper"]
    # S at α = 2 is S' · log2(3) (W' = 1): the same r as S'. r(acc, S) = 0.96, r(acc, log N) = 0.8, r(S, log N) = 0.6
    numbers = versus_best["numbers"]
    assert numbers["kind"] == "dependent correlation"
    assert (numbers["r_ya"], numbers["r_yb"], numbers["r_ab"]) == pytest.approx((0.96, 0.8, 0.6))
    assert versus_best["estimate"] == pytest.approx(0.16)
    r_n = np.corrcoef(accuracy, LT_COUNTS)[0, 1]
    assert versus_n["estimate"] == pytest.approx(0.96 - r_n) and versus_n["numbers"]["r_yb"] == pytest.approx(r_n)
    # evidence: Pearson's difference with its CI, Spearman of S and of the count compared
    row_n, row_best = versus_n["evidence"][0], versus_best["evidence"][0]
    assert set(row_n) == {"source", "pearson", "ci_low", "ci_high", "verdict", "spearman S", "spearman N"}
    assert set(row_best) == {"source", "pearson", "ci_low", "ci_high", "verdict", "spearman S", "spearman log N"}
    assert row_best["pearson"] == pytest.approx(0.16) and row_best["ci_low"] == versus_best["ci_low"]
    assert row_n["spearman S"] == pytest.approx(spearmanr(table["semantic_scale"], accuracy)[0])
    # ranks do not change under log: Spearman of log N is Spearman of N
    assert row_best["spearman log N"] == pytest.approx(row_n["spearman N"])
    assert row_n["spearman N"] == pytest.approx(spearmanr(LT_COUNTS, accuracy)[0])


def test_table1_claims_are_not_judged_on_models_far_from_trained():
    accuracy, table = _log_n_world()
    results = pd.DataFrame({"method": ["CE", "CE"], "train_top1": [0.9, 0.8], "val_top1": [0.7, 0.6]})
    budget = {"epochs": 16, "doubled": 32, "gain": 3.0, "threshold": 1.0, "plateaued": False}
    claims = co.table1_claims(_study(accuracy, table, table), balanced=False, alpha=1.0, dataset="d", data="toy",
                              results=results, budget=budget)
    for claim in claims:
        assert claim["verdict"] == "not testable"
        assert claim["numbers"]["reason"].startswith("models not trained to a plateau: doubling the budget from 16 "
                                                     "to 32 epochs added +3.0 points")
        assert claim["numbers"]["train_top1"] == pytest.approx(0.85) and claim["numbers"]["val_top1"] == pytest.approx(0.65)
        assert claim["numbers"]["budget_gain"] == 3.0 and claim["numbers"]["plateaued"] is False
    # at the plateau the verdict stands
    ok = co.table1_claims(_study(accuracy, table, table), balanced=False, alpha=1.0, dataset="d", data="toy",
                          results=results, budget={**budget, "gain": 0.2, "plateaued": True})
    assert ok[1]["verdict"] != "not testable" and ok[1]["numbers"]["plateaued"] is True


def test_balanced_overrides_digits_cut_to_the_smallest_class():
    from semscale_lib.data import load_dataset

    counts = np.bincount(load_dataset("digits", train=True).labels)
    assert counts.min() < counts.max()                           # digits' classes are unequal
    assert co.balanced_overrides("digits") == {"dataset": "digits", "subset_per_class": int(counts.min())}
    assert co.balanced_overrides("digits")["subset_per_class"] == 131
    assert co.balanced_overrides("digits", per_class=2000)["subset_per_class"] == 131   # capped at the smallest


def test_balanced_overrides_equal_classes_keep_the_whole_set(monkeypatch):
    from semscale_lib.data import ImageArrays

    def fake_load(name, *, train=True, root=None, **_):
        assert train
        labels = np.repeat(np.arange(3), 4)
        return ImageArrays(np.zeros((12, 2, 2, 1), np.uint8), labels, ["a", "b", "c"], name)

    monkeypatch.setattr(co, "load_dataset", fake_load)
    assert co.balanced_overrides("fashion-mnist") == {"dataset": "fashion-mnist"}
    # per_class cuts every class to that many images; more than the smallest class keeps the (balanced) set
    assert co.balanced_overrides("fashion-mnist", per_class=3) == {"dataset": "fashion-mnist", "subset_per_class": 3}
    assert co.balanced_overrides("fashion-mnist", per_class=10) == {"dataset": "fashion-mnist"}
    for bad in (1, 2.5, "3", True):
        with pytest.raises(ValueError, match="per_class"):
            co.balanced_overrides("fashion-mnist", per_class=bad)


def test_table1_comparison_layout_and_reference():
    features, labels = _clustered_features([30] * 4, spreads=[0.5, 1, 1.5, 2])
    table = co.imbalance_table(features, labels, counts=[50] * 4, alpha=1.0)
    corr = correlate([0.2, 0.4, 0.5, 0.9], table)
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
                                                             alpha=1.0))["quantity"])
    # every quantity of correlate but our "log N", which the paper does not report
    assert "log N" in names
    for key in co.TABLE1_REFERENCE:
        assert set(co.TABLE1_REFERENCE[key]) == names - {"log N"}


def test_source_slugs_are_distinct_file_name_parts():
    assert [co.source_slug(s) for s in co.SOURCES] == ["pixels-training", "features-training", "features-test"]
    assert co.source_slug("pixels") == "pixels"


def test_balanced_and_long_tailed_settings_of_your_own_images(tmp_path):
    from image_trees import make_tree

    equal = make_tree(tmp_path / "equal", {"a": 10, "b": 10, "c": 10})
    folder = {"dataset": "imagefolder", "image_root": str(equal), "image_size": 16}
    assert co.balanced_overrides("imagefolder", image_root=equal, image_size=16) == folder   # 8 training images each
    # unequal classes (10, 5, 6 → 8, 4, 5 training images after the 20 % test split): cut to the smallest, 4
    unequal = make_tree(tmp_path / "unequal", {"b_cat": 5, "a_dog": 10, "c": 6})
    assert co.balanced_overrides("imagefolder", image_root=unequal, image_size=16) == {
        "dataset": "imagefolder", "image_root": str(unequal), "image_size": 16, "subset_per_class": 4}
    settings = co.setting_overrides("imagefolder", imbalance_factor=10.0, image_root=equal, image_size=16)
    assert settings == {"balanced": folder, "long-tailed": {"dataset": "imagefolder-lt", "imbalance_factor": 10.0,
                                                            "image_root": str(equal), "image_size": 16}}
    with pytest.raises(ValueError, match="image_root"):
        co.setting_overrides("imagefolder", imbalance_factor=10.0)
