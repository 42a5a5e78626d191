"""The marginal effect of semantic scale (Sec. 3.3; notebook 01): sample volumes of nested sample-balanced
subsets, models trained on some of them, and our quantification of the paper's shapes (docs/paper-notes.md §4).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..data import ImageArrays, load_dataset, nested_balanced_indices
from ..scale import class_semantic_scales, effective_number, resize_images
from ..training import embed_run, load_run, make_config, split_dataset_name, training_images
from ..training.trainer import train_or_reuse
from .notebook import prepare_out_dir

def fit_stats(x, y) -> dict:
    """Pearson r, its p-value and R² (= r², of the least-squares line) of ``y`` on ``x`` (both (n,)).

    NaN everywhere (and ``defined=False``) when either vector is constant or n < 3.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got {x.shape} and {y.shape}")
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"n": len(x), "r": np.nan, "r2": np.nan, "p": np.nan, "defined": False}
    result = stats.pearsonr(x, y)
    r = float(result.statistic)
    return {"n": len(x), "r": r, "r2": r * r, "p": float(result.pvalue), "defined": True}


def nested_sample_volumes(data: ImageArrays, sizes: Sequence[int], *, seed: int, size: int = 16,
                          eps: float = 1.0) -> pd.DataFrame:
    """Per-class sample volume S′ (Algorithm 1) of nested sample-balanced subsets (Sec. 3.3).

    ``data``: an :class:`~semscale_lib.data.ImageArrays`; ``sizes``: samples per class m (each ≤ the smallest
    class). The subsets are nested (``nested_balanced_indices`` with ``seed``): samples are added, never redrawn.
    Returns a long DataFrame with columns m, class, name, semantic_scale (bits), sorted by m then class.
    """
    sizes = sorted({int(m) for m in sizes})
    resized = resize_images(data.images, size)
    subsets = nested_balanced_indices(data.labels, sizes, seed=seed, num_classes=data.num_classes)
    frames = []
    for m in sizes:
        idx = subsets[m]
        scales = class_semantic_scales(resized[idx], data.labels[idx], num_classes=data.num_classes, eps=eps)
        frames.append(pd.DataFrame({"m": m, "class": np.arange(data.num_classes), "name": data.classes,
                                    "semantic_scale": scales}))
    return pd.concat(frames, ignore_index=True)


def volume_totals(volumes: pd.DataFrame, column: str = "semantic_scale") -> pd.DataFrame:
    """Σ over classes of ``column`` per m, its mean and sd over classes, and the increment per added sample.

    Returns columns m, total, mean, sd, increment (Δtotal/Δm from the previous m; NaN for the first).
    """
    grouped = volumes.groupby("m", sort=True)[column]
    totals = pd.DataFrame({"total": grouped.sum(), "mean": grouped.mean(), "sd": grouped.std(ddof=1)}).reset_index()
    totals["increment"] = totals["total"].diff() / totals["m"].diff()
    return totals


def concavity(m, values) -> dict:
    """Do the increments per added sample shrink? ``m`` increasing (k,), ``values`` (k,) → dict with
    ``increments`` (k−1,), ``shrinking`` (k−2,) booleans, ``fraction_shrinking`` and ``concave`` (all shrink)."""
    m, v = np.asarray(m, np.float64), np.asarray(values, np.float64)
    if m.shape != v.shape or m.ndim != 1 or len(m) < 3 or np.any(np.diff(m) <= 0):
        raise ValueError("concavity needs ≥ 3 strictly increasing m with one value each")
    inc = np.diff(v) / np.diff(m)
    shrinking = np.diff(inc) <= 0
    return {"increments": inc, "shrinking": shrinking, "fraction_shrinking": float(shrinking.mean()),
            "concave": bool(shrinking.all())}


def saturation_point(m, totals, level: float = 0.95):
    """Ours: the smallest m at which ``totals`` reaches ``level`` × its value at the largest m, or None when only
    the largest m does (no saturation inside the measured range). ``m`` increasing (k,), ``totals`` (k,)."""
    m, t = np.asarray(m), np.asarray(totals, np.float64)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    reached = np.flatnonzero(t >= level * t[-1])
    first = int(reached[0])
    return None if first == len(m) - 1 else int(m[first])


def marginal_effect_verdict(volumes: pd.DataFrame, accuracy: pd.DataFrame, *, level: float = 0.95,
                            rise_tol: float = 0.01, concave_fraction: float = 1.0) -> dict:
    """Decide the marginal-effect claim (Sec. 3.3) from measured numbers.

    ``volumes``: :func:`nested_sample_volumes` output; ``accuracy``: columns m, top1 (mean over seeds per m).
    Falsified if S′(m) is not concave and saturating (its increments do not shrink), or accuracy keeps rising
    after Σ S′ has saturated. Ours: "concave" = the increments of Σ S′ per added sample shrink at a fraction
    ≥ ``concave_fraction`` of the steps; "saturated" = :func:`saturation_point` at ``level``; "keeps rising" =
    top-1 gains more than ``rise_tol`` between the first trained m ≥ the saturation point and the largest
    trained m. Returns a dict with the pieces and ``verdict`` ∈ :data:`VERDICTS` and a one-sentence ``sentence``.
    """
    totals = volume_totals(volumes)
    shape = concavity(totals["m"], totals["total"])
    per_class = [concavity(g["m"], g["semantic_scale"])["concave"] for _, g in volumes.groupby("class")]
    m_sat = saturation_point(totals["m"], totals["total"], level)
    acc = accuracy.groupby("m", sort=True)["top1"].mean()
    concave_ok = shape["fraction_shrinking"] >= concave_fraction
    after = acc[acc.index >= m_sat] if m_sat is not None else acc.iloc[0:0]
    gain_after = float(after.iloc[-1] - after.iloc[0]) if len(after) >= 2 else np.nan
    if not concave_ok or m_sat is None:
        verdict = "not held"
        why = ("the increments of Σ S′ do not shrink" if not concave_ok
               else f"Σ S′ does not reach {level:.0%} of its final value before the largest m")
    elif not np.isfinite(gain_after):
        verdict = "not testable"
        why = (f"Σ S′ saturates at m = {m_sat}, but fewer than two models were trained at m ≥ {m_sat}, so "
               "whether accuracy keeps rising afterwards is untested")
    elif gain_after > rise_tol:
        verdict = "not held"
        why = (f"Σ S′ saturates at m = {m_sat} ({level:.0%} of its final value) but top-1 still rises by "
               f"{gain_after:+.3f} from m = {after.index[0]} to m = {after.index[-1]} (tolerance {rise_tol:.3f})")
    else:
        verdict = "held"
        why = (f"Σ S′ saturates at m = {m_sat} ({level:.0%} of its final value) and top-1 changes by only "
               f"{gain_after:+.3f} from m = {after.index[0]} to m = {after.index[-1]} (tolerance {rise_tol:.3f})")
    return {"verdict": verdict, "sentence": why, "saturation_m": m_sat, "level": level,
            "fraction_shrinking": shape["fraction_shrinking"], "concave_total": shape["concave"],
            "classes_concave": float(np.mean(per_class)), "gain_after_saturation": gain_after,
            "rise_tol": rise_tol}


def marginal_effect_correlations(accuracy: pd.DataFrame, totals: pd.DataFrame, *,
                                 betas: Sequence[float] = (0.9, 0.99, 0.999, 0.9999),
                                 feature_totals: pd.DataFrame | None = None) -> pd.DataFrame:
    """Ours: Pearson r and R² of top-1 (mean over seeds per trained m) against Σ S′ (pixels), against m, against
    E_m for each β and, when given, against Σ S′ of each subset's own model's features (columns m, total).

    Returns one row per predictor: predictor, n, r, r2, p, defined.
    """
    acc = accuracy.groupby("m", sort=True)["top1"].mean()
    ms = acc.index.to_numpy()
    total = totals.set_index("m")["total"]
    missing = set(ms) - set(total.index)
    if missing:
        raise ValueError(f"no sample volume for trained m = {sorted(missing)}")
    predictors = {"Σ S′ (pixels)": total.loc[ms].to_numpy(), "m": ms.astype(np.float64)}
    if feature_totals is not None:
        predictors["Σ S′ (features of its own model)"] = \
            feature_totals.groupby("m", sort=True)["total"].mean().loc[ms].to_numpy()
    for beta in betas:
        predictors[f"E_m (β={beta:g})"] = effective_number(ms, beta)
    rows = [{"predictor": name, **fit_stats(values, acc.to_numpy())} for name, values in predictors.items()]
    return pd.DataFrame(rows)


def train_subsets(train_sizes: Sequence[int], seeds: Sequence[int], out_dir, *, preset: str | None = None,
                  min_steps: int = 0, progress: bool = False, **overrides) -> pd.DataFrame:
    """Train one model from scratch per nested sub-dataset (m per class) and seed, through the one trainer.

    Each run is ``train()`` with ``subset_per_class=m`` (nested draws seeded by ``split_seed``, the same draws
    as :func:`nested_sample_volumes` with that seed), ``preset`` and ``overrides`` (dataset, model, epochs,
    reweight, ...), evaluated on the test set once, after training. Ours: small subsets get more epochs so that
    every model takes at least ``min_steps`` optimizer steps (epochs = max(epochs, ⌈min_steps / batches per
    epoch⌉)). Runs go to ``<out_dir>/m<m>-seed<s>/`` (a finished run there with the same settings is reused).

    Returns one row per run: m, seed, top1, epochs, steps, feature_total (Σ over classes of S′ of the model's
    embeddings of its own training subset, bits), seconds (training time), run_dir.
    """
    out = prepare_out_dir(out_dir)
    rows = []
    for m in train_sizes:
        for seed in seeds:
            settings = {**overrides, "subset_per_class": int(m), "seed": int(seed), "eval_every": 0}
            config = make_config(preset, **settings)
            batches_per_epoch = math.ceil(int(m) * _num_classes(config) / config.batch_size)
            epochs = max(config.epochs, math.ceil(min_steps / batches_per_epoch))
            config = make_config(preset, **{**settings, "epochs": epochs})
            folder = train_or_reuse(config, out / f"m{m}-seed{seed}", progress=progress)
            run = load_run(folder)
            images = training_images(run)
            features = embed_run(folder, images)
            rows.append({"m": int(m), "seed": int(seed), "top1": float(run["metrics"]["top1"].iloc[-1]),
                         "epochs": config.epochs, "steps": config.epochs * batches_per_epoch,
                         "feature_total": float(class_semantic_scales(features, images.labels).sum()),
                         "seconds": float(run["metrics"]["seconds"].sum()), "run_dir": str(folder)})
    return pd.DataFrame(rows)


def _num_classes(config) -> int:
    """Classes of the config's dataset (from its test set, the smaller file)."""
    return load_dataset(split_dataset_name(config.dataset)[0], train=False, root=config.data_root).num_classes


__all__ = ["concavity", "fit_stats", "marginal_effect_correlations", "marginal_effect_verdict",
           "nested_sample_volumes", "saturation_point", "train_subsets", "volume_totals"]
