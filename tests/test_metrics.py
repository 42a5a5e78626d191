"""Tests for semscale_lib.metrics on hand-computed cases."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from semscale_lib.metrics import group_accuracy, mean_sd_table, per_class_accuracy, shot_groups


def test_per_class_accuracy_hand():
    targets = [0, 0, 1, 1, 1, 2]
    preds = [0, 1, 1, 1, 0, 2]
    acc = per_class_accuracy(np.array(preds), np.array(targets), 3)
    assert acc.tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    acc_t = per_class_accuracy(torch.tensor(preds), torch.tensor(targets), 3)
    assert np.allclose(acc, acc_t)


def test_per_class_accuracy_missing_class():
    with pytest.raises(ValueError, match=r"\[1\]"):
        per_class_accuracy([0, 2], [0, 2], 3)
    acc = per_class_accuracy([0, 2], [0, 2], 3, allow_missing=True)
    assert acc[0] == 1.0 and math.isnan(acc[1]) and acc[2] == 1.0
    with pytest.raises(ValueError):
        per_class_accuracy([0, 1], [0, 5], 3)


def test_shot_groups_thresholds():
    labels = shot_groups([500, 101, 100, 20, 19, 1])
    assert labels.tolist() == ["many", "many", "medium", "medium", "few", "few"]


def test_group_accuracy_hand():
    acc = [0.9, 0.8, 0.5, 0.3, 0.1]
    counts = [1000, 200, 50, 10, 5]
    out = group_accuracy(acc, counts)
    assert out["overall"] == pytest.approx(2.6 / 5)
    assert out["many"] == pytest.approx(0.85)
    assert out["medium"] == pytest.approx(0.5)
    assert out["few"] == pytest.approx(0.2)
    empty = group_accuracy([0.5, 0.7], [500, 300])
    assert math.isnan(empty["few"]) and math.isnan(empty["medium"]) and empty["many"] == pytest.approx(0.6)


def test_mean_sd_table():
    df = pd.DataFrame({
        "method": ["ce", "ce", "ce", "dsb"],
        "acc": [1.0, 2.0, 3.0, 4.0],
        "tail": [0.0, 0.0, 0.0, 1.0],
    })
    table = mean_sd_table(df, ["method"], ["acc", "tail"])
    assert list(table.columns) == ["method", "n", "acc", "tail"]
    ce = table.set_index("method").loc["ce"]
    assert ce["n"] == 3 and ce["acc"] == "2.00 ± 1.00" and ce["tail"] == "0.00 ± 0.00"
    assert table.set_index("method").loc["dsb", "acc"] == "4.00 ± n/a"
    whole = mean_sd_table(df, [], ["acc"], decimals=1)
    assert whole.loc[0, "n"] == 4 and whole.loc[0, "acc"] == f"2.5 ± {np.std([1, 2, 3, 4], ddof=1):.1f}"
