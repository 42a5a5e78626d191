"""Tests of semscale_lib.studies.reweighting (Sec. 4, Tables 2–3; notebooks 03 and 04): grids of runs, paired
comparisons and their claims, many/medium/few tables, static 1/S weights and the DSB weights over time."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semscale_lib.studies import reweighting as rw
from semscale_lib.training.trainer import run_folder_name

T975_2DF = 4.302652729911275   # t quantile 0.975 on 2 df

# top-1 as fractions. A − B = +1.9, +2.0, +2.1 points (mean 2, sd 0.1); A − E = +0.9, +1.0, +2.1 points; C has one
# seed only.
RESULTS = pd.DataFrame({"method": ["A"] * 3 + ["B"] * 3 + ["E"] * 3 + ["C"],
                        "seed": [0, 1, 2] * 3 + [0],
                        "top1": [0.619, 0.670, 0.721, 0.600, 0.650, 0.700, 0.610, 0.660, 0.700, 0.9]})
PAIR_COLUMNS = ["method", "baseline", "n_seeds", "mean_with", "mean_without", "diff", "ci_low", "ci_high", "verdict",
                "sentence", "record"]


# --------------------------------------------------------------------------------------------- pairs (Sec. 4)
def test_compare_pairs_consistent_two_point_gain_is_held_in_points():
    table = rw.compare_pairs(RESULTS, {"A": "B"})
    assert list(table.columns) == PAIR_COLUMNS and len(table) == 1
    row = table.iloc[0]
    half = T975_2DF * 0.1 / np.sqrt(3)                  # sd of (1.9, 2.0, 2.1) is 0.1
    assert row["n_seeds"] == 3 and row["verdict"] == "held"
    assert row["diff"] == pytest.approx(2.0) and row["record"].estimate == row["diff"]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((2.0 - half, 2.0 + half))   # [1.75, 2.25]
    assert row["mean_with"] == pytest.approx(67.0) and row["mean_without"] == pytest.approx(65.0)
    assert row["record"].sd_diff == pytest.approx(0.1)
    assert row["sentence"] == row["record"].sentence == (
        "Mean paired gain (treated − baseline) +2.00, 95 % CI [+1.75, +2.25], over n = 3 paired seeds: held.")
    # the reverse pair loses two points: contradicted
    reverse = rw.compare_pairs(RESULTS, {"B": "A"}).iloc[0]
    assert reverse["diff"] == pytest.approx(-2.0) and reverse["verdict"] == "contradicted"


def test_compare_pairs_single_seed_not_testable_and_min_n():
    row = rw.compare_pairs(RESULTS, {"C": "B"}).iloc[0]
    assert row["n_seeds"] == 1 and row["verdict"] == "not testable"
    assert row["diff"] == pytest.approx(30.0)                     # 90 − 60 points, reported but not decisive
    assert np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
    # only the seeds both methods have are paired
    assert rw.compare_pairs(RESULTS.drop(index=2), {"A": "B"}).iloc[0]["n_seeds"] == 2
    assert rw.compare_pairs(RESULTS.drop(index=2), {"A": "B"}).iloc[0]["verdict"] == "not testable"
    assert rw.compare_pairs(RESULTS.drop(index=2), {"A": "B"}, min_n=2).iloc[0]["verdict"] == "held"
    with pytest.raises(ValueError, match="no common seed"):
        rw.compare_pairs(RESULTS.assign(seed=range(10)), {"A": "B"})


def test_compare_pairs_list_one_treated_against_two_baselines():
    table = rw.compare_pairs(RESULTS, [("A", "B"), ("A", "E")])
    assert table[["method", "baseline"]].values.tolist() == [["A", "B"], ["A", "E"]]
    second = table.iloc[1]
    # A − E = 0.9, 1.0, 2.1: mean 4/3, sd sqrt(0.88667 / 2), CI 1.333 ± 4.3027 · sd / √3 = [-0.32, +2.99]
    sd = np.sqrt(((0.9 - 4 / 3) ** 2 + (1.0 - 4 / 3) ** 2 + (2.1 - 4 / 3) ** 2) / 2)
    half = T975_2DF * sd / np.sqrt(3)
    assert second["diff"] == pytest.approx(4 / 3)
    assert (second["ci_low"], second["ci_high"]) == pytest.approx((4 / 3 - half, 4 / 3 + half))
    assert second["ci_low"] < 0 < second["ci_high"] and second["verdict"] == "inconclusive"
    assert second["mean_without"] == pytest.approx(65.666666667)
    assert table.iloc[0]["verdict"] == "held"


def test_compare_pairs_places_the_papers_delta_against_the_ci():
    row = rw.compare_pairs(RESULTS, {"A": "B"}, paper_deltas={"A": 2.05, "other": 9.0}).iloc[0]
    assert row["record"].paper_delta == 2.05 and row["record"].paper_comparison == "inside the CI"
    assert row["sentence"].endswith("; consistent with the paper's +2.05 (inside the CI); 3 paired seeds detect a "
                                    "gain ≥ 0.33 with 80 % power.")
    above = rw.compare_pairs(RESULTS, {"A": "B"}, paper_deltas={"A": 4.8}).iloc[0]
    assert above["record"].paper_comparison == "above the CI"
    assert rw.compare_pairs(RESULTS, {"A": "B"}).iloc[0]["record"].paper_delta is None


def test_pair_claims_state_each_pair_with_its_record():
    pairs = rw.compare_pairs(RESULTS, [("A", "B"), ("A", "E")], paper_deltas={"A": 2.05})
    claims = rw.pair_claims(pairs, claim="{method} beats {baseline}", claim_id="dsb-{method}-vs-{baseline}",
                            paper={"A": "A wins by 2"}, dataset="digits-lt", data="toy", section="Sec. 4")
    assert isinstance(claims, list) and all(isinstance(c, dict) for c in claims)     # records only, no markdown
    assert [c["claim_id"] for c in claims] == ["dsb-A-vs-B", "dsb-A-vs-E"]
    assert [c["claim"] for c in claims] == ["A beats B", "A beats E"]
    # A vs E: CI [-0.32, +2.99], and 3 seeds with sd 0.67 detect only gains ≥ 2.17 > the paper's 2.05: underpowered
    assert [c["verdict"] for c in claims] == ["held", "not testable"]
    assert all(c["paper"] == "A wins by 2" and c["section"] == "Sec. 4" and c["dataset"] == "digits-lt"
               for c in claims)
    first = claims[0]
    assert first["paper_value"] == 2.05
    assert first["measured"] == pairs.iloc[0]["sentence"] == (
        "Mean paired gain (treated − baseline) +2.00, 95 % CI [+1.75, +2.25], over n = 3 paired seeds: held; "
        "consistent with the paper's +2.05 (inside the CI); 3 paired seeds detect a gain ≥ 0.33 with 80 % power.")
    assert first["estimate"] == pytest.approx(2.0) and first["ci_low"] == pytest.approx(pairs.iloc[0]["ci_low"])
    assert first["numbers"]["with"] == pytest.approx(67.0) and first["numbers"]["without"] == pytest.approx(65.0)
    assert first["numbers"]["kind"] == "paired" and first["numbers"]["n"] == 3
    assert "train_top1" not in first["numbers"]                         # no results given: no fit numbers
    assert claims[1]["measured"].startswith("Underpowered: 3 paired seeds detect a gain ≥ 2.17 with 80 % power, "
                                            "but the paper reports +2.05")
    # a loss the paper does not report
    other = rw.pair_claims(rw.compare_pairs(RESULTS, {"E": "B"}), claim="{method} beats {baseline}",
                           claim_id="x-{method}", paper={}, dataset="d", data="toy", section="Sec. 4")
    assert other[0]["paper"] == "not reported for this loss" and other[0]["paper_value"] is None


FIT = RESULTS.assign(train_top1=[0.90, 0.92, 0.94, 0.80, 0.82, 0.84, 0.5, 0.5, 0.5, 0.1],
                     val_top1=[0.70, 0.71, 0.72, 0.60, 0.61, 0.62, 0.3, 0.3, 0.3, 0.1])
ARGS = dict(claim="{method} beats {baseline}", claim_id="x-{method}-{baseline}", paper={}, dataset="d", data="toy",
            section="Sec. 4")


def test_pair_claims_carry_the_fit_of_the_two_methods_only():
    budget = {"epochs": 16, "doubled": 32, "gain": 0.4, "threshold": 1.0, "plateaued": True}
    claim = rw.pair_claims(rw.compare_pairs(FIT, {"A": "B"}), results=FIT, budget=budget, **ARGS)[0]
    # means over the six runs of A and B (E and C left out): train (0.90 … 0.84) → 0.87, val → 0.66
    assert claim["numbers"]["train_top1"] == pytest.approx(0.87)
    assert claim["numbers"]["val_top1"] == pytest.approx(0.66)
    assert claim["numbers"]["budget_gain"] == 0.4 and claim["numbers"]["plateaued"] is True
    assert claim["verdict"] == "held"                                  # at the plateau: judged


def test_pair_claims_withheld_when_the_budget_is_short_of_the_plateau():
    budget = {"epochs": 16, "doubled": 32, "gain": 2.5, "threshold": 1.0, "plateaued": False}
    pairs = rw.compare_pairs(FIT, [("A", "B"), ("B", "A")])
    claims = rw.pair_claims(pairs, results=FIT, budget=budget, **ARGS)
    reason = ("models not trained to a plateau: doubling the budget from 16 to 32 epochs added +2.5 points of "
              "validation top-1 (a plateau adds < 1.0)")
    for claim, row in zip(claims, pairs.itertuples(index=False)):
        assert claim["verdict"] == "not testable" and claim["numbers"]["reason"] == reason
        assert claim["estimate"] == pytest.approx(row.diff) and claim["ci_low"] == pytest.approx(row.ci_low)
        assert claim["measured"].startswith(f"Not judged — {reason}. The numbers: ")
    # no validation split: the plateau is not measured (None) and the verdicts stand
    unmeasured = {**budget, "gain": float("nan"), "plateaued": None}
    assert [c["verdict"] for c in rw.pair_claims(pairs, results=FIT, budget=unmeasured, **ARGS)] == \
        ["held", "contradicted"]


# --------------------------------------------------------------------------------------- many / few thresholds
def _runs_with_largest_class(tmp_path, largest):
    runs = []
    for i, top in enumerate(largest):
        run = tmp_path / f"r{i}"
        run.mkdir()
        pd.DataFrame({"class": [0, 1, 2], "train_count": [top, 50, 5], "accuracy": [0.9, 0.5, 0.1]}).to_csv(
            run / "per_class.csv", index=False)
        runs.append(str(run))
    return pd.DataFrame({"method": ["CE"] * len(runs), "seed": range(len(runs)), "run_dir": runs})


@pytest.mark.parametrize("largest,expected", [
    ([500], (100, 20)),            # CIFAR-100-LT / Double-MNIST-LT: the paper's thresholds
    ([1280], (100, 20)),           # ImageNet-LT's largest class
    ([2560], (200, 40)),           # twice as large: twice the thresholds
    ([5400], (422, 84)),           # Fashion-MNIST-LT: 100 · 5400 / 1280 = 421.9, 20 · 5400 / 1280 = 84.4
    ([300, 2560], (200, 40)),      # the largest class over all runs decides
])
def test_shot_thresholds_scale_above_1280_images(tmp_path, largest, expected):
    assert rw.shot_thresholds(_runs_with_largest_class(tmp_path, largest)) == expected


def test_long_tailed_base_of_your_own_images(tmp_path):
    assert rw.long_tailed_base("imagefolder", 10.0, image_root=tmp_path, image_size=16, epochs=2) == {
        "dataset": "imagefolder-lt", "imbalance_factor": 10.0, "image_root": str(tmp_path), "image_size": 16,
        "epochs": 2}
    assert rw.long_tailed_base("imagefolder", None, image_root=tmp_path) == {"dataset": "imagefolder",
                                                                           "image_root": str(tmp_path)}
    with pytest.raises(ValueError, match="image_root"):
        rw.long_tailed_base("imagefolder", 10.0)
    # other datasets ignore both
    assert rw.long_tailed_base("mnist", 10.0, image_root=tmp_path, image_size=16) == {"dataset": "mnist-lt",
                                                                                      "imbalance_factor": 10.0}


# ------------------------------------------------------------------------------------------ tables of run folders
def test_weights_history_long_form(tmp_path):
    pd.DataFrame({"epoch": [3, 3], "iteration": [10, 30], "S_0": [0.5, 0.6], "S_1": [1.0, 0.9],
                  "a_0": [1.33, 1.2], "a_1": [0.67, 0.8]}).to_csv(tmp_path / "weights.csv", index=False)
    history = rw.weights_history(tmp_path, ["cat", "dog"])
    assert list(history.columns) == ["epoch", "iteration", "class", "name", "S", "a"]
    assert len(history) == 4
    assert history[(history["iteration"] == 30) & (history["name"] == "dog")]["a"].iloc[0] == 0.8
    assert rw.weights_history(tmp_path / "missing").empty


def test_group_table_and_summary(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    pd.DataFrame({"class": [0, 1, 2], "train_count": [500, 50, 5], "accuracy": [0.9, 0.5, 0.1]}).to_csv(
        run / "per_class.csv", index=False)
    results = pd.DataFrame({"method": ["CE"], "seed": [0], "run_dir": [str(run)], "top1": [0.5]})
    groups = rw.group_table(results, many=100, few=20)
    assert groups.loc[0, ["many", "medium", "few"]].tolist() == [0.9, 0.5, 0.1]
    assert groups.loc[0, ["n_many", "n_medium", "n_few"]].tolist() == [1, 1, 1]
    assert groups.loc[0, "reduction"] == "—"          # a results frame without the column: unweighted
    summary = rw.summary_table(groups)
    assert summary.loc[0, "top1"] == "50.0 ± n/a"
    # run_methods' reduction column is carried through
    weighted = rw.group_table(results.assign(reduction=["weighted-mean"]))
    assert list(weighted.columns[:3]) == ["method", "reduction", "seed"]
    assert weighted.loc[0, "reduction"] == "weighted-mean"


def test_summary_table_groups_by_method_and_reduction_in_the_given_order():
    groups = pd.DataFrame({"method": ["ce", "ce", "dsb", "dsb"], "reduction": ["—", "—", "mean", "mean"],
                           "seed": [0, 1, 0, 1], "top1": [0.50, 0.60, 0.55, 0.65], "many": [0.9, 0.9, 0.8, 0.8],
                           "medium": [0.5, 0.5, 0.5, 0.5], "few": [0.1, 0.2, 0.3, 0.4]})
    summary = rw.summary_table(groups, order=["dsb", "ce"])
    assert list(summary.columns) == ["method", "reduction", "n", "top1", "many", "medium", "few"]
    assert summary["method"].tolist() == ["dsb", "ce"] and summary["reduction"].tolist() == ["mean", "—"]
    assert summary["n"].tolist() == [2, 2]
    # percent, mean ± sample sd: (55, 65) → 60.0 ± 7.1; (10, 20) → 15.0 ± 7.1
    assert summary.loc[0, "top1"] == "60.0 ± 7.1" and summary.loc[1, "few"] == "15.0 ± 7.1"
    assert summary.loc[1, "many"] == "90.0 ± 0.0"
    # without a reduction column it groups by method alone
    assert "reduction" not in rw.summary_table(groups.drop(columns="reduction")).columns


# ------------------------------------------------------------------------------------- run_methods refuses, never deletes
BASE = {"dataset": "digits-lt", "imbalance_factor": 10, "epochs": 1, "device": "cpu"}


def test_run_methods_refuses_two_method_names_for_the_same_settings(isolated_splits):
    out = isolated_splits / "grid"
    with pytest.raises(ValueError) as error:
        rw.run_methods({"CE": {"loss": "ce"}, "plain": {"loss": "ce", "reweight": "none"}}, [0], BASE, out,
                       preset="cpu-quick")
    assert "'CE'" in str(error.value) and "'plain'" in str(error.value)
    assert not out.exists() or not any(out.iterdir())   # refused before anything was made or trained


def test_run_folders_are_named_by_the_settings_that_decide_the_run():
    from semscale_lib.training import make_config

    def name(**overrides):
        return run_folder_name(make_config("cpu-quick", **{**BASE, "seed": 0, **overrides}))

    assert name().startswith("digits-lt-") and "-ce-none-seed0-" in name()
    assert name() == name(device="cuda")                          # where it runs does not change the run
    assert name() == name(dsb_alpha=1.0, dsb_stage_epochs=3)      # DSB settings are inert without reweight=dsb
    assert name(reweight="dsb") != name(reweight="dsb", dsb_alpha=1.0)
    assert name() != name(seed=1) and name() != name(epochs=2) and name() != name(loss="focal")


def test_run_methods_refuses_a_folder_holding_something_else(isolated_splits):
    from semscale_lib.training import make_config

    out = isolated_splits / "grid"
    foreign = out / run_folder_name(make_config("cpu-quick", **{**BASE, "loss": "ce", "reweight": "none",
                                                                    "seed": 0}))
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("not a run")
    with pytest.raises(ValueError, match="something other"):
        rw.run_methods({"ce": {"loss": "ce", "reweight": "none"}}, [0], BASE, out, preset="cpu-quick")
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"] and (foreign / "notes.txt").read_text() == "not a run"
    # a finished run of other settings in that folder is refused as well, not replaced
    other = make_config("cpu-quick", **{**BASE, "loss": "focal", "seed": 0})
    (foreign / "notes.txt").unlink()
    (foreign / "config.json").write_text(json.dumps({"config": other.to_dict()}))
    (foreign / "per_class.csv").write_text("class,accuracy\n0,1.0\n")
    with pytest.raises(ValueError, match="something other"):
        rw.run_methods({"ce": {"loss": "ce", "reweight": "none"}}, [0], BASE, out, preset="cpu-quick")
    assert sorted(p.name for p in foreign.iterdir()) == ["config.json", "per_class.csv"]
    assert json.loads((foreign / "config.json").read_text())["config"]["loss"] == "focal"


# ------------------------------------------------------------------------------------------- training (slow: real)
@pytest.mark.slow
def test_static_weighting_grid_passes_the_weights_to_training(isolated_splits):
    from semscale_lib.training import load_run

    results, weights = rw.static_weighting_grid(["ce"], [0], BASE, isolated_splits / "grid", preset="cpu-quick",
                                                alpha=2.0, normalize="mean1")
    assert list(results["method"]) == ["ce", "ce + S-weights"]
    # the preset carves a validation split: every run reports how far it fits (fractions)
    assert results[["train_top1", "val_top1"]].apply(lambda c: c.between(0, 1)).all().all()
    # unweighted runs have no batch reduction; static 1/S weights use the rule's default, the plain mean
    assert results["reduction"].tolist() == ["—", "mean"]
    assert rw.group_table(results)["reduction"].tolist() == ["—", "mean"]
    assert weights["weight"].mean() == pytest.approx(1.0)
    weighted = load_run(results.loc[1, "run_dir"]).settings
    assert weighted["reweight"] == "static"
    assert weighted["class_weights"] == pytest.approx(weights["weight"].tolist())
    # the weights are kept in the CE run's folder, every digit, and read back: `semscale plan` names the same run
    ce_dir = results.loc[0, "run_dir"]
    kept = rw.remembered_static_weights(ce_dir, alpha=2.0, normalize="mean1", source="train", pool_dim=64)
    assert kept.tolist() == weighted["class_weights"]
    # the CE model's own training embeddings give the weights: the larger S, the smaller a
    order = np.argsort(weights["imbalance_scale"].to_numpy())
    assert np.all(np.diff(weights["weight"].to_numpy()[order]) <= 1e-12)
    # a rerun into the same folder loads the finished runs, it does not retrain them
    metrics = Path(results.loc[0, "run_dir"]) / "metrics.csv"
    stamp = metrics.stat().st_mtime_ns
    again = rw.run_methods({"ce": {"loss": "ce", "reweight": "none"}}, [0], BASE, isolated_splits / "grid",
                           preset="cpu-quick")
    assert again.loc[0, "top1"] == results.loc[0, "top1"] and metrics.stat().st_mtime_ns == stamp


def test_static_reweighting_rule_gives_the_class_weights_in_every_epoch():
    """reweight="static" (notebook 03): the rule returns the given class weights at the start of every epoch."""
    from semscale_lib.training import make_config
    from semscale_lib.weights import build_weighting

    config = make_config("cpu-quick", dataset="digits-lt", reweight="static", class_weights=[0.5, 1.5] * 5)
    rule = build_weighting(config, np.ones(10), dataset_size=10)
    for epoch in (1, config.optim.epochs):
        assert rule.epoch_weights(epoch).tolist() == [0.5, 1.5] * 5
    with pytest.raises(ValueError, match="class_weights"):
        make_config("cpu-quick", dataset="digits-lt", reweight="static")
    with pytest.raises(ValueError, match="class_weights"):
        make_config("cpu-quick", dataset="digits-lt", reweight="static", class_weights=[1.0, -1.0])
    # one weight per class: a list of another length is refused when the rule is built for C classes
    short = make_config("cpu-quick", dataset="digits-lt", reweight="static", class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="class_weights"):
        build_weighting(short, np.ones(10), dataset_size=10)


@pytest.mark.slow
def test_two_processes_asking_for_one_run_train_it_once(isolated_splits):
    """Notebooks share a runs folder: two processes that ask for the same run at once take turns on its lock file;
    the second reuses the first's run instead of training into the same folder."""
    import subprocess
    import sys

    script = (
        "import sys, time; from semscale_lib.training import make_config;"
        "from semscale_lib.training.trainer import train_or_reuse;"
        "c = make_config('cpu-quick', dataset='digits-lt', imbalance_factor=10, epochs=2, device='cpu', seed=0);"
        "t = time.time(); train_or_reuse(c, sys.argv[1]); print(round(time.time() - t, 2))")
    folder = isolated_splits / "shared" / "run"
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "SEMSCALE_SPLITS": str(isolated_splits / "splits"),
           "SEMSCALE_RUNS": str(isolated_splits / "runs")}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    metrics = pd.read_csv(folder / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2]          # one run of two epochs, not two interleaved ones
    assert (folder.parent / "run.lock").exists()
