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
    assert me.capped_sizes([5, 10, 1000], labels) == [5, 10, 140]       # capped at the largest balanced subset
    assert me.capped_sizes([0, 5], labels) == [5]                       # m < 1 is dropped
    assert me.capped_sizes([5, 10, 20], labels) == [5, 10, 20]          # sizes that fit: the whole class is not added
    with pytest.raises(ValueError, match="no size"):
        me.capped_sizes([0, -3], labels)
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


# The claim's two parts, in points, paired by seed. With SATURATING volumes m_s = 200; trained m = 20, 200, 500.
FLATTENS = {20: [0.50, 0.52, 0.51], 200: [0.800, 0.810, 0.790], 500: [0.802, 0.811, 0.793]}


def test_premise_on_the_data_alone():
    state = me.premise(_volumes(M, SATURATING), level=0.95)
    assert state == {"saturation_m": 200, "level": 0.95, "fraction_shrinking": 1.0, "concave_total": True,
                     "classes_concave": 1.0, "failed": None}
    linear = me.premise(_volumes(M, [np.array(M, float)]))
    assert linear["saturation_m"] is None
    assert linear["failed"] == "Σ S′ does not reach 95% of its final value before the largest m"
    convex = me.premise(_volumes(M, [np.square(np.array(M, float))]))
    assert convex["failed"] == "the increments of Σ S′ shrink at only 0% of the steps"
    assert me.premise(_volumes(M, [np.square(np.array(M, float))]), concave_fraction=0.0)["failed"] != \
        convex["failed"]


def test_design_sizes_add_the_saturation_point():
    assert me.design_sizes([500, 20, 100], 200) == [20, 100, 200, 500]
    assert me.design_sizes([20, 500], None) == [20, 500]
    assert me.design_sizes([20, 200, 500], 200) == [20, 200, 500]          # already trained: once
    assert me.design_sizes([20, 500], 20) == [20, 500]                       # not strictly inside: not added
    assert me.design_sizes([20, 500], 1000) == [20, 500]


def test_marginal_effect_verdict_both_parts_held_when_accuracy_rises_then_flattens():
    verdict = me.marginal_effect_verdict(_volumes(M, SATURATING), _training(FLATTENS), level=0.95)
    assert verdict["compared"] == (20, 200, 500) and verdict["premise"]["saturation_m"] == 200
    rise, flat = verdict["rise"], verdict["flat"]
    # rise: m = 20 → 200 gains 30, 29, 28 points: mean 29, sd 1, CI 29 ± t·1/√3
    half = T975_2DF / math.sqrt(3)
    assert rise.kind == "paired" and rise.n == 3 and rise.estimate == pytest.approx(29.0)
    assert (rise.ci_low, rise.ci_high) == pytest.approx((29 - half, 29 + half)) and rise.verdict == "held"
    # flat: 0.25 · (30, 29, 28) − (0.2, 0.1, 0.3) = 7.3, 7.15, 6.7: mean 7.05, sd √(0.195 / 2)
    sd = math.sqrt((0.25 ** 2 + 0.1 ** 2 + 0.35 ** 2) / 2)
    assert flat.estimate == pytest.approx(7.05) and flat.sd_diff == pytest.approx(sd)
    assert (flat.ci_low, flat.ci_high) == pytest.approx((7.05 - T975_2DF * sd / math.sqrt(3),
                                                         7.05 + T975_2DF * sd / math.sqrt(3)))
    assert flat.verdict == "held"
    assert verdict["sentence"] == (
        "Σ S′ saturates at m = 200 (95% of its final value). From m = 20 to 200 top-1 gains +29.00 points (95 % CI "
        "[+26.52, +31.48]): held; from m = 200 to 500 it gains +0.20 points, and 0.25 × the gain before minus the "
        "gain after is +7.05 ([+6.27, +7.83]): held")


def test_marginal_effect_flat_part_contradicted_when_accuracy_keeps_rising():
    volumes = _volumes(M, SATURATING)
    # before: 10, 11, 9 points; after: 25, 26, 25 points — far more than a quarter of the gain before
    training = _training({20: [0.5, 0.5, 0.5], 200: [0.60, 0.61, 0.59], 500: [0.85, 0.87, 0.84]})
    verdict = me.marginal_effect_verdict(volumes, training)
    diffs = 0.25 * np.array([10.0, 11.0, 9.0]) - np.array([25.0, 26.0, 25.0])
    assert verdict["rise"].verdict == "held" and verdict["rise"].estimate == pytest.approx(10.0)
    assert verdict["flat"].estimate == pytest.approx(diffs.mean())            # −22.83
    assert verdict["flat"].ci_high == pytest.approx(diffs.mean() + T975_2DF * diffs.std(ddof=1) / math.sqrt(3))
    assert verdict["flat"].ci_high < 0 and verdict["flat"].verdict == "contradicted"
    # the margin is relative to the gain before: at 3 × it, 30, 33, 27 − 25, 26, 25 = 5, 7, 2 decide nothing
    lenient = me.marginal_effect_verdict(volumes, training, relative_margin=3.0)["flat"]
    assert lenient.estimate == pytest.approx(14 / 3) and lenient.verdict == "inconclusive"


def test_marginal_effect_rise_contradicted_when_accuracy_falls_before_saturation():
    training = _training({20: [0.80, 0.81, 0.79], 200: [0.70, 0.70, 0.71], 500: [0.70, 0.70, 0.71]})
    verdict = me.marginal_effect_verdict(_volumes(M, SATURATING), training)
    assert verdict["rise"].estimate == pytest.approx((-10 - 11 - 8) / 3) and verdict["rise"].verdict == "contradicted"


def test_marginal_effect_verdict_compares_smallest_saturation_and_largest_m():
    training = _training({100: [0.1, 0.1, 0.1], 300: [0.80, 0.81, 0.79], 400: [0.9, 0.9, 0.9],
                          500: [0.802, 0.811, 0.793]})
    verdict = me.marginal_effect_verdict(_volumes(M, SATURATING), training)
    # m_s = 200 was not trained: the first trained m at or after it (300) stands in; 400 is not compared
    assert verdict["compared"] == (100, 300, 500)
    assert verdict["rise"].estimate == pytest.approx(70.0)
    assert verdict["flat"].estimate == pytest.approx(0.25 * 70 - 0.2)
    # only the seeds trained at all three m are paired: a fourth seed at m = 300 alone is dropped
    extra = pd.concat([training, pd.DataFrame({"m": [300], "seed": [3], "top1": [0.2]})], ignore_index=True)
    again = me.marginal_effect_verdict(_volumes(M, SATURATING), extra)
    assert again["rise"].n == again["flat"].n == 3


def test_a_failed_premise_is_not_testable_never_contradicted():
    # accuracy keeps rising (the flat part would be contradicted), but the premise fails: nothing is judged
    rising = _training({20: [0.5, 0.5, 0.5], 200: [0.60, 0.61, 0.59], 500: [0.85, 0.87, 0.84]})
    linear = _volumes(M, [np.array(M, float), 2 * np.array(M, float)])
    verdict = me.marginal_effect_verdict(linear, rising)
    reason = "Σ S′ does not reach 95% of its final value before the largest m"
    assert verdict["compared"] is None and verdict["premise"]["failed"] == reason
    for part in ("rise", "flat"):
        assert verdict[part].verdict == "not testable" and verdict[part].reason == reason
        assert verdict[part].sentence.startswith(f"Not judged — {reason}.")
    assert verdict["sentence"] == f"Not testable: {reason}"
    convex = me.marginal_effect_verdict(_volumes(M, [np.square(np.array(M, float))]), rising)
    assert {convex["rise"].verdict, convex["flat"].verdict} == {"not testable"}
    assert convex["rise"].reason == "the increments of Σ S′ shrink at only 0% of the steps"


def test_trained_sizes_that_do_not_bracket_the_saturation_point_are_not_testable():
    volumes = _volumes(M, SATURATING)
    for sizes in ({20: [0.5] * 3, 100: [0.7] * 3, 200: [0.8, 0.81, 0.79]},      # one m at or after m_s
                  {200: [0.8, 0.81, 0.79], 500: [0.8, 0.82, 0.8]}):             # none below m_s
        verdict = me.marginal_effect_verdict(volumes, _training(sizes))
        assert verdict["compared"] is None
        assert verdict["rise"].verdict == verdict["flat"].verdict == "not testable"
        assert verdict["rise"].reason == (f"the trained sizes {sorted(sizes)} do not bracket the saturation point "
                                          "m = 200: the claim needs one m below it and two at or above it")
    # three sizes but two seeds: paired_verdict's own minimum (3 seeds)
    two_seeds = _training({20: [0.5, 0.52], 200: [0.80, 0.81], 500: [0.80, 0.81]})
    verdict = me.marginal_effect_verdict(volumes, two_seeds)
    assert verdict["compared"] == (20, 200, 500) and verdict["rise"].verdict == "not testable"


def test_withheld_because_keeps_the_numbers_and_withholds_the_verdicts():
    why = "models not trained to a plateau"
    verdict = me.marginal_effect_verdict(_volumes(M, SATURATING), _training(FLATTENS), withheld_because=why)
    assert verdict["compared"] == (20, 200, 500)
    assert verdict["rise"].verdict == verdict["flat"].verdict == "not testable"
    assert verdict["rise"].reason == why and verdict["rise"].estimate == pytest.approx(29.0)
    assert verdict["flat"].estimate == pytest.approx(7.05)
    # a failed premise is named before the budget
    linear = _volumes(M, [np.array(M, float)])
    assert me.marginal_effect_verdict(linear, _training(FLATTENS), withheld_because=why)["rise"].reason != why


def test_marginal_effect_claims_two_records():
    verdict = me.marginal_effect_verdict(_volumes(M, SATURATING), _training(FLATTENS))
    claims = me.marginal_effect_claims(verdict, dataset="mnist", data="MNIST, nested subsets",
                                       fit={"train_top1": 0.99, "val_top1": 0.95}, figures=["f.png"])
    rise, flat = claims
    assert [c["claim_id"] for c in claims] == ["marginal-effect-rise", "marginal-effect-flat"]
    assert rise["verdict"] == "held" and rise["estimate"] == pytest.approx(29.0) and rise["section"] == "Sec. 3.3"
    assert flat["claim"] == "after Σ S′ saturates, accuracy gains less than 0.25 × what it gained before"
    assert flat["measured"] == verdict["flat"].sentence and flat["figures"] == ["f.png"]
    for claim in claims:
        numbers = claim["numbers"]
        assert numbers["saturation_m"] == 200 and numbers["compared"] == (20, 200, 500) and "failed" not in numbers
        assert numbers["train_top1"] == 0.99 and numbers["val_top1"] == 0.95 and numbers["kind"] == "paired"
    assert "0.5 ×" in me.marginal_effect_claims(verdict, dataset="d", data="d", relative_margin=0.5)[1]["claim"]


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
# digits: 10 classes of 8×8 grey images. val_fraction 0.2 carves ⌊0.2 m⌋ of each class out: m = 5 → 4 and m = 10 → 8
# training images per class, 40 and 80 in all, batch 25 → 2 and 4 batches per epoch. min_epochs 2, min_steps 6:
# m = 5 trains max(2, ⌈6 / 2⌉) = 3 epochs, m = 10 max(2, ⌈6 / 4⌉) = 2. Adam, so that the checkpoint's optimizer
# state counts the optimizer steps the model took.
SUBSETS = dict(dataset="digits", model="cnn-small", batch_size=25, warmup_epochs=0, device="cpu", optimizer="adam",
               lr=0.01, schedule="constant", val_fraction=0.2)


def test_subset_settings_epochs_by_hand():
    settings = me.subset_settings(5, 3, min_epochs=2, min_steps=6, **SUBSETS)
    assert settings == {**SUBSETS, "subset_per_class": 5, "seed": 3, "split_seed": 3, "epochs": 3}
    assert me.subset_settings(10, 3, min_epochs=2, min_steps=6, **SUBSETS)["epochs"] == 2
    assert me.subset_settings(10, 3, min_epochs=7, min_steps=6, **SUBSETS)["epochs"] == 7     # min_epochs wins
    assert me.subset_settings(10, 3, min_epochs=1, **SUBSETS)["epochs"] == 1                   # min_steps 0
    # val_fraction 0.1 of m = 5 carves ⌊0.5⌋ = 0: all 50 images train, 2 batches of 45 per epoch → ⌈10 / 2⌉ = 5
    # epochs (counting round(4.5) = 4 images per class would give 40 images, 1 batch, 10 epochs)
    narrow = me.subset_settings(5, 0, min_epochs=1, min_steps=10, **{**SUBSETS, "val_fraction": 0.1,
                                                                      "batch_size": 45})
    assert narrow["epochs"] == 5


@pytest.mark.slow
def test_train_subsets_trains_each_m_at_least_min_steps_with_its_own_seeded_subset(isolated_splits):
    import json

    import torch

    from semscale_lib.data import load_split
    from semscale_lib.studies.plateau import final_validation
    from semscale_lib.training import load_run
    from semscale_lib.training.runs import SUBSET_FILE

    first = me.train_subsets([5, 10], [3, 4], isolated_splits / "a", min_epochs=2, min_steps=6, **SUBSETS)
    assert list(first.columns) == ["m", "seed", "top1", "train_top1", "val_top1", "epochs", "feature_total",
                                   "seconds", "run_dir"]
    assert first["m"].tolist() == [5, 5, 10, 10] and first["seed"].tolist() == [3, 4, 3, 4]
    assert first["epochs"].tolist() == [3, 3, 2, 2]
    for row in first.itertuples(index=False):
        saved = json.loads((Path(row.run_dir) / "config.json").read_text())
        assert saved["config"]["epochs"] == row.epochs and saved["config"]["max_steps"] is None
        assert saved["config"]["subset_per_class"] == row.m and saved["config"]["split_seed"] == row.seed
        held = math.floor(0.2 * row.m)
        assert saved["train_counts"] == [row.m - held] * 10 and saved["val_counts"] == [held] * 10
        # the optimizer's own count: epochs × batches per epoch, at least min_steps
        per_epoch = math.ceil((row.m - held) * 10 / SUBSETS["batch_size"])
        state = torch.load(Path(row.run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
        assert {float(s["step"]) for s in state["optimizer"]["state"].values()} == {float(row.epochs * per_epoch)}
        assert row.epochs * per_epoch >= 6
        metrics = load_run(row.run_dir).metrics
        assert metrics["epoch"].tolist() == list(range(1, row.epochs + 1))
        assert 0 <= row.top1 <= 1 and row.top1 == metrics["top1"].iloc[-1]
        assert row.train_top1 == metrics["train_top1"].iloc[-1] and 0 <= row.train_top1 <= 1
        assert metrics["val_top1"].notna().all() and row.val_top1 == pytest.approx(final_validation(metrics))
        assert np.isfinite(row.feature_total) and Path(row.run_dir).parent == isolated_splits / "a"
    subsets = {(row.m, row.seed): set(load_split(Path(row.run_dir) / SUBSET_FILE)[0].tolist())
               for row in first.itertuples(index=False)}
    # the draw varies with the seed, and is nested within a seed
    assert subsets[(5, 3)] != subsets[(5, 4)]
    assert subsets[(5, 3)] < subsets[(10, 3)] and subsets[(5, 4)] < subsets[(10, 4)]
    # a second call into the same folder reuses the finished runs: nothing is retrained
    stamps = [(Path(d) / "metrics.csv").stat().st_mtime_ns for d in first["run_dir"]]
    reused = me.train_subsets([5, 10], [3, 4], isolated_splits / "a", min_epochs=2, min_steps=6, **SUBSETS)
    assert [(Path(d) / "metrics.csv").stat().st_mtime_ns for d in first["run_dir"]] == stamps
    pd.testing.assert_frame_equal(reused.drop(columns="seconds"), first.drop(columns="seconds"), check_exact=True)
