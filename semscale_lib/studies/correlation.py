"""Semantic scale imbalance against per-class accuracy (Sec. 3.4.1, Table 1; notebook 02): per-class tables of
N, E_n, S′, W and S from three kinds of vectors, their correlations with accuracy beside the paper's Table 1.
Which vectors fed Table 1 is not stated (docs/paper-notes.md §6), so all three are reported, labelled.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..data import load_dataset
from ..imbalance import TABLE1_ALPHAS, correlate, quantify_imbalance, with_alpha
from ..scale import resize_images
from ..training import embed_run, load_run, training_images
from ..verdicts import correlation_verdict, dependent_correlation_verdict
from .claims import claim_record
from .notebook import fmt

_T1_COLUMNS = ("N", "E_n", "W", "S'") + tuple(f"S (alpha={a:g})" for a in TABLE1_ALPHAS)


_T1_ROWS = {
    ("CIFAR-10-LT", "ResNet-18"): (0.8346, 0.8664, 0.2957, 0.8688, 0.8456, 0.9603, 0.9553, 0.9398, 0.9269),
    ("CIFAR-10-LT", "ResNet-34"): (0.7938, 0.8476, 0.3186, 0.9426, 0.7950, 0.9678, 0.9884, 0.9854, 0.9796),
    ("CIFAR-10", "ResNet-18"): (None, None, 0.1743, 0.5433, 0.7850, 0.7250, 0.6644, 0.6060, 0.5607),
    ("CIFAR-10", "ResNet-34"): (None, None, 0.2075, 0.5750, 0.8056, 0.7442, 0.6870, 0.6465, 0.5906),
}


#: The paper's Table 1 (docs/paper-notes.md §11): Pearson r of per-class accuracy with each quantity, keyed by
#: (data, model) and
#: then by :func:`~semscale_lib.imbalance.correlate`'s quantity names. N and E_n on balanced CIFAR-10 are
#: undefined (constant columns, docs/paper-notes.md §6) and stored as NaN, not as the paper's 0.0950 / 0.1502.
TABLE1_REFERENCE: dict[tuple[str, str], dict[str, float]] = {
    key: {q: (np.nan if v is None else v) for q, v in zip(_T1_COLUMNS, values)} for key, values in _T1_ROWS.items()
}


def balanced_overrides(dataset: str, *, per_class: int | None = None, data_root=None) -> dict:
    """Training settings that make ``dataset``'s training set exactly sample-balanced (docs/paper-notes.md §10):
    ``{"dataset": dataset}`` when every class has the same count (Fashion-MNIST, CIFAR) and ``per_class`` is None,
    else every class cut by a seeded draw (``subset_per_class``; the run saves the indices) to ``per_class``
    images, or to the smallest class when that is smaller or ``per_class`` is None (MNIST: 5,421 per class)."""
    if per_class is not None and (isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer))
                                  or per_class < 2):
        raise ValueError(f"per_class must be an integer ≥ 2 or None, got {per_class!r}")
    counts = load_dataset(dataset, train=True, root=data_root).counts
    size = int(counts.min()) if per_class is None else min(int(per_class), int(counts.min()))
    if size == counts.max():
        return {"dataset": dataset}
    return {"dataset": dataset, "subset_per_class": size}


def setting_overrides(dataset: str, *, imbalance_factor: float, balanced_per_class: int | None = None,
                      data_root=None) -> dict[str, dict]:
    """The two training settings of a correlation study (notebooks 02 and 06): {"balanced":
    :func:`balanced_overrides`, "long-tailed": ``dataset``-lt at ``imbalance_factor`` (exponential profile)}."""
    return {"balanced": balanced_overrides(dataset, per_class=balanced_per_class, data_root=data_root),
            "long-tailed": {"dataset": f"{dataset}-lt", "imbalance_factor": imbalance_factor}}


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
#: Ours: the vectors a verdict is decided on. The paper's method computes S from the training features a model
#: stores while it trains (Algorithm 2), and the claim is that S of the training data explains test accuracy, so
#: the trained model's embeddings of its own training images are the closest match; pixels and test-set features
#: are sensitivity rows.
PRIMARY_SOURCE = "features (training set)"


def source_slug(source: str) -> str:
    """A file-name part for one of :data:`SOURCES`: ``"pixels (training images)"`` → ``"pixels-training"``."""
    kind, _, detail = source.partition(" (")
    return f"{kind}-{detail.split(' ')[0]}" if detail else kind


def load_setting_runs(run_dirs: Sequence) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """The runs (seeds) of one setting: (loaded runs, training counts (C,), per-class test top-1 (C,) mean over
    the runs). The runs must share their training counts."""
    runs = [load_run(d) for d in run_dirs]
    if not runs:
        raise ValueError("no runs given")
    counts = np.asarray(runs[0]["config"]["train_counts"])
    if any(list(r["config"]["train_counts"]) != counts.tolist() for r in runs[1:]):
        raise ValueError("the runs of one setting must share their training counts")
    return runs, counts, np.mean([r["per_class"]["accuracy"].to_numpy() for r in runs], axis=0)


def correlation_sources(run_dirs: Sequence, *, alpha: float, image_size: int = 16,
                        sources: Sequence[str] = SOURCES) -> dict:
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
    runs, counts, accuracy = load_setting_runs(run_dirs)
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
        correlations[source] = correlate(accuracy, table)
    return {"accuracy": accuracy, "counts": counts, "names": names, "tables": tables, "correlations": correlations}


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


def table1_verdict(accuracy, table: pd.DataFrame, *, balanced: bool, alpha: float, r_min: float = 0.3):
    """The Table 1 claim on one per-class table (our rule, docs/paper-notes.md §6):

    - sample-balanced data: S tracks accuracy — :func:`~semscale_lib.verdicts.correlation_verdict` of
      r(S at ``alpha``, accuracy) (Fisher-z CI; contradicted when the CI lies below ``r_min``);
    - long-tailed data: S tracks accuracy better than the count N —
      :func:`~semscale_lib.verdicts.dependent_correlation_verdict` of r(acc, S) − r(acc, N) (Williams' t, Zou's CI).

    ``accuracy`` ``(C,)``; ``table``: :func:`imbalance_table` output. Returns the verdict record."""
    s = with_alpha(table, alpha).to_numpy()
    if balanced:
        return correlation_verdict(s, accuracy, r_min=r_min)
    return dependent_correlation_verdict(accuracy, s, table["count"].to_numpy(np.float64))


def table1_claim(study: Mapping, *, balanced: bool, alpha: float, dataset: str, data: str,
                 primary: str = PRIMARY_SOURCE, r_min: float = 0.3, figures: Sequence[str] = ()) -> dict:
    """The claim record of one setting of :func:`correlation_sources`: the verdict on the ``primary`` source,
    the other sources as evidence rows (sensitivity, not separate claims), the paper's ResNet-18 figure beside."""
    if primary not in study["tables"]:
        raise ValueError(f"primary source {primary!r} was not computed; computed: {list(study['tables'])}")
    reference = TABLE1_REFERENCE[("CIFAR-10" if balanced else "CIFAR-10-LT", "ResNet-18")]
    key = f"S (alpha={alpha:g})"
    evidence = []
    for source, table in study["tables"].items():
        record = table1_verdict(study["accuracy"], table, balanced=balanced, alpha=alpha, r_min=r_min)
        evidence.append({"source": source + (" (primary)" if source == primary else ""),
                         "estimate": record.estimate, "ci_low": record.ci_low, "ci_high": record.ci_high,
                         "verdict": record.verdict})
        if source == primary:
            primary_record = record
    if balanced:
        claim, claim_id = "on sample-balanced data, per-class accuracy rises with S", "table1-balanced"
        paper_value = reference[key] if key in reference else np.nan
        paper = f"CIFAR-10, ResNet-18: r(acc, S α={alpha:g}) = {fmt(paper_value, 4)} (ResNet-34: 0.8056 at α = 1)"
    else:
        claim, claim_id = "on long-tailed data, S tracks per-class accuracy better than the count N", "table1-lt"
        paper_value = reference[key] - reference["N"]
        paper = (f"CIFAR-10-LT, ResNet-18: r(acc, S α={alpha:g}) = {fmt(reference[key], 4)} vs r(acc, N) = "
                 f"{fmt(reference['N'], 4)}, a difference of {paper_value:+.4f}")
    return claim_record(claim_id=claim_id, claim=claim, section="Sec. 3.4.1, Table 1", paper=paper,
                        paper_value=float(paper_value), dataset=dataset, data=f"{data}; primary source: {primary}",
                        record=primary_record, evidence=evidence, figures=figures)


__all__ = ["PRIMARY_SOURCE", "SOURCES", "TABLE1_REFERENCE", "average_tables", "balanced_overrides",
           "correlation_sources", "imbalance_table", "load_setting_runs", "setting_overrides", "source_slug",
           "table1_claim", "table1_comparison", "table1_verdict"]
