"""Evaluation metrics: per-class and shot-group accuracy and seed summaries.

Accuracies are fractions in ``[0, 1]`` (multiply by 100 for the paper's top-1 %). Shot groups follow the paper's
head / middle / tail split (Table 2; docs/paper-notes.md §10): "many" > 100, "medium" 20–100 (inclusive), "few" < 20
training images.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

__all__ = ["per_class_accuracy", "shot_groups", "group_accuracy", "mean_sd_table"]

SHOT_GROUPS = ("many", "medium", "few")


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def per_class_accuracy(predictions, targets, num_classes: int, *, allow_missing: bool = False) -> np.ndarray:
    """Top-1 accuracy of each class: fraction of class ``j``'s test samples predicted as ``j``.

    ``predictions``, ``targets``: ``(N,)`` integer class labels (arrays or tensors). Returns float64 ``(C,)`` in
    ``[0, 1]``. A class with no test sample raises :class:`ValueError` (listing the classes) unless
    ``allow_missing=True``, in which case its entry is NaN.
    """
    pred = _to_numpy(predictions)
    true = _to_numpy(targets)
    if pred.ndim != 1 or true.ndim != 1 or pred.shape != true.shape:
        raise ValueError(f"predictions and targets must both be (N,), got {pred.shape} and {true.shape}")
    true = true.astype(np.int64)
    pred = pred.astype(np.int64)
    if true.size and (true.min() < 0 or true.max() >= num_classes):
        raise ValueError(f"targets must lie in [0, {num_classes - 1}]")
    support = np.bincount(true, minlength=num_classes).astype(np.float64)
    correct = np.bincount(true[pred == true], minlength=num_classes).astype(np.float64)
    missing = np.flatnonzero(support == 0)
    if missing.size and not allow_missing:
        raise ValueError(f"classes without test samples: {missing.tolist()} (pass allow_missing=True for NaN)")
    acc = np.full(num_classes, np.nan)
    present = support > 0
    acc[present] = correct[present] / support[present]
    return acc


def shot_groups(train_counts, *, many: int = 100, few: int = 20) -> np.ndarray:
    """Label each class by its training count: ``"many"`` (n > many), ``"medium"`` (few <= n <= many),
    ``"few"`` (n < few). ``train_counts``: ``(C,)``; returns a string array ``(C,)``."""
    counts = _to_numpy(train_counts).astype(np.float64)
    if few > many:
        raise ValueError(f"few ({few}) must not exceed many ({many})")
    labels = np.full(counts.shape, "medium", dtype="<U6")
    labels[counts > many] = "many"
    labels[counts < few] = "few"
    return labels


def group_accuracy(per_class_acc, train_counts, *, many: int = 100, few: int = 20) -> dict[str, float]:
    """Mean accuracy overall and per shot group.

    ``per_class_acc``, ``train_counts``: ``(C,)``. Returns ``{"overall", "many", "medium", "few"}``, each the
    unweighted mean of the per-class accuracies in the group (NaN when the group is empty; NaN classes are
    skipped). ``overall`` is the mean of per-class accuracies: on a class-balanced test set (CIFAR-LT,
    ImageNet-LT, iNaturalist's val) it equals the sample-weighted top-1; on an unbalanced one it does not.
    """
    acc = _to_numpy(per_class_acc).astype(np.float64)
    labels = shot_groups(train_counts, many=many, few=few)
    if acc.shape != labels.shape:
        raise ValueError(f"per_class_acc {acc.shape} and train_counts {labels.shape} differ in shape")

    def _mean(mask: np.ndarray) -> float:
        vals = acc[mask & ~np.isnan(acc)]
        return float(vals.mean()) if vals.size else float("nan")

    out = {"overall": _mean(np.ones_like(labels, dtype=bool))}
    for group in SHOT_GROUPS:
        out[group] = _mean(labels == group)
    return out


def _fmt_mean_sd(values: pd.Series, decimals: int) -> str:
    vals = values.dropna()
    if vals.empty:
        return "nan"
    mean = vals.mean()
    if len(vals) < 2:
        return f"{mean:.{decimals}f} ± n/a"
    return f"{mean:.{decimals}f} ± {vals.std(ddof=1):.{decimals}f}"


def mean_sd_table(df: pd.DataFrame, group_cols: Sequence[str], value_cols: Sequence[str], *,
                  decimals: int = 2) -> pd.DataFrame:
    """Summarise repeated runs (seeds): one row per group with ``"mean ± sd"`` strings.

    ``sd`` is the sample standard deviation (ddof = 1; ``"± n/a"`` for a single value); NaN values are skipped.
    Columns: ``group_cols``, ``n`` (rows in the group, i.e. runs), then one string column per ``value_cols``.
    An empty ``group_cols`` summarises the whole frame in one row.
    """
    group_cols = list(group_cols)
    value_cols = list(value_cols)
    missing = [c for c in group_cols + value_cols if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in the frame: {missing}")
    groups = df.groupby(group_cols, sort=True, dropna=False) if group_cols else [((), df)]
    rows = []
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(group_cols, key))
        row["n"] = len(sub)
        for col in value_cols:
            row[col] = _fmt_mean_sd(sub[col].astype(float), decimals)
        rows.append(row)
    return pd.DataFrame(rows, columns=group_cols + ["n"] + value_cols)
