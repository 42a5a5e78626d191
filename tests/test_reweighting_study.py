"""Tests of semscale_lib.studies.reweighting (Sec. 4, Tables 2–3; notebooks 03 and 04): grids of runs, paired
comparisons and their claims, many/medium/few tables, static 1/S weights and the DSB weights over time."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semscale_lib.studies import reweighting as rw

RESULTS = pd.DataFrame({"method": ["A", "A", "B", "B", "C"], "seed": [0, 1, 0, 1, 0],
                        "top1": [0.60, 0.70, 0.55, 0.72, 0.9]})


# --------------------------------------------------------------------------------------------- pairs (Sec. 4)
def test_compare_pairs_is_paired_by_seed():
    results = RESULTS.copy()
    table = rw.compare_pairs(results, {"A": "B", "C": "B"}).set_index("method")
    assert table.loc["A", "diff"] == pytest.approx(((0.60 - 0.55) + (0.70 - 0.72)) / 2)
    assert table.loc["A", "sd_diff"] == pytest.approx(np.std([0.05, -0.02], ddof=1))
    assert table.loc["A", "verdict"] == "held" and table.loc["A", "n_seeds"] == 2
    assert table.loc["C", "n_seeds"] == 1 and np.isnan(table.loc["C", "sd_diff"])
    worse = rw.compare_pairs(results, {"B": "C"})
    assert worse["verdict"].iloc[0] == "not held"
    with pytest.raises(ValueError, match="no common seed"):
        rw.compare_pairs(results.assign(seed=[0, 1, 2, 3, 4]), {"A": "B"})


def test_pair_claims_state_each_pair_with_its_numbers():
    pairs = rw.compare_pairs(RESULTS.copy(), {"A": "B", "C": "B"})
    claims, lines = rw.pair_claims(pairs, claim="{method} beats {baseline}", paper={"A": "A wins by 2"},
                                   data="toy", section="Sec. 4")
    assert [c["claim"] for c in claims] == ["A beats B", "C beats B"]
    assert [c["paper"] for c in claims] == ["A wins by 2", "not reported for this loss"]
    assert all(c["section"] == "Sec. 4" for c in claims)
    assert all(c["verdict"] == "held" for c in claims)
    # A: B 63.50 % → A 65.00 % (+1.50 points, sd of (+5, -2) = 4.95); C: one seed, 55 → 90
    assert claims[0]["measured"] == "B 63.50 % → A 65.00 % (+1.50 points, sd over seeds 4.95)"
    assert claims[1]["measured"] == "B 55.00 % → C 90.00 % (+35.00 points, one seed)"
    assert claims[0]["numbers"]["diff"] == pytest.approx(0.015)
    assert lines[1] == "- **C vs B: claim held.** B 55.00 % → C 90.00 % (+35.00 points, one seed)."


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
    summary = rw.summary_table(groups)
    assert summary.loc[0, "top1"] == "50.0 ± n/a"


# ------------------------------------------------------------------------------------- run_methods refuses, never deletes
BASE = {"dataset": "digits-lt", "imbalance_factor": 10, "epochs": 1, "device": "cpu"}


def test_run_methods_refuses_two_methods_sharing_a_folder(isolated_splits):
    out = isolated_splits / "grid"
    with pytest.raises(ValueError) as error:
        rw.run_methods({"a b": {"loss": "ce"}, "a-b": {"loss": "focal"}}, [0], BASE, out, preset="cpu-quick")
    assert "'a b'" in str(error.value) and "'a-b'" in str(error.value)
    assert not any(out.iterdir())   # refused before anything was trained


def test_run_methods_refuses_a_folder_holding_something_else(isolated_splits):
    from semscale_lib.training import make_config

    out = isolated_splits / "grid"
    foreign = out / "ce-seed0"
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
    assert weights["weight"].mean() == pytest.approx(1.0)
    weighted = load_run(results.loc[1, "run_dir"])["config"]["config"]
    assert weighted["reweight"] == "static"
    assert weighted["class_weights"] == pytest.approx(weights["weight"].tolist())
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
    for epoch in (1, config.epochs):
        assert rule.epoch_weights(epoch).tolist() == [0.5, 1.5] * 5
    with pytest.raises(ValueError, match="class_weights"):
        make_config("cpu-quick", dataset="digits-lt", reweight="static")
    with pytest.raises(ValueError, match="class_weights"):
        make_config("cpu-quick", dataset="digits-lt", reweight="static", class_weights=[1.0, -1.0])
    # one weight per class: a list of another length is refused when the rule is built for C classes
    short = make_config("cpu-quick", dataset="digits-lt", reweight="static", class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="class_weights"):
        build_weighting(short, np.ones(10), dataset_size=10)
