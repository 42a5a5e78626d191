"""Beyond the paper (notebook 06): which per-class geometry tracks per-class accuracy across datasets, models and
seeds, and which quantity the DSB weights a ∝ 1/q should be made from. Our question, not a claim of the paper;
the design is in docs/paper-notes.md §13.

A *study* is one (dataset, model, setting) with its runs (seeds). Per study, every predictor of
:data:`PREDICTORS` is computed per class on one kind of vectors (the trained models' embeddings of their own
training images — the primary source, as in notebook 02 — or the training pixels), averaged over the seeds, and
correlated over classes with per-class accuracy (Pearson and Spearman). The studies are pooled per predictor by a
random-effects meta-analysis of Fisher-z values (:func:`semscale_lib.meta.pooled_correlation`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..difficulty import DIFFICULTY_MEASURES, class_difficulty_table
from ..dsb import dsb_targets
from ..imbalance import quantify_imbalance, with_alpha
from ..meta import R_CLIP, pooled_correlation_by_group
from ..scale import effective_number, resize_images
from ..training import embed_run, training_images
from ..verdicts import pooled_correlation_verdict
from .claims import claim_record
from .correlation import PIXELS, TRAINING_FEATURES, load_setting_runs

PRIMARY_SOURCE = TRAINING_FEATURES   # the models' embeddings of their own training images
SENSITIVITY_SOURCE = PIXELS          # the training images themselves

#: name → what it is. Geometry of Sec. 3 (the paper's quantities), then established class-difficulty measures
#: (semscale_lib.difficulty). Every one is oriented so that a larger value is expected to mean an easier class,
#: except N / E_n (counts) and effective_rank, whose direction is an open question.
PREDICTORS: dict[str, str] = {
    "N": "training images of the class (Sec. 3.4.1)",
    "E_n": "effective number (1 − β^N)/(1 − β), β = 0.9999 (Cui et al. 2019)",
    "S'": "sample volume S′/max S′ (Sec. 3.2, Eq. 1–2)",
    "W": "inter-class term log₂(1 + W′) (Sec. 3.4.1)",
    "S (alpha=1)": "imbalance scale S = S′/max ⊙ log₂(1 + W′) (Sec. 3.4.1)",
    "S (alpha=2)": "imbalance scale S = S′/max ⊙ log₂(2 + W′) (Sec. 3.4.1)",
    "knn_accuracy": "leave-one-out 5-NN accuracy of the class (semscale_lib.difficulty.knn_accuracy)",
    "fisher_ratio": "between- over within-class scatter (semscale_lib.difficulty.fisher_ratio)",
    "nearest_centre": "distance to the nearest other class mean / RMS radius (difficulty.nearest_centre_distance)",
    "effective_rank": "effective rank of the class covariance (semscale_lib.difficulty.effective_rank)",
}
# semscale_lib.difficulty.silhouette is left out on purpose: O(N²·d) like k-NN accuracy, ~4× its cost on 20,000
# vectors, and it measures the same neighbourhood overlap; it stays available as a DSB target.
#: Predictors a DSB run can be weighted by (computed on the storage pool); the map gives the DSB target name.
DSB_TARGET_OF = {"S (alpha=2)": "S", "S'": "S'", "W": "W", **{name: name for name in DIFFICULTY_MEASURES}}


def predictor_table(vectors, labels, *, counts, beta: float = 0.9999, device=None) -> pd.DataFrame:
    """Every predictor of :data:`PREDICTORS` per class, from vectors (N, d) with labels (N,) and the training
    ``counts`` (C,). One row per class: ``class`` then one column per predictor (W at α = 1). ``device``: where S′
    and the difficulty measures are computed (None: the CPU; "auto": CUDA when present)."""
    counts = np.asarray(counts)
    num_classes = len(counts)
    table = quantify_imbalance(vectors, labels, alpha=1.0, num_classes=num_classes, device=device)
    out = pd.DataFrame({"class": np.arange(num_classes), "N": counts.astype(np.float64),
                        "E_n": effective_number(counts, beta), "S'": table["normalized_scale"].to_numpy(),
                        "W": table["interclass"].to_numpy()})
    for alpha in (1.0, 2.0):
        out[f"S (alpha={alpha:g})"] = with_alpha(table, alpha).to_numpy()
    measures = [name for name in DIFFICULTY_MEASURES if name in PREDICTORS]
    difficulty = class_difficulty_table(vectors, labels, num_classes, measures=measures,
                                        device="cpu" if device is None else device)
    for name in measures:
        out[name] = difficulty[name].to_numpy()
    return out[["class", *[p for p in PREDICTORS if p in out]]]


def study_tables(run_dirs: Sequence, *, source: str = PRIMARY_SOURCE, image_size: int = 16, device=None) -> dict:
    """Predictors and per-class accuracies of one study (its runs = seeds).

    ``source``: :data:`PRIMARY_SOURCE` (each run's final model embeds its own training images; each predictor is
    averaged over the runs) or :data:`SENSITIVITY_SOURCE` (the training pixels, resized to ``image_size``², once). Returns {"predictors": :func:`predictor_table` (mean over runs), "accuracy": per-class
    test top-1 (C,) mean over runs, "train_accuracy": per-class top-1 of the models on their own training images
    (C,) mean over runs — the selection data of :func:`choose_dsb_target`, "names", "counts"}. ``device`` (a
    notebook's ``device``): where the models embed and the predictors are computed; None: each run's own device
    for embedding, the CPU for the predictors."""
    if source not in (PRIMARY_SOURCE, SENSITIVITY_SOURCE):
        raise ValueError(f"unknown source {source!r}; valid: {PRIMARY_SOURCE!r}, {SENSITIVITY_SOURCE!r}")
    runs, counts, accuracy = load_setting_runs(run_dirs)
    tables, train_accuracy = [], []
    for run_dir, run in zip(run_dirs, runs):
        images = training_images(run)
        features, predicted = embed_run(run_dir, images, with_predictions=True, device=device)
        hits = np.bincount(images.labels, weights=(predicted == images.labels), minlength=len(counts))
        train_accuracy.append(hits / np.maximum(np.bincount(images.labels, minlength=len(counts)), 1))
        if source == PRIMARY_SOURCE:
            tables.append(predictor_table(features, images.labels, counts=counts, device=device))
        elif not tables:
            tables.append(predictor_table(resize_images(images.images, image_size), images.labels, counts=counts,
                                          device=device))
    names = list(images.classes)   # the runs of one setting share their classes
    mean = tables[0].copy()
    columns = [c for c in mean.columns if c != "class"]
    mean[columns] = sum(t[columns].to_numpy(np.float64) for t in tables) / len(tables)
    return {"predictors": mean, "accuracy": accuracy,
            "train_accuracy": np.mean(train_accuracy, axis=0), "names": names, "counts": counts}


def study_correlations(predictors: pd.DataFrame, accuracy) -> pd.DataFrame:
    """Pearson r and Spearman ρ over classes of ``accuracy`` (C,) with every predictor column of ``predictors``.
    One row per predictor: predictor, n (classes), pearson_r, spearman_rho, defined (False for a constant column,
    e.g. N on balanced data: no number is made up)."""
    accuracy = np.asarray(accuracy, dtype=np.float64)
    rows = []
    for name in [c for c in predictors.columns if c != "class"]:
        values = predictors[name].to_numpy(np.float64)
        ok = np.isfinite(values)
        defined = ok.sum() > 3 and np.ptp(values[ok]) > 0 and np.ptp(accuracy[ok]) > 0
        rows.append({"predictor": name, "n": int(ok.sum()),
                     "pearson_r": float(stats.pearsonr(values[ok], accuracy[ok]).statistic) if defined else np.nan,
                     "spearman_rho": float(stats.spearmanr(values[ok], accuracy[ok]).statistic) if defined
                     else np.nan, "defined": bool(defined)})
    return pd.DataFrame(rows)


def pooled_ranking(correlations: pd.DataFrame, *, column: str = "pearson_r", method: str = "dl",
                   confidence: float = 0.95) -> pd.DataFrame:
    """Pooling, per predictor, of the per-study correlations ``column`` (rows: study, dataset, predictor, n,
    ``column``, defined). Studies of one dataset share its classes and test images, so they are not independent:
    they are combined within the dataset first and the datasets pooled by random effects with the Hartung–Knapp
    t interval (:func:`semscale_lib.meta.pooled_correlation_by_group`; k = datasets). Studies where the predictor is
    undefined are left out; a predictor defined on one dataset only gets its studies' mean Fisher z back-transformed
    as r and no interval (its verdict is then "not testable"). Returns one row per predictor,
    sorted by the pooled r (highest first): predictor, k (datasets), studies, r, ci_low, ci_high (at
    ``confidence``), se_z, tau2, i2 (fraction), q_p."""
    rows = []
    for name, part in correlations.groupby("predictor", sort=False):
        part = part[part["defined"]]
        row = {"predictor": name, "k": part["dataset"].nunique(), "studies": len(part)}
        if part["dataset"].nunique() >= 2:
            result = pooled_correlation_by_group(part[column].to_numpy(), part["n"].to_numpy(),
                                                 part["dataset"].tolist(), method=method,
                                                 labels=part["study"].tolist(), confidence=confidence)
            row.update(r=result.estimate, ci_low=result.ci_low, ci_high=result.ci_high, se_z=result.se_z,
                       tau2=result.tau2, i2=result.i2, q_p=result.q_p)
        else:   # one dataset: its studies' mean Fisher z as the estimate, no interval (nothing independent to pool)
            r = float(np.tanh(np.arctanh(np.clip(part[column].to_numpy(np.float64), -R_CLIP, R_CLIP)).mean())) \
                if len(part) else np.nan
            row.update(r=r, ci_low=np.nan, ci_high=np.nan, se_z=np.nan, tau2=np.nan, i2=np.nan, q_p=np.nan)
        rows.append(row)
    return pd.DataFrame(rows).sort_values("r", ascending=False, na_position="last").reset_index(drop=True)


def forest_table(correlations: pd.DataFrame, predictor: str, *, method: str = "dl",
                 confidence: float = 0.95) -> pd.DataFrame:
    """One predictor's studies and their pooled estimate (by dataset, :func:`pooled_ranking`'s pooling), for
    :func:`semscale_lib.plotting.forest_figure`: columns study, r, ci_low, ci_high, weight; the last row is
    ``study == "pooled"``."""
    part = correlations[(correlations["predictor"] == predictor) & correlations["defined"]]
    if part["dataset"].nunique() < 2:
        raise ValueError(f"{predictor!r} is defined on {part['dataset'].nunique()} datasets; pooling needs ≥ 2")
    result = pooled_correlation_by_group(part["pearson_r"].to_numpy(), part["n"].to_numpy(), part["dataset"].tolist(),
                                         method=method, labels=part["study"].tolist(), confidence=confidence)
    studies = result.studies.rename(columns={"label": "study"})[["study", "r", "ci_low", "ci_high", "weight"]]
    pooled = pd.DataFrame([{"study": "pooled", "r": result.estimate, "ci_low": result.ci_low,
                            "ci_high": result.ci_high, "weight": 1.0}])
    return pd.concat([studies, pooled], ignore_index=True)


def choose_dsb_target(selection: pd.DataFrame) -> tuple[str | None, str | None]:
    """The predictor to weight DSB by, chosen on training data only: the highest pooled r in ``selection``
    (:func:`pooled_ranking` of the correlations with per-class *training* accuracy) among predictors a DSB run
    can compute (:data:`DSB_TARGET_OF`) with a positive pooled r. Returns (predictor, DSB target name), or
    (None, None) when no such predictor has a positive r: models that fit every training image leave per-class
    training accuracy flat, and every r undefined."""
    usable = selection[selection["predictor"].isin(DSB_TARGET_OF) & (selection["r"] > 0)]
    if usable.empty:
        return None, None
    best = usable.sort_values("r", ascending=False).iloc[0]["predictor"]
    target = DSB_TARGET_OF[best]
    if target not in dsb_targets():
        raise ValueError(f"predictor {best!r} maps to {target!r}, which DSB cannot compute")
    return best, target


def ranking_claims(ranking: pd.DataFrame, correlations: pd.DataFrame, *, confidence: float, data: str,
                   figures: Sequence[str] = ()) -> list[dict]:
    """One "beyond the paper" claim record per predictor of ``ranking`` (:func:`pooled_ranking`): "per-class
    accuracy rises with it across datasets", decided by :func:`~semscale_lib.verdicts.pooled_correlation_verdict`
    at ``confidence`` with the Hartung–Knapp interval over the datasets; each study's r is an evidence row."""
    claims = []
    for row in ranking.itertuples(index=False):
        record = pooled_correlation_verdict(row.r, row.ci_low, row.ci_high, k=row.k, i2=row.i2, confidence=confidence,
                                            se_z=row.se_z if np.isfinite(row.se_z) else None, interval="hk",
                                            unit="datasets")
        part = correlations[correlations["predictor"] == row.predictor]
        evidence = [{"study": s.study, "pearson": s.pearson_r, "spearman": s.spearman_rho, "defined": s.defined}
                    for s in part.itertuples(index=False)]
        paper = ("Table 1 (CIFAR-10 / -LT, one dataset at a time): r(acc, S) = 0.56–0.99"
                 if row.predictor.startswith("S (") else "not in the paper (our question)")
        claims.append(claim_record(
            claim_id=f"tracks-{row.predictor}", claim=f"per-class accuracy rises with {row.predictor} across "
            f"datasets ({PREDICTORS.get(row.predictor, row.predictor)})", section="ours, beyond Sec. 3.4",
            paper=paper, paper_value=None, dataset="pooled", data=data, record=record, evidence=evidence,
            figures=figures, scope="beyond"))
    return claims


#: The DSB targets every weighting comparison has: the paper's S and its two parts.
WEIGHTING_TARGETS = ("S", "S'", "W")


def weighting_methods(best_target: str | None, *, loss: str = "ce") -> dict[str, dict]:
    """The arms of the weighting comparison: plain ``loss``, LDAM-DRW, and DSB (``loss``, same pool and stages)
    with a ∝ 1/S (the paper), 1/S′, 1/W and 1/``best_target`` (omitted when it is None or one of those three)."""
    methods = {"CE" if loss == "ce" else loss: {"loss": loss, "reweight": "none"},
               "LDAM-DRW": {"loss": "ldam", "reweight": "drw"}}
    targets = list(dict.fromkeys([*WEIGHTING_TARGETS, *([best_target] if best_target else [])]))
    for target in targets:
        methods[f"DSB-{target}"] = {"loss": loss, "reweight": "dsb", "dsb_target": target}
    return methods


def chosen_arm_unchecked(claims: Sequence[Mapping], best_target: str | None) -> list[dict]:
    """``claims`` (copies), those of the arm weighted by ``best_target`` marked ``checked: False`` when it is not one
    of the paper's three (S, S′, W): which predictor wins on training accuracy depends on trained numbers, so that
    arm may be another one on another machine, and its claims are shown but left out of the checked blocks
    (:meth:`~semscale_lib.studies.tolerance.CheckedBlock.claims`)."""
    arm = f"DSB-{best_target}" if best_target not in (None, *WEIGHTING_TARGETS) else None

    def arms(claim_id: str) -> list[str]:      # "weights-{method}-vs-{baseline}" (ranking claims have no arms)
        return claim_id.removeprefix("weights-").split("-vs-") if claim_id.startswith("weights-") else []
    return [{**c, "checked": False} if arm and arm in arms(str(c["claim_id"])) else dict(c) for c in claims]


def weighting_pairs(methods: Mapping[str, Mapping]) -> list[tuple[str, str]]:
    """The comparisons, all counted: every DSB arm against the plain loss; every other DSB arm against the
    paper's DSB-S; every DSB arm against LDAM-DRW."""
    plain = next(name for name, m in methods.items() if m["reweight"] == "none")
    dsb = [name for name, m in methods.items() if m["reweight"] == "dsb"]
    pairs = [(name, plain) for name in dsb]
    pairs += [(name, "DSB-S") for name in dsb if name != "DSB-S"]
    pairs += [(name, "LDAM-DRW") for name in dsb if "LDAM-DRW" in methods]
    return pairs


__all__ = ["DSB_TARGET_OF", "PREDICTORS", "PRIMARY_SOURCE", "SENSITIVITY_SOURCE", "WEIGHTING_TARGETS",
           "choose_dsb_target", "chosen_arm_unchecked", "forest_table", "pooled_ranking", "predictor_table",
           "ranking_claims", "study_correlations", "study_tables", "weighting_methods", "weighting_pairs"]
