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


def test_capped_sizes_stop_at_the_smallest_class():
    labels = np.repeat([0, 1, 2], [150, 140, 160])
    assert me.capped_sizes([200, 10, 5, 10, 140], labels) == [5, 10, 140]
    assert me.capped_sizes([5, 10, 1000], labels) == [5, 10, 140]       # the largest balanced subset is added
    assert me.capped_sizes([0, 5], labels) == [5, 140]                  # m < 1 is dropped
    with pytest.raises(ValueError, match="no sample"):
        me.capped_sizes([5], labels, num_classes=4)                     # class 3 is empty


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


T975_2DF = 4.302652729911275   # t quantile 0.975 on 2 df


def _training(top1_by_m):
    """One row per model: {m: [top1 of seed 0, 1, 2, ...]} → columns m, seed, top1."""
    return pd.DataFrame([{"m": m, "seed": seed, "top1": top1}
                         for m, values in top1_by_m.items() for seed, top1 in enumerate(values)])


def test_saturating_volumes_by_hand():
    # Σ S′ = 100 (1 − e^{−m/40}) + 80 (1 − e^{−m/30}); final (m = 500) ≈ 180.0; at m = 100 ≈ 168.9 (93.8 %),
    # at m = 200 ≈ 179.2 (99.6 %): saturated at 200 for level 0.95; increments shrink everywhere
    totals = me.volume_totals(_volumes(M, SATURATING))
    assert totals["total"].iloc[-1] == pytest.approx(100 * (1 - math.exp(-12.5)) + 80 * (1 - math.exp(-500 / 30)))
    assert me.saturation_point(totals["m"], totals["total"], 0.95) == 200
    assert me.concavity(totals["m"], totals["total"])["concave"]


def test_marginal_effect_verdict_held_when_accuracy_flattens():
    volumes = _volumes(M, SATURATING)
    # seeds 0, 1, 2; from m = 200 to m = 500 the gains are 0.002, 0.001, 0.003: mean 0.002, sd 0.001
    training = _training({20: [0.50, 0.52, 0.51], 200: [0.800, 0.810, 0.790], 500: [0.802, 0.811, 0.793]})
    verdict = me.marginal_effect_verdict(volumes, training, level=0.95, margin=0.01)
    record = verdict["record"]
    half = T975_2DF * 0.001 / math.sqrt(3)
    assert verdict["saturation_m"] == 200 and verdict["compared"] == (200, 500)
    assert record.kind == "negligible gain" and record.n == 3
    assert record.estimate == pytest.approx(0.002)
    assert (record.ci_low, record.ci_high) == pytest.approx((0.002 - half, 0.002 + half))   # [-0.0005, +0.0045]
    assert record.ci_high < 0.01
    assert verdict["verdict"] == record.verdict == "held"
    assert verdict["sentence"] == ("Σ S′ saturates at m = 200 (95% of its final value); top-1 from m = 200 to "
                                   "m = 500: mean paired gain +0.0020, 95 % CI [-0.0005, +0.0045], over n = 3 seeds, "
                                   "against a margin of 0.01: held")
    assert verdict["classes_concave"] == 1.0 and verdict["concave_total"] and verdict["fraction_shrinking"] == 1.0
    assert verdict["level"] == 0.95


def test_marginal_effect_verdict_contradicted_when_accuracy_keeps_rising():
    volumes = _volumes(M, SATURATING)
    # gains 0.05, 0.06, 0.05: mean 0.0533, CI ≈ [0.039, 0.068], wholly above the margin 0.01
    training = _training({20: [0.5, 0.5, 0.5], 200: [0.80, 0.81, 0.79], 500: [0.85, 0.87, 0.84]})
    verdict = me.marginal_effect_verdict(volumes, training, margin=0.01)
    sd = np.std([0.05, 0.06, 0.05], ddof=1)
    assert verdict["record"].estimate == pytest.approx(0.16 / 3)
    assert verdict["record"].ci_low == pytest.approx(0.16 / 3 - T975_2DF * sd / math.sqrt(3)) and \
        verdict["record"].ci_low > 0.01
    assert verdict["verdict"] == "contradicted" and verdict["compared"] == (200, 500)
    # a wider margin (10 points) calls the same gain negligible
    assert me.marginal_effect_verdict(volumes, training, margin=0.1)["verdict"] == "held"


def test_marginal_effect_verdict_compares_the_first_and_last_trained_m_after_saturation():
    volumes = _volumes(M, SATURATING)
    training = _training({100: [0.1, 0.1, 0.1], 300: [0.80, 0.81, 0.79], 400: [0.9, 0.9, 0.9],
                          500: [0.802, 0.811, 0.793]})
    verdict = me.marginal_effect_verdict(volumes, training)
    assert verdict["compared"] == (300, 500)                  # 100 < 200 (saturation) is not compared
    assert verdict["record"].estimate == pytest.approx(0.002) and verdict["verdict"] == "held"
    # only the seeds trained at both m are paired: a fourth seed at m = 300 alone is dropped
    extra = pd.concat([training, pd.DataFrame({"m": [300], "seed": [3], "top1": [0.2]})], ignore_index=True)
    assert me.marginal_effect_verdict(volumes, extra)["record"].n == 3


def test_marginal_effect_verdict_contradicted_without_saturation_or_concavity():
    training = _training({20: [0.5, 0.5, 0.5], 200: [0.80, 0.81, 0.79], 500: [0.802, 0.811, 0.793]})
    # linear Σ S′: increments constant (not growing), but only m = 500 reaches 95 % of the final value
    linear = _volumes(M, [np.array(M, float), 2 * np.array(M, float)])
    verdict = me.marginal_effect_verdict(linear, training)
    assert verdict["saturation_m"] is None and verdict["compared"] is None
    assert verdict["verdict"] == "contradicted"
    assert verdict["sentence"].startswith("Σ S′ does not reach 95% of its final value before the largest m: "
                                          "contradicted")
    # convex Σ S′: the increments grow at every step
    convex = _volumes(M, [np.square(np.array(M, float))])
    verdict = me.marginal_effect_verdict(convex, training)
    assert verdict["fraction_shrinking"] == 0.0 and verdict["verdict"] == "contradicted"
    assert "shrink at only 0% of the steps" in verdict["sentence"]
    # a looser concavity requirement lets the premise through to saturation
    assert "shrink at only" not in me.marginal_effect_verdict(convex, training, concave_fraction=0.0)["sentence"]


def test_marginal_effect_verdict_not_testable_with_one_trained_m_after_saturation():
    training = _training({20: [0.5, 0.5, 0.5], 100: [0.7, 0.7, 0.7], 200: [0.80, 0.81, 0.79]})
    verdict = me.marginal_effect_verdict(_volumes(M, SATURATING), training)
    assert verdict["saturation_m"] == 200 and verdict["compared"] is None
    assert verdict["verdict"] == "not testable" and verdict["record"].n == 0
    assert verdict["sentence"] == ("Σ S′ saturates at m = 200, but fewer than two sub-dataset sizes were trained at "
                                   "m ≥ 200: not testable")
    # two trained m after saturation but two seeds only: not testable (min_n = 3)
    two_seeds = _training({200: [0.80, 0.81], 500: [0.80, 0.81]})
    assert me.marginal_effect_verdict(_volumes(M, SATURATING), two_seeds)["verdict"] == "not testable"


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
# batches per epoch. steps = 6: m = 5 takes 3 full epochs, m = 10 takes 2 epochs, the second cut after 2 batches.
# Adam, so that the checkpoint's optimizer state counts the optimizer steps the model took.
STEPS = 6
SUBSETS = dict(dataset="digits", model="cnn-small", batch_size=25, warmup_epochs=0, device="cpu", optimizer="adam",
               lr=0.01, schedule="constant")


@pytest.mark.slow
def test_train_subsets_takes_exactly_steps_optimizer_steps_whatever_m(isolated_splits):
    import json

    import torch

    from semscale_lib.training import load_run, training_images

    first = me.train_subsets([5, 10], [3], isolated_splits / "a", steps=STEPS, **SUBSETS)
    assert list(first.columns) == ["m", "seed", "top1", "epochs", "steps", "feature_total", "seconds", "run_dir"]
    assert first["m"].tolist() == [5, 10] and (first["seed"] == 3).all()
    assert first["epochs"].tolist() == [3, 2] and first["steps"].tolist() == [STEPS, STEPS]
    for row in first.itertuples(index=False):
        per_epoch = math.ceil(row.m * 10 / SUBSETS["batch_size"])
        assert (row.epochs - 1) * per_epoch < STEPS <= row.epochs * per_epoch
        saved = json.loads((Path(row.run_dir) / "config.json").read_text())
        assert saved["config"]["max_steps"] == STEPS and saved["config"]["epochs"] == row.epochs
        assert saved["config"]["subset_per_class"] == row.m and saved["train_counts"] == [row.m] * 10
        # the optimizer's own count: every parameter was stepped exactly STEPS times
        state = torch.load(Path(row.run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
        assert state["epoch"] == row.epochs
        counts = {float(s["step"]) for s in state["optimizer"]["state"].values()}
        assert counts == {float(STEPS)}
        run = load_run(row.run_dir)
        assert run["metrics"]["epoch"].tolist() == list(range(1, row.epochs + 1))
        assert 0 <= row.top1 <= 1 and row.top1 == run["metrics"]["top1"].iloc[-1]
        assert np.isfinite(row.feature_total)
        assert Path(row.run_dir).parent == isolated_splits / "a"
    # without max_steps the same two epochs of m = 10 would take 2 · 4 = 8 steps: the cap did the cutting
    assert first["epochs"].iloc[1] * math.ceil(100 / 25) == 8 > STEPS
    # the subsets are nested: every training image of m = 5 is among those of m = 10
    small, large = (training_images(load_run(d)) for d in first["run_dir"])
    large_rows = {image.tobytes() for image in large.images}
    assert all(image.tobytes() in large_rows for image in small.images)
    # a second call into the same folder reuses the finished runs: nothing is retrained
    stamps = [(Path(d) / "metrics.csv").stat().st_mtime_ns for d in first["run_dir"]]
    reused = me.train_subsets([5, 10], [3], isolated_splits / "a", steps=STEPS, **SUBSETS)
    assert [(Path(d) / "metrics.csv").stat().st_mtime_ns for d in first["run_dir"]] == stamps
    pd.testing.assert_frame_equal(reused.drop(columns="seconds"), first.drop(columns="seconds"), check_exact=True)
    with pytest.raises(ValueError, match="steps"):
        me.train_subsets([5], [0], isolated_splits / "b", steps=0, **SUBSETS)
