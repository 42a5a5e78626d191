"""Tests of semscale_lib.experiments: the computations behind the notebooks (claims, verdicts, grids, report)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semscale_lib import experiments as ex
from semscale_lib.data import ImageArrays
from semscale_lib.imbalance import correlate


# ---------------------------------------------------------------------------------------------------- statistics
def test_fit_stats_r_and_r2():
    x = np.arange(6.0)
    y = 2 * x + np.array([0.1, -0.1, 0.2, 0.0, -0.2, 0.1])
    result = ex.fit_stats(x, y)
    assert result["defined"] and result["n"] == 6
    assert result["r"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert result["r2"] == pytest.approx(result["r"] ** 2)
    assert ex.fit_stats(x, -y)["r"] < 0


def test_fit_stats_constant_or_short_is_undefined():
    assert not ex.fit_stats([1, 2, 3], [5, 5, 5])["defined"]
    assert np.isnan(ex.fit_stats([1, 1, 1], [1, 2, 3])["r"])
    assert not ex.fit_stats([1, 2], [1, 2])["defined"]
    with pytest.raises(ValueError):
        ex.fit_stats([1, 2, 3], [1, 2])


def test_concavity_detects_shrinking_increments():
    m = [10, 20, 50, 100, 200]
    concave = ex.concavity(m, np.log(m))
    assert concave["concave"] and concave["fraction_shrinking"] == 1.0
    assert concave["increments"].shape == (4,)
    convex = ex.concavity(m, np.square(m))
    assert not convex["concave"] and convex["fraction_shrinking"] == 0.0
    with pytest.raises(ValueError):
        ex.concavity([1, 1, 2], [1, 2, 3])


def test_saturation_point():
    m = [10, 20, 50, 100, 200]
    assert ex.saturation_point(m, [10, 50, 96, 99, 100], level=0.95) == 50
    assert ex.saturation_point(m, [10, 50, 96, 99, 100], level=0.99) == 100
    assert ex.saturation_point(m, [10, 20, 30, 40, 100], level=0.95) is None   # only the last m reaches it
    with pytest.raises(ValueError):
        ex.saturation_point(m, [1, 2, 3, 4, 5], level=1.0)


# ------------------------------------------------------------------------------------------- marginal effect (§3)
def _toy_images(per_class: int = 40, classes: int = 3, seed: int = 0) -> ImageArrays:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(per_class * classes, 8, 8, 1), dtype=np.uint8)
    labels = np.repeat(np.arange(classes), per_class)
    return ImageArrays(images, labels, [f"c{i}" for i in range(classes)], "toy")


def test_nested_sample_volumes_shape_and_growth():
    data = _toy_images()
    volumes = ex.nested_sample_volumes(data, [20, 5, 10], seed=0, size=8)
    assert list(volumes.columns) == ["m", "class", "name", "semantic_scale"]
    assert sorted(volumes["m"].unique()) == [5, 10, 20] and len(volumes) == 9
    # random images: every added sample adds volume
    for _, group in volumes.groupby("class"):
        assert np.all(np.diff(group.sort_values("m")["semantic_scale"].to_numpy()) > 0)
    totals = ex.volume_totals(volumes)
    assert totals["total"].iloc[0] == pytest.approx(volumes[volumes["m"] == 5]["semantic_scale"].sum())
    assert np.isnan(totals["increment"].iloc[0])
    assert totals["increment"].iloc[1] == pytest.approx((totals["total"].iloc[1] - totals["total"].iloc[0]) / 5)


def _volumes(m, per_class_values):
    rows = [{"m": mi, "class": c, "name": str(c), "semantic_scale": v}
            for c, values in enumerate(per_class_values) for mi, v in zip(m, values)]
    return pd.DataFrame(rows)


M = [10, 20, 50, 100, 200, 500]
SATURATING = [100 * (1 - np.exp(-np.array(M) / 40.0)), 80 * (1 - np.exp(-np.array(M) / 30.0))]


def test_marginal_effect_verdict_held_when_accuracy_flattens():
    volumes = _volumes(M, SATURATING)
    accuracy = pd.DataFrame({"m": [20, 100, 200, 500], "top1": [0.5, 0.80, 0.803, 0.805]})
    verdict = ex.marginal_effect_verdict(volumes, accuracy, level=0.95, rise_tol=0.01)
    assert verdict["saturation_m"] == 200
    assert verdict["verdict"] == "held"
    assert verdict["gain_after_saturation"] == pytest.approx(0.002)
    assert verdict["classes_concave"] == 1.0


def test_marginal_effect_verdict_not_held_when_accuracy_keeps_rising():
    volumes = _volumes(M, SATURATING)
    accuracy = pd.DataFrame({"m": [20, 200, 500, 500], "top1": [0.5, 0.7, 0.78, 0.80], "seed": [0, 0, 0, 1]})
    verdict = ex.marginal_effect_verdict(volumes, accuracy, level=0.95, rise_tol=0.01)
    assert verdict["verdict"] == "not held"
    assert verdict["gain_after_saturation"] == pytest.approx(0.79 - 0.7)   # mean over seeds at m = 500
    assert "still rises" in verdict["sentence"]


def test_marginal_effect_verdict_not_held_without_saturation_and_untestable_without_models():
    linear = _volumes(M, [np.array(M, float), 2 * np.array(M, float)])
    accuracy = pd.DataFrame({"m": [10, 500], "top1": [0.5, 0.6]})
    assert ex.marginal_effect_verdict(linear, accuracy)["verdict"] == "not held"
    few_models = pd.DataFrame({"m": [10, 20], "top1": [0.5, 0.6]})
    assert ex.marginal_effect_verdict(_volumes(M, SATURATING), few_models)["verdict"] == "not testable"


def test_marginal_effect_correlations_rows():
    volumes = _volumes(M, SATURATING)
    totals = ex.volume_totals(volumes)
    accuracy = pd.DataFrame({"m": [10, 50, 200, 500], "top1": [0.3, 0.6, 0.7, 0.72]})
    features = pd.DataFrame({"m": [10, 50, 200, 500], "total": [1.0, 2.0, 2.5, 2.6]})
    table = ex.marginal_effect_correlations(accuracy, totals, betas=(0.9, 0.999), feature_totals=features)
    assert list(table["predictor"]) == ["Σ S′ (pixels)", "m", "Σ S′ (features of its own model)",
                                        "E_m (β=0.9)", "E_m (β=0.999)"]
    assert table["r2"].between(0, 1).all()
    expected = np.corrcoef(totals.set_index("m").loc[[10, 50, 200, 500], "total"], accuracy["top1"])[0, 1]
    assert table.iloc[0]["r"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="no sample volume"):
        ex.marginal_effect_correlations(pd.DataFrame({"m": [7], "top1": [0.1]}), totals)


# ----------------------------------------------------------------------------------------------- correlation (§4)
def _clustered_features(counts, seed=0, spreads=None):
    rng = np.random.default_rng(seed)
    features, labels = [], []
    for c, n in enumerate(counts):
        spread = 1.0 if spreads is None else spreads[c]
        features.append(rng.normal(size=(n, 6)) * spread + 5 * np.eye(6)[c % 6] * (1 + c))
        labels.append(np.full(n, c))
    return np.concatenate(features), np.concatenate(labels)


def test_correlation_study_uses_training_counts_and_reports_constant_counts_undefined():
    features, labels = _clustered_features([30] * 5, spreads=[0.5, 1, 1.5, 2, 2.5])
    accuracy = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    table, corr = ex.correlation_study(accuracy, features, labels, counts=[100] * 5, alpha=1.0,
                                       class_names=list("abcde"), n_resamples=200)
    assert (table["count"] == 100).all() and (table["vectors"] == 30).all()
    rows = corr.set_index("quantity")
    assert not rows.loc["N", "defined"] and not rows.loc["E_n", "defined"]
    assert rows.loc["S'", "defined"] and rows.loc["S'", "pearson_r"] > 0.8


def test_average_tables_recomputes_s():
    features, labels = _clustered_features([20, 20, 20])
    a = ex.imbalance_table(features, labels, counts=[5, 4, 3], alpha=2.0)
    b = ex.imbalance_table(features * 1.5, labels, counts=[5, 4, 3], alpha=2.0)
    mean = ex.average_tables([a, b])
    assert mean["semantic_scale"].to_numpy() == pytest.approx((a["semantic_scale"] + b["semantic_scale"]) / 2)
    assert mean["imbalance_scale"].to_numpy() == pytest.approx(mean["normalized_scale"] * mean["interclass"])
    assert mean.attrs["alpha"] == 2.0
    with pytest.raises(ValueError):
        ex.average_tables([])


def _corr(r_s, ci=(0.2, 0.9), r_n=0.5, n_defined=True, alpha=1.0, p=0.01):
    return pd.DataFrame([
        {"quantity": "N", "pearson_r": r_n if n_defined else np.nan, "pearson_p": 0.1, "ci_low": np.nan,
         "ci_high": np.nan, "defined": n_defined, "note": ""},
        {"quantity": f"S (alpha={alpha:g})", "pearson_r": r_s, "pearson_p": p, "ci_low": ci[0], "ci_high": ci[1],
         "defined": True, "note": ""}])


def test_correlation_verdicts_balanced_and_long_tailed():
    assert ex.correlation_verdicts(_corr(0.7), balanced=True, alpha=1)["verdict"] == "held"
    assert ex.correlation_verdicts(_corr(0.4, ci=(-0.2, 0.8)), balanced=True, alpha=1)["verdict"] == "not held"
    assert ex.correlation_verdicts(_corr(-0.6, ci=(-0.9, -0.2)), balanced=True, alpha=1)["verdict"] == "not held"
    # an undefined CI falls back to the p-value
    assert ex.correlation_verdicts(_corr(0.7, ci=(np.nan, np.nan), p=0.01), balanced=True,
                                   alpha=1)["verdict"] == "held"
    assert ex.correlation_verdicts(_corr(0.9, r_n=0.8, alpha=2), balanced=False, alpha=2)["verdict"] == "held"
    decision = ex.correlation_verdicts(_corr(0.7, r_n=0.8, alpha=2), balanced=False, alpha=2)
    assert decision["verdict"] == "not held" and "not above" in decision["sentence"]


def test_describe_r_states_sign_and_undefined():
    rows = _corr(-0.6, ci=(-0.9, -0.2))
    assert "undefined" in ex.describe_r(rows.iloc[0].to_dict() | {"defined": False})
    text = ex.describe_r(rows.iloc[1].to_dict())
    assert "negative" in text and "excludes 0" in text
    assert "not significant" in ex.describe_r(_corr(0.3, ci=(-0.4, 0.8)).iloc[1].to_dict())


def test_table1_comparison_layout_and_reference():
    features, labels = _clustered_features([30] * 4, spreads=[0.5, 1, 1.5, 2])
    _, corr = ex.correlation_study([0.2, 0.4, 0.5, 0.9], features, labels, counts=[50] * 4, alpha=1.0,
                                   n_resamples=100)
    table = ex.table1_comparison({"pixels": corr}, balanced=True)
    assert list(table.columns) == ["quantity", "pixels", "paper CIFAR-10 ResNet-18", "paper CIFAR-10 ResNet-34"]
    rows = table.set_index("quantity")
    assert rows.loc["N", "pixels"] == "undefined" and rows.loc["N", "paper CIFAR-10 ResNet-18"] == "undefined"
    assert rows.loc["S (alpha=1)", "paper CIFAR-10 ResNet-18"] == "0.7850"
    lt = ex.table1_comparison({"x": corr}, balanced=False).set_index("quantity")
    assert lt.loc["S (alpha=2)", "paper CIFAR-10-LT ResNet-34"] == "0.9884"


def test_table1_reference_matches_spec():
    assert ex.TABLE1_REFERENCE[("CIFAR-10-LT", "ResNet-18")]["N"] == 0.8346
    assert ex.TABLE1_REFERENCE[("CIFAR-10", "ResNet-34")]["S'"] == 0.5750
    assert np.isnan(ex.TABLE1_REFERENCE[("CIFAR-10", "ResNet-18")]["E_n"])
    names = set(correlate(np.arange(4.0), ex.imbalance_table(*_clustered_features([5] * 4), counts=[1, 2, 3, 4],
                                                             alpha=1.0), n_resamples=50)["quantity"])
    assert set(ex.TABLE1_REFERENCE[("CIFAR-10", "ResNet-18")]) == names


# --------------------------------------------------------------------------------------------- grids and pairs (§5)
def test_compare_pairs_is_paired_by_seed():
    results = pd.DataFrame({"method": ["A", "A", "B", "B", "C"], "seed": [0, 1, 0, 1, 0],
                            "top1": [0.60, 0.70, 0.55, 0.72, 0.9]})
    table = ex.compare_pairs(results, {"A": "B", "C": "B"}).set_index("method")
    assert table.loc["A", "diff"] == pytest.approx(((0.60 - 0.55) + (0.70 - 0.72)) / 2)
    assert table.loc["A", "sd_diff"] == pytest.approx(np.std([0.05, -0.02], ddof=1))
    assert table.loc["A", "verdict"] == "held" and table.loc["A", "n_seeds"] == 2
    assert table.loc["C", "n_seeds"] == 1 and np.isnan(table.loc["C", "sd_diff"])
    worse = ex.compare_pairs(results, {"B": "C"})
    assert worse["verdict"].iloc[0] == "not held"
    with pytest.raises(ValueError, match="no common seed"):
        ex.compare_pairs(results.assign(seed=[0, 1, 2, 3, 4]), {"A": "B"})


def test_source_slugs_are_distinct_file_name_parts():
    assert [ex.source_slug(s) for s in ex.SOURCES] == ["pixels-training", "features-training", "features-test"]
    assert ex.source_slug("pixels") == "pixels"


def test_pair_claims_state_each_pair_with_its_numbers():
    results = pd.DataFrame({"method": ["A", "A", "B", "B", "C"], "seed": [0, 1, 0, 1, 0],
                            "top1": [0.60, 0.70, 0.55, 0.72, 0.9]})
    pairs = ex.compare_pairs(results, {"A": "B", "C": "B"})
    claims, lines = ex.pair_claims(pairs, claim="{method} beats {baseline}", paper={"A": "A wins by 2"},
                                   data="toy", spec="§5")
    assert [c["claim"] for c in claims] == ["A beats B", "C beats B"]
    assert [c["paper"] for c in claims] == ["A wins by 2", "not reported for this loss"]
    assert all(c["verdict"] == "held" for c in claims)
    # A: B 63.50 % → A 65.00 % (+1.50 points, sd of (+5, -2) = 4.95); C: one seed, 55 → 90
    assert claims[0]["measured"] == "B 63.50 % → A 65.00 % (+1.50 points, sd over seeds 4.95)"
    assert claims[1]["measured"] == "B 55.00 % → C 90.00 % (+35.00 points, one seed)"
    assert claims[0]["numbers"]["diff"] == pytest.approx(0.015)
    assert lines[1] == "- **C vs B: claim held.** B 55.00 % → C 90.00 % (+35.00 points, one seed)."


def test_weights_history_long_form(tmp_path):
    pd.DataFrame({"epoch": [3, 3], "iteration": [10, 30], "S_0": [0.5, 0.6], "S_1": [1.0, 0.9],
                  "a_0": [1.33, 1.2], "a_1": [0.67, 0.8]}).to_csv(tmp_path / "weights.csv", index=False)
    history = ex.weights_history(tmp_path, ["cat", "dog"])
    assert list(history.columns) == ["epoch", "iteration", "class", "name", "S", "a"]
    assert len(history) == 4
    assert history[(history["iteration"] == 30) & (history["name"] == "dog")]["a"].iloc[0] == 0.8
    assert ex.weights_history(tmp_path / "missing").empty


def test_group_table_and_summary(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    pd.DataFrame({"class": [0, 1, 2], "train_count": [500, 50, 5], "accuracy": [0.9, 0.5, 0.1]}).to_csv(
        run / "per_class.csv", index=False)
    results = pd.DataFrame({"method": ["CE"], "seed": [0], "run_dir": [str(run)], "top1": [0.5]})
    groups = ex.group_table(results, many=100, few=20)
    assert groups.loc[0, ["many", "medium", "few"]].tolist() == [0.9, 0.5, 0.1]
    assert groups.loc[0, ["n_many", "n_medium", "n_few"]].tolist() == [1, 1, 1]
    summary = ex.summary_table(groups)
    assert summary.loc[0, "top1"] == "50.0 ± n/a"


# ------------------------------------------------------------------------------------------------ claims and report
def test_claims_roundtrip_and_report(tmp_path):
    a = tmp_path / "01_x"
    a.mkdir()
    pd.DataFrame({"m": [1, 2], "total": [0.5, np.nan]}).to_csv(a / "t.csv", index=False)
    (a / "fig.png").write_bytes(b"png")
    claim = ex.claim_record(claim="it works", spec="§3", paper="yes", measured="r = 0.9", data="toy",
                            verdict="held", rule="falsified if not", numbers={"r": np.float64(0.9), "x": np.nan})
    ex.write_claims(a, "01_x", [claim], parameters={"epochs": 2}, figures=["fig.png"],
                    tables=[{"title": "T", "file": "t.csv"}])
    saved = json.loads((a / ex.CLAIMS_FILE).read_text())
    assert saved["claims"][0]["numbers"] == {"r": 0.9, "x": None}
    report_dir = tmp_path / "05_report"
    report_dir.mkdir()
    ex.write_claims(report_dir, "05_report", [claim])
    claims = ex.read_claims(tmp_path, exclude=[report_dir])
    assert len(claims) == 1 and claims.loc[0, "folder"] == "01_x" and claims.loc[0, "verdict"] == "held"
    report = ex.build_report(tmp_path, exclude=[report_dir])
    assert "1 of 1 checks held" in report
    assert "| 1 | 0.500 |" in report and "undefined" in report
    assert "![fig.png](01_x/fig.png)" in report
    assert "0.8346" in report   # the paper's Table 1
    with pytest.raises(ValueError):
        ex.claim_record(claim="c", spec="s", paper="p", measured="m", data="d", verdict="maybe", rule="r")
    with pytest.raises(ValueError):
        ex.write_claims(a, "01_x", [], tables=[{"file": "t.csv"}])


def test_markdown_table_escapes_and_formats():
    text = ex.markdown_table(pd.DataFrame({"a|b": ["x|y"], "v": [1.23456], "n": [np.nan]}), decimals=2)
    assert text.splitlines()[0] == "| a|b | v | n |"
    assert "x\\|y" in text and "1.23" in text and "undefined" in text


def test_require_versions():
    installed = ex.require_versions({"numpy": "1.0", "pandas": "1.0"})
    assert set(installed) == {"numpy", "pandas"}
    with pytest.raises(AssertionError, match="older than"):
        ex.require_versions({"numpy": "999.0"})


# ------------------------------------------------------------------------------------------- training (slow: real)
@pytest.fixture
def isolated_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSCALE_SPLITS", str(tmp_path / "splits"))
    monkeypatch.setenv("SEMSCALE_RUNS", str(tmp_path / "runs"))
    return tmp_path


@pytest.mark.slow
def test_train_subset_is_deterministic_and_reports_features(isolated_splits):
    from semscale_lib.data import load_dataset, nested_balanced_indices
    from semscale_lib.train import make_config

    train, test = load_dataset("digits"), load_dataset("digits", train=False)
    indices = nested_balanced_indices(train.labels, [10], seed=0)[10]
    config = make_config("cpu-quick", dataset="digits", epochs=1, seed=3, device="cpu")
    first = ex.train_subset(config, train, test, indices, min_steps=4)
    again = ex.train_subset(config, train, test, indices, min_steps=4)
    assert first["steps"] >= 4 and first["epochs"] == 4   # 100 images, batch 128: one step per epoch
    assert first["top1"] == again["top1"]
    assert first["train_features"].shape == (100, 64) and first["per_class"].shape == (10,)


@pytest.mark.slow
def test_static_weighting_grid_passes_the_weights_to_training(isolated_splits):
    from semscale_lib.train import load_run

    base = {"dataset": "digits-lt", "imbalance_factor": 10, "epochs": 1, "device": "cpu"}
    results, weights = ex.static_weighting_grid(["ce"], [0], base, isolated_splits / "grid", preset="cpu-quick",
                                                alpha=2.0, normalize="mean1")
    assert list(results["method"]) == ["ce", "ce + S-weights"]
    assert weights["weight"].mean() == pytest.approx(1.0)
    weighted = load_run(results.loc[1, "run_dir"])["config"]["config"]
    assert weighted["reweight"] == "static"
    assert weighted["class_weights"] == pytest.approx(weights["weight"].tolist())
    # the CE model's own training embeddings give the weights: the larger S, the smaller a
    order = np.argsort(weights["imbalance_scale"].to_numpy())
    assert np.all(np.diff(weights["weight"].to_numpy()[order]) <= 1e-12)
    # rerun with reuse: the finished runs are loaded, not retrained
    metrics = Path(results.loc[0, "run_dir"]) / "metrics.csv"
    stamp = metrics.stat().st_mtime_ns
    again = ex.run_methods({"ce": {"loss": "ce", "reweight": "none"}}, [0], base, isolated_splits / "grid",
                           preset="cpu-quick", reuse=True)
    assert again.loc[0, "top1"] == results.loc[0, "top1"] and metrics.stat().st_mtime_ns == stamp


def test_static_reweighting_option_of_the_trainer():
    """The trainer's reweight="static" (added for notebook 03) uses the given class weights in every epoch."""
    from semscale_lib.train import class_weights_for_epoch, make_config

    config = make_config("cpu-quick", dataset="digits-lt", reweight="static", class_weights=[0.5, 1.5] * 5)
    for epoch in (1, config.epochs):
        weights = class_weights_for_epoch(config, np.ones(10), epoch)
        assert weights.tolist() == [0.5, 1.5] * 5
    with pytest.raises(ValueError, match="class_weights"):
        make_config("cpu-quick", dataset="digits-lt", reweight="static")
    with pytest.raises(ValueError, match="class_weights"):
        make_config("cpu-quick", dataset="digits-lt", reweight="static", class_weights=[1.0, -1.0])


def test_thumbnail_shrinks_wide_figures(tmp_path):
    from PIL import Image

    Image.new("RGB", (1600, 400), "white").save(tmp_path / "f.png")
    data = ex.thumbnail(tmp_path / "f.png", width=400)
    import io
    with Image.open(io.BytesIO(data)) as small:
        assert small.format == "JPEG" and small.size == (400, 100)
