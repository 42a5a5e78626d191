"""Were the models trained to their plateau? (semscale_lib.studies.plateau and verdicts.withheld): the final
validation top-1, a run's summary, the budget check (hand-made runs and a tiny real one), its threshold, and what a
study does with it."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semscale_lib.studies import plateau as pl
from semscale_lib.verdicts import correlation_verdict, paired_verdict, withheld


# ------------------------------------------------------------------------------------------------ run numbers
def test_final_validation_is_the_mean_of_the_last_three_epochs():
    assert pl.LAST_EPOCHS == 3
    assert pl.final_validation(pd.DataFrame({"val_top1": [0.5, 0.6, 0.7, 0.8, 0.9]})) == pytest.approx(0.8)
    assert pl.final_validation(pd.DataFrame({"val_top1": [0.5, 0.7]})) == pytest.approx(0.6)   # fewer epochs: all
    assert math.isnan(pl.final_validation(pd.DataFrame({"val_top1": [0.5, np.nan, 0.7]})))
    assert math.isnan(pl.final_validation(pd.DataFrame({"top1": [0.5]})))                      # no validation split
    assert math.isnan(pl.final_validation(pd.DataFrame({"val_top1": []})))


def test_run_summary_reads_the_last_epochs_train_top1():
    metrics = pd.DataFrame({"epoch": [1, 2, 3, 4], "val_top1": [0.4, 0.6, 0.7, 0.8],
                            "train_top1": [np.nan, np.nan, np.nan, 0.95]})
    assert pl.run_summary(metrics) == pytest.approx({"train_top1": 0.95, "val_top1": 0.7})
    bare = pl.run_summary(pd.DataFrame({"epoch": [1], "top1": [0.5]}))        # a run trained by older code
    assert math.isnan(bare["train_top1"]) and math.isnan(bare["val_top1"])


def test_fit_numbers_average_the_named_methods_and_carry_the_budget():
    results = pd.DataFrame({"method": ["CE", "CE", "DSB", "DSB"], "train_top1": [0.9, 0.8, 0.7, 0.6],
                            "val_top1": [0.6, 0.5, 0.4, 0.3]})
    assert pl.fit_numbers(results) == pytest.approx({"train_top1": 0.75, "val_top1": 0.45})
    assert pl.fit_numbers(results, methods=["CE"]) == pytest.approx({"train_top1": 0.85, "val_top1": 0.55})
    check = {"gain": 0.3, "plateaued": True, "epochs": 16}
    assert pl.fit_numbers(results, check, ["DSB"]) == pytest.approx(
        {"train_top1": 0.65, "val_top1": 0.35, "budget_gain": 0.3, "plateaued": True})


CHECKS = {
    "short": {"epochs": 16, "doubled": 32, "gain": 2.54, "threshold": 1.0, "plateaued": False},
    "ok": {"epochs": 16, "doubled": 32, "gain": 0.44, "threshold": 2.5, "plateaued": True},
    "unmeasured": {"epochs": 8, "doubled": 16, "gain": float("nan"), "threshold": float("nan"), "plateaued": None},
}


def test_far_from_trained_only_when_the_check_says_not_plateaued():
    assert pl.far_from_trained(CHECKS["short"]) == (
        "models not trained to a plateau: doubling the budget from 16 to 32 epochs added +2.5 points of validation "
        "top-1 (a plateau adds < 1.0)")
    for check in (CHECKS["ok"], CHECKS["unmeasured"], None, {}):
        assert pl.far_from_trained(check) is None


def test_budget_text():
    assert pl.budget_text(CHECKS["short"]) == ("16 → 32 epochs adds +2.5 points of validation top-1 (threshold "
                                               "1.0): NOT at the plateau: its claims are not judged")
    assert pl.budget_text(CHECKS["ok"]) == ("16 → 32 epochs adds +0.4 points of validation top-1 (threshold 2.5): "
                                            "at the plateau")
    assert pl.budget_text(CHECKS["unmeasured"]) == ("8 epochs; the plateau is not measured (no validation images), "
                                                    "so the claims are judged without that check")


# ------------------------------------------------------------------------------- budget check, hand-made runs
def _fake_run_methods(tmp_path, val_top1, val_counts):
    """A stand-in for reweighting.run_methods: one run per call, its final val_top1 taken from ``val_top1`` by
    epochs, its config.json holding ``val_counts``; records the calls."""
    calls = []

    def run_methods(methods, seeds, base, runs_dir, *, preset=None, progress=False):
        (name, method), = methods.items()
        calls.append((name, dict(method), list(seeds), dict(base)))
        run = tmp_path / f"{name}-{base['epochs']}"
        run.mkdir(exist_ok=True)
        (run / "config.json").write_text(json.dumps({"val_counts": val_counts}))
        return pd.DataFrame({"method": [name], "seed": [seeds[0]], "run_dir": [str(run)],
                             "val_top1": [val_top1[base["epochs"]]]})
    return run_methods, calls


BASE = {"dataset": "digits-lt", "imbalance_factor": 10, "epochs": 2, "device": "cpu", "val_fraction": 0.2}


@pytest.mark.parametrize("val_counts,threshold", [
    ([20] * 10, 1.0),              # 200 images: 2 images are 1 point, so the 1-point floor rules
    ([5] * 10, 4.0),               # 50 images: 2 images are 100 · 2 / 50 = 4 points
    ([0, 1, 2, 3, 4], 20.0),       # 10 images: 20 points
])
def test_budget_check_threshold_by_hand(monkeypatch, tmp_path, val_counts, threshold):
    from semscale_lib.studies import reweighting

    fake, calls = _fake_run_methods(tmp_path, {2: 0.80, 4: 0.825}, val_counts)
    monkeypatch.setattr(reweighting, "run_methods", fake)
    check = pl.budget_check({"loss": "ce"}, 3, BASE, tmp_path / "runs")
    # E and 2E epochs, everything else equal
    assert [(c[0], c[3]["epochs"]) for c in calls] == [("budget", 2), ("doubled budget", 4)]
    assert all(c[1] == {"loss": "ce"} and c[2] == [3] for c in calls)
    assert calls[1][3] == {**BASE, "epochs": 4}
    assert check["gain"] == pytest.approx(2.5) and check["threshold"] == pytest.approx(threshold)
    assert (check["epochs"], check["doubled"]) == (2, 4)
    assert (check["val_top1"], check["val_top1_doubled"]) == (0.80, 0.825)
    assert check["plateaued"] is (2.5 < threshold)


@pytest.mark.parametrize("val_counts", [None, [], [0] * 10])
def test_budget_check_without_validation_images_does_not_double(monkeypatch, tmp_path, val_counts):
    """Classes too small to give a validation image (or a run that recorded none): the first run is the study's
    own, but nothing measures the plateau, so the doubled run is not trained."""
    from semscale_lib.studies import reweighting

    fake, calls = _fake_run_methods(tmp_path, {2: 0.80, 4: 0.825}, val_counts)
    monkeypatch.setattr(reweighting, "run_methods", fake)
    check = pl.budget_check({"loss": "ce"}, 3, BASE, tmp_path / "runs")
    assert [c[0] for c in calls] == ["budget"]
    assert check["plateaued"] is None and math.isnan(check["gain"]) and math.isnan(check["threshold"])
    assert (check["epochs"], check["doubled"]) == (2, 4) and pl.far_from_trained(check) is None


def test_budget_check_without_a_validation_split_trains_nothing(tmp_path, isolated_splits):
    runs = tmp_path / "no-validation"
    for base, preset in (({**BASE, "val_fraction": 0.0}, "cpu-quick"),     # the preset's 0.1 overridden
                         ({k: v for k, v in BASE.items() if k != "val_fraction"}, None)):   # the library's 0
        check = pl.budget_check({"loss": "ce"}, 0, base, runs, preset=preset)
        assert check["plateaued"] is None and math.isnan(check["gain"]) and math.isnan(check["val_top1"])
        assert (check["epochs"], check["doubled"]) == (2, 4)
        assert pl.far_from_trained(check) is None
    assert not runs.exists()                                                  # nothing was trained


# ------------------------------------------------------------------------------------ budget check, a real one
@pytest.mark.slow
def test_budget_check_trains_e_and_2e_epochs(isolated_splits):
    from semscale_lib.studies.reweighting import run_methods

    base = {"dataset": "digits-lt", "imbalance_factor": 10, "epochs": 2, "device": "cpu"}
    runs = isolated_splits / "runs-here"
    check = pl.budget_check({"loss": "ce"}, 0, base, runs, preset="cpu-quick")   # cpu-quick: val_fraction 0.1
    folders = sorted(p for p in runs.iterdir() if p.is_dir())
    assert len(folders) == 2
    by_epochs = {json.loads((f / "config.json").read_text())["config"]["epochs"]: f for f in folders}
    assert sorted(by_epochs) == [2, 4]
    for epochs, key in ((2, "val_top1"), (4, "val_top1_doubled")):
        metrics = pd.read_csv(by_epochs[epochs] / "metrics.csv")
        assert len(metrics) == epochs and check[key] == pytest.approx(pl.final_validation(metrics))
    val_images = sum(json.loads((by_epochs[2] / "config.json").read_text())["val_counts"])
    assert val_images > 0
    assert check["threshold"] == pytest.approx(max(1.0, 100 * 2 / val_images))
    assert check["gain"] == pytest.approx(100 * (check["val_top1_doubled"] - check["val_top1"]))
    assert check["plateaued"] is (check["gain"] < check["threshold"])
    # the study's own run (same settings) is the first of the two: reused, not retrained
    stamp = (by_epochs[2] / "metrics.csv").stat().st_mtime_ns
    own = run_methods({"CE": {"loss": "ce"}}, [0], base, runs, preset="cpu-quick")
    assert Path(own["run_dir"].iloc[0]) == by_epochs[2] and (by_epochs[2] / "metrics.csv").stat().st_mtime_ns == stamp
    assert own["val_top1"].iloc[0] == pytest.approx(check["val_top1"])


# --------------------------------------------------------------------------------------------------- withheld
def test_withheld_keeps_the_numbers_and_says_why():
    record = paired_verdict([70.0, 71.0, 72.0], [72.0, 73.1, 73.9])
    assert record.verdict == "held"
    assert withheld(record, None) is record and withheld(record, "") is record
    out = withheld(record, "models not trained to a plateau")
    assert type(out) is type(record) and out.verdict == "not testable"
    assert out.reason == "models not trained to a plateau"
    assert (out.estimate, out.ci_low, out.ci_high, out.n) == (record.estimate, record.ci_low, record.ci_high, record.n)
    assert out.p_value == record.p_value and out.detectable_effect == record.detectable_effect
    assert out.sentence == f"Not judged — models not trained to a plateau. The numbers: {record.sentence}"
    assert out.sentence.startswith("Not judged")
    r = withheld(correlation_verdict(np.arange(10.0), np.arange(10.0) ** 2), "why")
    assert r.kind == "correlation" and r.verdict == "not testable" and r.estimate > 0.9
