"""Semantic scale imbalance against per-class accuracy (Sec. 3.4.1, Table 1; notebook 02): per-class tables of
N, E_n, S′, W and S from three kinds of vectors, their correlations with accuracy beside the paper's Table 1.
Which vectors fed Table 1 is not stated (docs/paper-notes.md §6), so all three are reported, labelled.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..imbalance import TABLE1_ALPHAS, correlate, quantify_imbalance
from ..scale import resize_images
from ..training import embed_run, load_run, training_images
from .notebook import fmt

_T1_COLUMNS = ("N", "E_n", "W", "S'") + tuple(f"S (alpha={a:g})" for a in TABLE1_ALPHAS)


_T1_ROWS = {
    ("CIFAR-10-LT", "ResNet-18"): (0.8346, 0.8664, 0.2957, 0.8688, 0.8456, 0.9603, 0.9553, 0.9398, 0.9269),
    ("CIFAR-10-LT", "ResNet-34"): (0.7938, 0.8476, 0.3186, 0.9426, 0.7950, 0.9678, 0.9884, 0.9854, 0.9796),
    ("CIFAR-10", "ResNet-18"): (None, None, 0.1743, 0.5433, 0.7850, 0.7250, 0.6644, 0.6060, 0.5607),
    ("CIFAR-10", "ResNet-34"): (None, None, 0.2075, 0.5750, 0.8056, 0.7442, 0.6870, 0.6465, 0.5906),
}


#: The paper's Table 1 (docs/paper-notes.md §11): Pearson r of per-class accuracy with each quantity, keyed by (data, model) and
#: then by :func:`~semscale_lib.imbalance.correlate`'s quantity names. N and E_n on balanced CIFAR-10 are
#: undefined (constant columns, docs/paper-notes.md §6) and stored as NaN, not as the paper's 0.0950 / 0.1502.
TABLE1_REFERENCE: dict[tuple[str, str], dict[str, float]] = {
    key: {q: (np.nan if v is None else v) for q, v in zip(_T1_COLUMNS, values)} for key, values in _T1_ROWS.items()
}


def imbalance_table(vectors, labels, *, counts, alpha: float, class_names=None) -> pd.DataFrame:
    """``quantify_imbalance`` of (vectors (N, d), labels (N,)) at ``alpha`` with ``count`` set to the training
    ``counts`` (C,) and the number of vectors per class kept as column ``vectors``."""
    counts = np.asarray(counts)
    table = quantify_imbalance(vectors, labels, alpha=alpha, num_classes=len(counts), class_names=class_names)
    table.insert(table.columns.get_loc("count"), "vectors", table["count"].to_numpy())
    table["count"] = counts
    return table


def average_tables(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Ours: the mean over seeds of per-class ``quantify_imbalance`` tables (same classes in the same order): numeric
    columns are averaged, and S is recomputed from the averaged S′/max and W; ``attrs`` of the first are kept."""
    if not tables:
        raise ValueError("no tables to average")
    first = tables[0]
    numeric = [c for c in first.columns if c not in ("class", "name") and pd.api.types.is_numeric_dtype(first[c])]
    mean = sum(t[numeric].to_numpy(np.float64) for t in tables) / len(tables)
    out = first.copy()
    out[numeric] = mean
    out["imbalance_scale"] = out["normalized_scale"] * out["interclass"]
    out.attrs.update(first.attrs)
    return out


SOURCES = ("pixels (training images)", "features (training set)", "features (test set)")


def source_slug(source: str) -> str:
    """A file-name part for one of :data:`SOURCES`: ``"pixels (training images)"`` → ``"pixels-training"``."""
    kind, _, detail = source.partition(" (")
    return f"{kind}-{detail.split(' ')[0]}" if detail else kind


def correlation_sources(run_dirs: Sequence, *, alpha: float, image_size: int = 16, n_resamples: int = 2000,
                        seed: int = 0, sources: Sequence[str] = SOURCES) -> dict:
    """Sec. 3.4.1 for the runs (seeds) of one setting, from three kinds of vectors (which fed Table 1 is not stated,
    so all are reported, labelled):

    - ``"pixels (training images)"``: the sample volume (Algorithm 1) of the images the models trained on;
    - ``"features (training set)"``: each run's final model's embeddings of its training images;
    - ``"features (test set)"``: each run's saved test-set embeddings.

    Per-class accuracy is the mean over the runs; feature tables are averaged over the runs
    (:func:`average_tables`, ours). Returns {"accuracy" (C,), "counts" (C,), "names", "tables": {source →
    table}, "correlations": {source → ``correlate`` output}}.
    """
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; valid: {list(SOURCES)}")
    runs = [load_run(d) for d in run_dirs]
    if not runs:
        raise ValueError("no runs given")
    counts = np.asarray(runs[0]["config"]["train_counts"])
    accuracy = np.mean([r["per_class"]["accuracy"].to_numpy() for r in runs], axis=0)
    images = training_images(runs[0])
    names = list(images.classes)
    tables, correlations = {}, {}
    for source in sources:
        if source == SOURCES[0]:
            per_run = [(resize_images(images.images, image_size), images.labels)]
        elif source == SOURCES[1]:
            per_run = []
            for run_dir, run in zip(run_dirs, runs):
                own = training_images(run)
                per_run.append((embed_run(run_dir, own), own.labels))
        else:
            per_run = [(r["test_features"], r["test_labels"]) for r in runs]
        table = average_tables([imbalance_table(v, y, counts=counts, alpha=alpha, class_names=names)
                                for v, y in per_run])
        tables[source] = table
        correlations[source] = correlate(accuracy, table, n_resamples=n_resamples, seed=seed)
    return {"accuracy": accuracy, "counts": counts, "names": names, "tables": tables, "correlations": correlations}


def _significant(row: Mapping) -> tuple[bool, str]:
    """(r differs from 0, how that was decided): the bootstrap 95% CI excludes 0; when the CI is undefined
    (too many resamples with constant values) the Pearson p-value < 0.05 decides (ours)."""
    low, high = row.get("ci_low", np.nan), row.get("ci_high", np.nan)
    if np.isfinite(low) and np.isfinite(high):
        return bool(low > 0 or high < 0), "its 95% CI " + ("excludes" if (low > 0 or high < 0) else "includes") + " 0"
    p = row.get("pearson_p", np.nan)
    return bool(np.isfinite(p) and p < 0.05), f"bootstrap CI undefined, p = {p:.3f}"


def describe_r(row: Mapping) -> str:
    """One plain sentence about one correlation row of ``correlate``: sign, size and whether it differs from 0."""
    if not row.get("defined", False):
        note = row.get("note") or "undefined: a constant column"
        return f"r(accuracy, {row['quantity']}) is {note if note.startswith('undefined') else 'undefined: ' + note}"
    r, low, high = row["pearson_r"], row["ci_low"], row["ci_high"]
    sign = "positive" if r > 0 else "negative" if r < 0 else "zero"
    significant, how = _significant(row)
    ci = f" [{low:.2f}, {high:.2f}]" if np.isfinite(low) and np.isfinite(high) else ""
    return f"r(accuracy, {row['quantity']}) = {r:.2f}{ci}: {sign}, {how}" + ("" if significant else
                                                                             " (not significant)")


def table1_comparison(ours: Mapping[str, pd.DataFrame], *, balanced: bool) -> pd.DataFrame:
    """The paper's Table 1 layout with our columns beside the paper's (Table 1).

    ``ours``: {source label → ``correlate`` output}. Returns one row per quantity: our r with its 95% CI per source
    (string ``"r [low, high]"``, or ``"undefined"``), then the paper's ResNet-18 and ResNet-34 values for CIFAR-10
    (``balanced``) or CIFAR-10-LT — labelled as such: different data from ours.
    """
    data = "CIFAR-10" if balanced else "CIFAR-10-LT"
    quantities = list(next(iter(ours.values()))["quantity"])
    frame = pd.DataFrame({"quantity": quantities})
    for label, corr in ours.items():
        indexed = corr.set_index("quantity")
        frame[label] = [
            "undefined" if not indexed.loc[q, "defined"] else
            f"{indexed.loc[q, 'pearson_r']:.2f} [{indexed.loc[q, 'ci_low']:.2f}, {indexed.loc[q, 'ci_high']:.2f}]"
            for q in quantities]
    for model in ("ResNet-18", "ResNet-34"):
        reference = TABLE1_REFERENCE[(data, model)]
        frame[f"paper {data} {model}"] = [fmt(reference.get(q, np.nan), 4) for q in quantities]
    return frame


def correlation_verdicts(corr: pd.DataFrame, *, balanced: bool, alpha: float) -> dict:
    """Decide the Table 1 claim (Sec. 3.4.1) on one correlation table.

    Balanced data: falsified if r(S, acc) at ``alpha`` is near 0 — ours: its 95% bootstrap CI includes 0 (or,
    when the CI is undefined, p ≥ 0.05), or r ≤ 0. Long-tailed data: falsified if r(S, acc) at ``alpha`` is not
    above r(N, acc). Returns {verdict, sentence, r_S, ci_S, r_N}.
    """
    indexed = corr.set_index("quantity")
    key = f"S (alpha={alpha:g})"
    s_row = indexed.loc[key]
    r_s = float(s_row["pearson_r"])
    ci = (float(s_row["ci_low"]), float(s_row["ci_high"]))
    r_n = float(indexed.loc["N", "pearson_r"]) if bool(indexed.loc["N", "defined"]) else np.nan
    if not bool(s_row["defined"]):
        return {"verdict": "not testable", "sentence": f"r(accuracy, {key}) is undefined", "r_S": np.nan,
                "ci_S": ci, "r_N": r_n}
    if balanced:
        significant, how = _significant(s_row.to_dict())
        near_zero = not (r_s > 0 and significant)
        verdict = "not held" if near_zero else "held"
        sentence = (f"r(accuracy, S α={alpha:g}) = {r_s:.2f} ({how}): "
                    + ("near 0 or negative" if near_zero else "clearly positive"))
    else:
        above = np.isfinite(r_n) and r_s > r_n
        verdict = "held" if above else "not held"
        sentence = (f"r(accuracy, S α={alpha:g}) = {r_s:.2f} is {'above' if above else 'not above'} "
                    f"r(accuracy, N) = {r_n:.2f}")
    return {"verdict": verdict, "sentence": sentence, "r_S": r_s, "ci_S": ci, "r_N": r_n}


__all__ = ["SOURCES", "TABLE1_REFERENCE", "average_tables", "correlation_sources", "correlation_verdicts",
           "describe_r", "imbalance_table", "source_slug", "table1_comparison"]
