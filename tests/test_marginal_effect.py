"""Tests of semscale_lib.studies.marginal_effect (Sec. 3.3, notebook 01): fit statistics, nested sample volumes,
the shape of S′(m), the verdict, the correlations, and the models trained on nested subsets."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semscale_lib.data import ImageArrays
from semscale_lib.studies import marginal_effect as me


# ---------------------------------------------------------------------------------------------------- statistics
def test_fit_stats_r_and_r2():
    x = np.arange(6.0)
    y = 2 * x + np.array([0.1, -0.1, 0.2, 0.0, -0.2, 0.1])
    result = me.fit_stats(x, y)
    assert result["defined"] and result["n"] == 6
    assert result["r"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert result["r2"] == pytest.approx(result["r"] ** 2)
    assert me.fit_stats(x, -y)["r"] < 0


def test_fit_stats_constant_or_short_is_undefined():
    assert not me.fit_stats([1, 2, 3], [5, 5, 5])["defined"]
    assert np.isnan(me.fit_stats([1, 1, 1], [1, 2, 3])["r"])
    assert not me.fit_stats([1, 2], [1, 2])["defined"]
    with pytest.raises(ValueError):
        me.fit_stats([1, 2, 3], [1, 2])


def test_concavity_detects_shrinking_increments():
    m = [10, 20, 50, 100, 200]
    concave = me.concavity(m, np.log(m))
    assert concave["concave"] and concave["fraction_shrinking"] == 1.0
    assert concave["increments"].shape == (4,)
    convex = me.concavity(m, np.square(m))
    assert not convex["concave"] and convex["fraction_shrinking"] == 0.0
    with pytest.raises(ValueError):
        me.concavity([1, 1, 2], [1, 2, 3])


def test_saturation_point():
    m = [10, 20, 50, 100, 200]
    assert me.saturation_point(m, [10, 50, 96, 99, 100], level=0.95) == 50
    assert me.saturation_point(m, [10, 50, 96, 99, 100], level=0.99) == 100
    assert me.saturation_point(m, [10, 20, 30, 40, 100], level=0.95) is None   # only the last m reaches it
    with pytest.raises(ValueError):
        me.saturation_point(m, [1, 2, 3, 4, 5], level=1.0)


# ------------------------------------------------------------------------------------------ sample volumes (Sec. 3.3)
def _toy_images(per_class: int = 40, classes: int = 3, seed: int = 0) -> ImageArrays:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(per_class * classes, 8, 8, 1), dtype=np.uint8)
    labels = np.repeat(np.arange(classes), per_class)
    return ImageArrays(images, labels, [f"c{i}" for i in range(classes)], "toy")


def test_nested_sample_volumes_shape_and_growth():
    data = _toy_images()
    volumes = me.nested_sample_volumes(data, [20, 5, 10], seed=0, size=8)
    assert list(volumes.columns) == ["m", "class", "name", "semantic_scale"]
    assert sorted(volumes["m"].unique()) == [5, 10, 20] and len(volumes) == 9
    # random images: every added sample adds volume
    for _, group in volumes.groupby("class"):
        assert np.all(np.diff(group.sort_values("m")["semantic_scale"].to_numpy()) > 0)
    totals = me.volume_totals(volumes)
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
    verdict = me.marginal_effect_verdict(volumes, accuracy, level=0.95, rise_tol=0.01)
    assert verdict["saturation_m"] == 200
    assert verdict["verdict"] == "held"
    assert verdict["gain_after_saturation"] == pytest.approx(0.002)
    assert verdict["classes_concave"] == 1.0


def test_marginal_effect_verdict_not_held_when_accuracy_keeps_rising():
    volumes = _volumes(M, SATURATING)
    accuracy = pd.DataFrame({"m": [20, 200, 500, 500], "top1": [0.5, 0.7, 0.78, 0.80], "seed": [0, 0, 0, 1]})
    verdict = me.marginal_effect_verdict(volumes, accuracy, level=0.95, rise_tol=0.01)
    assert verdict["verdict"] == "not held"
    assert verdict["gain_after_saturation"] == pytest.approx(0.79 - 0.7)   # mean over seeds at m = 500
    assert "still rises" in verdict["sentence"]


def test_marginal_effect_verdict_not_held_without_saturation_and_untestable_without_models():
    linear = _volumes(M, [np.array(M, float), 2 * np.array(M, float)])
    accuracy = pd.DataFrame({"m": [10, 500], "top1": [0.5, 0.6]})
    assert me.marginal_effect_verdict(linear, accuracy)["verdict"] == "not held"
    few_models = pd.DataFrame({"m": [10, 20], "top1": [0.5, 0.6]})
    assert me.marginal_effect_verdict(_volumes(M, SATURATING), few_models)["verdict"] == "not testable"


def test_marginal_effect_correlations_rows():
    volumes = _volumes(M, SATURATING)
    totals = me.volume_totals(volumes)
    accuracy = pd.DataFrame({"m": [10, 50, 200, 500], "top1": [0.3, 0.6, 0.7, 0.72]})
    features = pd.DataFrame({"m": [10, 50, 200, 500], "total": [1.0, 2.0, 2.5, 2.6]})
    table = me.marginal_effect_correlations(accuracy, totals, betas=(0.9, 0.999), feature_totals=features)
    assert list(table["predictor"]) == ["Σ S′ (pixels)", "m", "Σ S′ (features of its own model)",
                                        "E_m (β=0.9)", "E_m (β=0.999)"]
    assert table["r2"].between(0, 1).all()
    expected = np.corrcoef(totals.set_index("m").loc[[10, 50, 200, 500], "total"], accuracy["top1"])[0, 1]
    assert table.iloc[0]["r"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="no sample volume"):
        me.marginal_effect_correlations(pd.DataFrame({"m": [7], "top1": [0.1]}), totals)


# ------------------------------------------------------------------------------------------- training (slow: real)
# digits: 10 classes of 8×8 grey images; m = 5 and 10 per class → 50 and 100 training images, batch 25 → 2 and 4
# batches per epoch. With 1 epoch and min_steps = 4, m = 5 needs 2 epochs (4 steps), m = 10 keeps 1 (4 steps).
SUBSETS = dict(dataset="digits", model="resnet-tiny", epochs=1, batch_size=25, warmup_epochs=0, device="cpu")


@pytest.mark.slow
def test_train_subsets_is_deterministic_nested_and_reuses_finished_runs(isolated_splits):
    from semscale_lib.training import load_run, training_images

    first = me.train_subsets([5, 10], [3], isolated_splits / "a", min_steps=4, **SUBSETS)
    again = me.train_subsets([5, 10], [3], isolated_splits / "b", min_steps=4, **SUBSETS)
    assert list(first.columns) == ["m", "seed", "top1", "epochs", "steps", "feature_total", "seconds", "run_dir"]
    assert first["m"].tolist() == [5, 10] and (first["seed"] == 3).all()
    # determinism: same numbers from two folders
    pd.testing.assert_frame_equal(first[["m", "seed", "top1", "epochs", "steps", "feature_total"]],
                                  again[["m", "seed", "top1", "epochs", "steps", "feature_total"]], check_exact=True)
    # steps / epochs arithmetic: the small subset gets more epochs, every model at least min_steps steps
    assert first["epochs"].tolist() == [2, 1] and first["steps"].tolist() == [4, 4]
    for row in first.itertuples(index=False):
        per_epoch = math.ceil(row.m * 10 / SUBSETS["batch_size"])
        assert row.steps == row.epochs * per_epoch and row.steps >= 4
        assert row.epochs == max(SUBSETS["epochs"], math.ceil(4 / per_epoch))
        run = load_run(row.run_dir)
        assert run["config"]["train_counts"] == [row.m] * 10
        assert run["config"]["config"]["subset_per_class"] == row.m
        assert run["metrics"]["epoch"].tolist() == list(range(1, row.epochs + 1))
        assert 0 <= row.top1 <= 1 and row.top1 == run["metrics"]["top1"].iloc[-1]
        assert np.isfinite(row.feature_total)
        assert Path(row.run_dir).parent == isolated_splits / "a"
    # the subsets are nested: every training image of m = 5 is among those of m = 10
    small, large = (training_images(load_run(d)) for d in first["run_dir"])
    large_rows = {image.tobytes() for image in large.images}
    assert all(image.tobytes() in large_rows for image in small.images)
    # a second call into the same folder reuses the finished runs: nothing is retrained
    stamps = [(Path(d) / "metrics.csv").stat().st_mtime_ns for d in first["run_dir"]]
    reused = me.train_subsets([5, 10], [3], isolated_splits / "a", min_steps=4, **SUBSETS)
    assert [(Path(d) / "metrics.csv").stat().st_mtime_ns for d in first["run_dir"]] == stamps
    pd.testing.assert_frame_equal(reused.drop(columns="seconds"), first.drop(columns="seconds"), check_exact=True)
