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
from ..training.trainer import run_folder_name, train_or_reuse
from ..verdicts import negligible_gain_verdict
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


def capped_sizes(sizes: Sequence[int], labels, num_classes: int | None = None) -> list[int]:
    """Samples per class m that every class can give: the sizes below the smallest class's count, plus that count
    itself (so a dataset with unequal classes, e.g. MNIST, is measured up to its largest balanced subset)."""
    counts = np.bincount(np.asarray(labels), minlength=num_classes or 0)
    smallest = int(counts.min())
    if smallest < 1:
        raise ValueError("a class has no sample")
    return sorted({int(m) for m in sizes if 1 <= int(m) < smallest} | {smallest})


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


def marginal_effect_verdict(volumes: pd.DataFrame, training: pd.DataFrame, *, level: float = 0.95,
                            margin: float = 0.01, concave_fraction: float = 1.0, confidence: float = 0.95) -> dict:
    """Decide the marginal-effect claim (Sec. 3.3; our rule, docs/paper-notes.md §4) from measured numbers.

    ``volumes``: :func:`nested_sample_volumes` output; ``training``: columns m, seed, top1 (one row per model).
    The premise: Σ S′ is concave (its increments per added sample shrink at a fraction ≥ ``concave_fraction`` of
    the steps) and saturates (:func:`saturation_point` at ``level`` lies inside the measured range). The test: the
    top-1 gained from the first trained m ≥ the saturation point to the largest trained m, paired by seed, by
    :func:`~semscale_lib.verdicts.negligible_gain_verdict` with ``margin`` (a gain below it is negligible).

    Returns a dict: ``record`` (the verdict record), ``verdict``, ``sentence``, ``saturation_m``, ``level``,
    ``fraction_shrinking``, ``concave_total``, ``classes_concave``, ``compared`` ((m before, m after) or None).
    """
    totals = volume_totals(volumes)
    shape = concavity(totals["m"], totals["total"])
    per_class = [concavity(g["m"], g["semantic_scale"])["concave"] for _, g in volumes.groupby("class")]
    m_sat = saturation_point(totals["m"], totals["total"], level)
    failed = None
    if shape["fraction_shrinking"] < concave_fraction:
        failed = f"the increments of Σ S′ shrink at only {shape['fraction_shrinking']:.0%} of the steps"
    elif m_sat is None:
        failed = f"Σ S′ does not reach {level:.0%} of its final value before the largest m"
    after = sorted(m for m in training["m"].unique() if m_sat is not None and m >= m_sat)
    compared = (int(after[0]), int(after[-1])) if len(after) >= 2 else None
    before_top1 = after_top1 = []
    if compared is not None:
        by_seed = training.pivot_table(index="seed", columns="m", values="top1").dropna(subset=list(compared))
        before_top1, after_top1 = by_seed[compared[0]].to_numpy(), by_seed[compared[1]].to_numpy()
    record = negligible_gain_verdict(before_top1, after_top1, margin=margin, confidence=confidence,
                                     failed_precondition=failed)
    if failed is None and compared is None:
        sentence = (f"Σ S′ saturates at m = {m_sat}, but fewer than two sub-dataset sizes were trained at "
                    f"m ≥ {m_sat}: {record.verdict}")
    elif failed is None:
        sentence = (f"Σ S′ saturates at m = {m_sat} ({level:.0%} of its final value); top-1 from "
                    f"m = {compared[0]} to m = {compared[1]}: "
                    + record.sentence[0].lower() + record.sentence[1:].rstrip("."))
    else:
        sentence = record.sentence.rstrip(".")
    return {"record": record, "verdict": record.verdict, "sentence": sentence, "saturation_m": m_sat,
            "level": level, "fraction_shrinking": shape["fraction_shrinking"], "concave_total": shape["concave"],
            "classes_concave": float(np.mean(per_class)), "compared": compared}


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


def train_subsets(train_sizes: Sequence[int], seeds: Sequence[int], out_dir, *, steps: int,
                  preset: str | None = None, progress: bool = False, **overrides) -> pd.DataFrame:
    """Train one model from scratch per nested sub-dataset (m per class) and seed, through the one trainer, each
    for exactly ``steps`` optimizer steps.

    Each run is ``train()`` with ``subset_per_class=m`` (nested draws seeded by ``split_seed``, the same draws
    as :func:`nested_sample_volumes` with that seed), ``preset`` and ``overrides`` (dataset, model, reweight, ...),
    evaluated on the test set once, after training. The same number of steps for every m, with the learning-rate
    schedule running over those steps (no warm-up), so every m sees the same learning rate at every step, removes
    the confound of data and training budget (docs/paper-notes.md §4): epochs = ⌈steps / batches per epoch⌉ and
    the last epoch stops at ``steps``. Runs go to ``<out_dir>/<run_folder_name(config)>/``, named by their settings,
    so ``out_dir`` may be the runs folder the notebooks share (a finished run there with the same settings is
    reused).

    Returns one row per run: m, seed, top1, epochs, steps, feature_total (Σ over classes of S′ of the model's
    embeddings of its own training subset, bits), seconds (training time), run_dir.
    """
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    out = prepare_out_dir(out_dir)
    rows = []
    num_classes = None
    for m in train_sizes:
        for seed in seeds:
            settings = {**overrides, "subset_per_class": int(m), "seed": int(seed), "eval_every": 0,
                        "max_steps": int(steps), "warmup_epochs": 0}
            config = make_config(preset, **settings)
            num_classes = num_classes or _num_classes(config)
            batches_per_epoch = math.ceil(int(m) * num_classes / config.batch_size)
            config = make_config(preset, **{**settings, "epochs": math.ceil(steps / batches_per_epoch)})
            folder = train_or_reuse(config, out / run_folder_name(config), progress=progress)
            run = load_run(folder)
            images = training_images(run)
            features = embed_run(folder, images)
            rows.append({"m": int(m), "seed": int(seed), "top1": float(run["metrics"]["top1"].iloc[-1]),
                         "epochs": config.epochs, "steps": int(steps),
                         "feature_total": float(class_semantic_scales(features, images.labels).sum()),
                         "seconds": float(run["metrics"]["seconds"].sum()), "run_dir": str(folder)})
    return pd.DataFrame(rows)


def _num_classes(config) -> int:
    """Classes of the config's dataset (from its test set, the smaller file)."""
    return load_dataset(split_dataset_name(config.dataset)[0], train=False, root=config.data_root).num_classes


__all__ = ["capped_sizes", "concavity", "fit_stats", "marginal_effect_correlations", "marginal_effect_verdict",
           "nested_sample_volumes", "saturation_point", "train_subsets", "volume_totals"]
