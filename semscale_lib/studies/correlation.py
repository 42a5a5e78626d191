"""Semantic scale imbalance against per-class accuracy (Sec. 3.4.1, Table 1; notebook 02): per-class tables of
N, E_n, S′, W and S from three kinds of vectors, their correlations with accuracy beside the paper's Table 1.
Which vectors fed Table 1 is not stated (docs/paper-notes.md §6), so all three are reported, labelled.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..data import load_dataset
from ..imbalance import TABLE1_ALPHAS, correlate, quantify_imbalance, with_alpha
from ..scale import effective_number, resize_images
from ..training import embed_run, load_run, training_images
from ..verdicts import correlation_verdict, dependent_correlation_verdict, withheld
from .claims import claim_record
from .notebook import fmt
from .plateau import far_from_trained, fit_numbers
from .reweighting import long_tailed_base

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


def balanced_overrides(dataset: str, *, per_class: int | None = None, data_root=None, image_root=None,
                       image_size: int | None = None) -> dict:
    """Training settings that make ``dataset``'s training set exactly sample-balanced (docs/paper-notes.md §10):
    ``{"dataset": dataset}`` when every class has the same count (Fashion-MNIST, CIFAR) and ``per_class`` is None,
    else every class cut by a seeded draw (``subset_per_class``; the run saves the indices) to ``per_class``
    images, or to the smallest class when that is smaller or ``per_class`` is None (MNIST: 5,421 per class). Your
    own images (``dataset="imagefolder"``): ``image_root`` is their tree, ``image_size`` the side they are resized to."""
    if per_class is not None and (isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer))
                                  or per_class < 2):
        raise ValueError(f"per_class must be an integer ≥ 2 or None, got {per_class!r}")
    folder = long_tailed_base(dataset, None, image_root=image_root, image_size=image_size) \
        if dataset == "imagefolder" else {"dataset": dataset}
    counts = load_dataset(dataset, train=True, root=image_root if dataset == "imagefolder" else data_root,
                          **({"image_size": image_size} if dataset == "imagefolder" and image_size else {})).counts
    size = int(counts.min()) if per_class is None else min(int(per_class), int(counts.min()))
    if size == counts.max():
        return folder
    return {**folder, "subset_per_class": size}


def setting_overrides(dataset: str, *, imbalance_factor: float, balanced_per_class: int | None = None,
                      data_root=None, image_root=None, image_size: int | None = None) -> dict[str, dict]:
    """The two training settings of a correlation study (notebooks 02 and 06): {"balanced":
    :func:`balanced_overrides`, "long-tailed": ``dataset``-lt at ``imbalance_factor`` (exponential profile)}."""
    return {"balanced": balanced_overrides(dataset, per_class=balanced_per_class, data_root=data_root,
                                           image_root=image_root, image_size=image_size),
            "long-tailed": long_tailed_base(dataset, imbalance_factor, image_root=image_root, image_size=image_size)}


def imbalance_table(vectors, labels, *, counts, alpha: float, class_names=None, device=None) -> pd.DataFrame:
    """``quantify_imbalance`` of (vectors (N, d), labels (N,)) at ``alpha`` with ``count`` set to the training
    ``counts`` (C,) and the number of vectors per class kept as column ``vectors``; S′ computed on ``device``."""
    counts = np.asarray(counts)
    table = quantify_imbalance(vectors, labels, alpha=alpha, num_classes=len(counts), class_names=class_names,
                               device=device)
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


PIXELS = "pixels (training images)"
TRAINING_FEATURES = "features (training set)"
TEST_FEATURES = "features (test set)"


def _pixel_vectors(run_dirs, runs, image_size: int, *, device=None) -> list[tuple]:
    """The sample volume's vectors (Algorithm 1): the training images, resized to ``image_size``², once."""
    images = training_images(runs[0])
    return [(resize_images(images.images, image_size), images.labels)]


def _training_feature_vectors(run_dirs, runs, image_size: int, *, device=None) -> list[tuple]:
    """Each run's final model's embeddings of its own training images, embedded on ``device`` (None: the run's)."""
    return [(embed_run(run_dir, own, device=device), own.labels)
            for run_dir, own in ((d, training_images(r)) for d, r in zip(run_dirs, runs))]


def _test_feature_vectors(run_dirs, runs, image_size: int, *, device=None) -> list[tuple]:
    """Each run's saved test-set embeddings."""
    return [(r.test_features, r.test_labels) for r in runs]


#: The kinds of vectors a per-class table is computed from (which fed the paper's Table 1 is not stated): label →
#: function(run_dirs, runs, image_size, *, device) → [(vectors (N, d), labels (N,)), one per run, or one for all
#: runs]; ``device``: where a model embeds (None: the run's own device).
SOURCES = {PIXELS: _pixel_vectors, TRAINING_FEATURES: _training_feature_vectors,
           TEST_FEATURES: _test_feature_vectors}
#: Ours: the vectors a verdict is decided on. The paper's method computes S from the training features a model
#: stores while it trains (Algorithm 2), and the claim is that S of the training data explains test accuracy, so
#: the trained model's embeddings of its own training images are the closest match; pixels and test-set features
#: are sensitivity rows.
PRIMARY_SOURCE = TRAINING_FEATURES


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
    counts = np.asarray(runs[0].train_counts)
    if any(r.train_counts != counts.tolist() for r in runs[1:]):
        raise ValueError("the runs of one setting must share their training counts")
    return runs, counts, np.mean([r.per_class["accuracy"].to_numpy() for r in runs], axis=0)


def correlation_sources(run_dirs: Sequence, *, alpha: float, image_size: int = 16,
                        sources: Sequence[str] = tuple(SOURCES), device=None) -> dict:
    """Sec. 3.4.1 for the runs (seeds) of one setting, from three kinds of vectors (which fed Table 1 is not stated,
    so all are reported, labelled):

    - ``"pixels (training images)"``: the sample volume (Algorithm 1) of the images the models trained on;
    - ``"features (training set)"``: each run's final model's embeddings of its training images;
    - ``"features (test set)"``: each run's saved test-set embeddings.

    Per-class accuracy is the mean over the runs; feature tables are averaged over the runs
    (:func:`average_tables`, ours). Returns {"accuracy" (C,), "counts" (C,), "names", "tables": {source →
    table}, "correlations": {source → ``correlate`` output}}. ``device`` (a notebook's ``device``: "auto", "cuda",
    "cpu", ...): where the models embed and S′ is computed; None: each run's own device for embedding, the CPU for
    S′ (``embed_run``, ``quantify_imbalance``).
    """
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; valid: {list(SOURCES)}")
    runs, counts, accuracy = load_setting_runs(run_dirs)
    images = training_images(runs[0])
    names = list(images.classes)
    tables, correlations = {}, {}
    for source in sources:
        per_run = SOURCES[source](run_dirs, runs, image_size, device=device)
        table = average_tables([imbalance_table(v, y, counts=counts, alpha=alpha, class_names=names, device=device)
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
        frame[f"paper {data} {model}"] = [fmt(reference[q], 4) if q in reference else "not reported"
                                          for q in quantities]
    return frame


#: The count-based predictors S is set against on long-tailed data: the paper's N, and the fairer log N and E_n
#: (ours: with an exponential profile accuracy follows log N far more closely than N).
COUNT_PREDICTORS = ("N", "log N", "E_n")


def _column(table: pd.DataFrame, quantity: str, beta: float = 0.9999) -> np.ndarray:
    counts = table["count"].to_numpy(np.float64)
    if quantity == "N":
        return counts
    if quantity == "log N":
        return np.log2(counts)
    if quantity == "E_n":
        return effective_number(table["count"].to_numpy(), beta)
    raise ValueError(f"unknown count predictor {quantity!r}; valid: {COUNT_PREDICTORS}")


def best_count_predictor(accuracy, table: pd.DataFrame) -> str:
    """The count-based predictor (:data:`COUNT_PREDICTORS`) with the highest Pearson r with ``accuracy`` — the one S
    has to beat for "S tracks accuracy better than the counts" to matter."""
    accuracy = np.asarray(accuracy, np.float64)
    r = {q: np.corrcoef(_column(table, q), accuracy)[0, 1] for q in COUNT_PREDICTORS}
    return max(r, key=lambda q: r[q] if np.isfinite(r[q]) else -np.inf)


def table1_verdict(accuracy, table: pd.DataFrame, *, balanced: bool, alpha: float, r_min: float = 0.3,
                   against: str = "N", paper_effect: float | None = None):
    """The Table 1 claim on one per-class table (our rule, docs/paper-notes.md §6):

    - sample-balanced data: S tracks accuracy — :func:`~semscale_lib.verdicts.correlation_verdict` of
      r(S at ``alpha``, accuracy) (Fisher-z CI; contradicted when the CI lies below ``r_min``);
    - long-tailed data: S tracks accuracy better than the count predictor ``against`` (N, log N or E_n) —
      :func:`~semscale_lib.verdicts.dependent_correlation_verdict` of r(acc, S) − r(acc, count) (Williams' t,
      Zou's CI).

    ``accuracy`` ``(C,)``; ``table``: :func:`imbalance_table` output; ``paper_effect``: the paper's r (balanced) or
    difference of r (long-tailed), for the power rule. Returns the verdict record."""
    s = with_alpha(table, alpha).to_numpy()
    if balanced:
        return correlation_verdict(s, accuracy, r_min=r_min, paper_effect=paper_effect)
    return dependent_correlation_verdict(accuracy, s, _column(table, against), paper_effect=paper_effect)


def _spearman(accuracy, values) -> float:
    values = np.asarray(values, np.float64)
    return float(stats.spearmanr(values, accuracy)[0]) if np.ptp(values) > 0 else np.nan


def table1_claims(study: Mapping, *, balanced: bool, alpha: float, dataset: str, data: str,
                  primary: str = PRIMARY_SOURCE, r_min: float = 0.3, figures: Sequence[str] = (),
                  results: pd.DataFrame | None = None, budget: Mapping | None = None) -> list[dict]:
    """The claim records of one setting of :func:`correlation_sources`, decided on the ``primary`` source with the
    other sources as evidence rows (sensitivity, not separate claims), each beside the paper's ResNet-18 figure:

    - balanced: "per-class accuracy rises with S" (the paper's r(acc, S α = 1) on CIFAR-10);
    - long-tailed: "S tracks accuracy better than N" (the paper's comparison, its r(S) − r(N) on CIFAR-10-LT) and
      "... better than the best count-based predictor" (N, log N or E_n, whichever tracks accuracy best here; the
      paper's r(S) − r(E_n)), which says whether the finding matters next to what the counts already explain.

    Evidence rows carry Pearson's estimate and CI and Spearman's ρ of S and of the counts. ``results`` and
    ``budget`` (:func:`~semscale_lib.studies.plateau.budget_check`): how well the models fit; a budget short of the
    plateau makes the claims "not testable"."""
    if primary not in study["tables"]:
        raise ValueError(f"primary source {primary!r} was not computed; computed: {list(study['tables'])}")
    reference = TABLE1_REFERENCE[("CIFAR-10" if balanced else "CIFAR-10-LT", "ResNet-18")]
    key, accuracy = f"S (alpha={alpha:g})", study["accuracy"]
    why = far_from_trained(budget)
    fit = fit_numbers(results, budget) if results is not None else {}
    if balanced:
        designs = [("table1-balanced", "on sample-balanced data, per-class accuracy rises with S", None,
                    reference[key] if key in reference else np.nan)]
    else:
        best = best_count_predictor(accuracy, study["tables"][primary])
        designs = [("table1-lt", "on long-tailed data, S tracks per-class accuracy better than the count N", "N",
                    reference[key] - reference["N"]),
                   ("table1-lt-counts", f"on long-tailed data, S tracks per-class accuracy better than the best "
                    f"count-based predictor (here {best})", best, reference[key] - reference["E_n"])]
    claims = []
    for claim_id, claim, against, paper_value in designs:
        evidence, primary_record = [], None
        for source, table in study["tables"].items():
            record = table1_verdict(accuracy, table, balanced=balanced, alpha=alpha, r_min=r_min,
                                    against=against or "N", paper_effect=paper_value)
            row = {"source": source + (" (primary)" if source == primary else ""), "pearson": record.estimate,
                   "ci_low": record.ci_low, "ci_high": record.ci_high, "verdict": record.verdict,
                   "spearman S": _spearman(accuracy, with_alpha(table, alpha))}
            if against:
                row[f"spearman {against}"] = _spearman(accuracy, _column(table, against))
            evidence.append(row)
            if source == primary:
                primary_record = record
        if balanced:
            paper = f"CIFAR-10, ResNet-18: r(acc, S α={alpha:g}) = {fmt(paper_value, 4)} (ResNet-34: 0.8056 at α = 1)"
        else:
            paper = (f"CIFAR-10-LT, ResNet-18: r(acc, S α={alpha:g}) = {fmt(reference[key], 4)} vs r(acc, N) = "
                     f"{fmt(reference['N'], 4)} and r(acc, E_n) = {fmt(reference['E_n'], 4)}: S − "
                     f"{'N' if against == 'N' else 'E_n'} = {paper_value:+.4f}")
        claims.append(claim_record(
            claim_id=claim_id, claim=claim, section="Sec. 3.4.1, Table 1", paper=paper,
            paper_value=float(paper_value), dataset=dataset,
            data=f"{data}; primary source: {primary}" + (f"; compared with {against}" if against else ""),
            record=withheld(primary_record, why), evidence=evidence, numbers=fit, figures=figures))
    return claims


__all__ = ["COUNT_PREDICTORS", "PIXELS", "PRIMARY_SOURCE", "SOURCES", "TEST_FEATURES", "TRAINING_FEATURES", "TABLE1_REFERENCE", "average_tables", "balanced_overrides",
           "best_count_predictor", "correlation_sources", "imbalance_table", "load_setting_runs", "setting_overrides",
           "source_slug", "table1_claims", "table1_comparison", "table1_verdict"]
