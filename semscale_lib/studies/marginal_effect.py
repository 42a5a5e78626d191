"""The marginal effect of semantic scale (Sec. 3.3; notebook 01): sample volumes of nested sample-balanced
subsets, models trained on some of them, and our quantification of the paper's shapes (docs/paper-notes.md §4).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..data import ImageArrays, load_dataset, nested_balanced_indices
from ..scale import class_semantic_scales, effective_number, resize_images
from ..training import embed_run, load_run, make_config, split_dataset_name, training_images
from ..training.trainer import run_folder_name, train_or_reuse
from ..verdicts import format_ci, paired_verdict
from .notebook import prepare_out_dir
from .plateau import run_summary

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
    """Samples per class m that every class can give: each size in ``sizes`` (m < 1 dropped), a size above the
    smallest class's count replaced by that count (so ``[5, 1000]`` on a dataset whose smallest class has 174 images
    is ``[5, 174]``, its largest balanced subset). Sizes that fit are kept as asked: the largest m is the largest
    size asked for, not the whole class. Sorted, each once."""
    counts = np.bincount(np.asarray(labels), minlength=num_classes or 0)
    smallest = int(counts.min())
    if smallest < 1:
        raise ValueError("a class has no sample")
    kept = {min(int(m), smallest) for m in sizes if int(m) >= 1}
    if not kept:
        raise ValueError(f"no size of {list(sizes)} is a positive number of samples per class")
    return sorted(kept)


def nested_sample_volumes(data: ImageArrays, sizes: Sequence[int], *, seed: int, size: int = 16,
                          eps: float = 1.0, device=None) -> pd.DataFrame:
    """Per-class sample volume S′ (Algorithm 1) of nested sample-balanced subsets (Sec. 3.3).

    ``data``: an :class:`~semscale_lib.data.ImageArrays`; ``sizes``: samples per class m (each ≤ the smallest
    class). The subsets are nested (``nested_balanced_indices`` with ``seed``): samples are added, never redrawn.
    Returns a long DataFrame with columns m, class, name, semantic_scale (bits), sorted by m then class.
    ``device``: where S′ is computed (:func:`~semscale_lib.scale.class_semantic_scales`; None: the CPU).
    """
    sizes = sorted({int(m) for m in sizes})
    resized = resize_images(data.images, size)
    subsets = nested_balanced_indices(data.labels, sizes, seed=seed, num_classes=data.num_classes)
    frames = []
    for m in sizes:
        idx = subsets[m]
        scales = class_semantic_scales(resized[idx], data.labels[idx], num_classes=data.num_classes, eps=eps,
                                       device=device)
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


#: [ours] The gain after Σ S′ saturates is "small next to the gain before" when it is below this fraction of it.
RELATIVE_MARGIN = 0.25


def design_sizes(train_sizes: Sequence[int], saturation_m: int | None) -> list[int]:
    """The sub-dataset sizes to train: ``train_sizes`` (at least the smallest and the largest m) with the saturation
    point of Σ S′ added, so that both parts of the claim have their three points (smallest m, saturation, largest m).
    Sorted, each once."""
    sizes = {int(m) for m in train_sizes}
    if saturation_m is not None and min(sizes) < saturation_m < max(sizes):
        sizes.add(int(saturation_m))
    return sorted(sizes)


def premise(volumes: pd.DataFrame, *, level: float = 0.95, concave_fraction: float = 1.0) -> dict:
    """The claim's premise, on the data alone (no model): Σ S′ is concave (its increments per added sample shrink
    at a fraction ≥ ``concave_fraction`` of the steps) and saturates inside the measured range
    (:func:`saturation_point` at ``level``). Returns saturation_m, fraction_shrinking, concave_total,
    classes_concave (fraction of classes whose own S′(m) is concave) and failed (why the premise fails, or None)."""
    totals = volume_totals(volumes)
    shape = concavity(totals["m"], totals["total"])
    per_class = [concavity(g["m"], g["semantic_scale"])["concave"] for _, g in volumes.groupby("class")]
    m_sat = saturation_point(totals["m"], totals["total"], level)
    failed = None
    if shape["fraction_shrinking"] < concave_fraction:
        failed = f"the increments of Σ S′ shrink at only {shape['fraction_shrinking']:.0%} of the steps"
    elif m_sat is None:
        failed = f"Σ S′ does not reach {level:.0%} of its final value before the largest m"
    return {"saturation_m": m_sat, "level": level, "fraction_shrinking": shape["fraction_shrinking"],
            "concave_total": shape["concave"], "classes_concave": float(np.mean(per_class)), "failed": failed}


def marginal_effect_verdict(volumes: pd.DataFrame, training: pd.DataFrame, *, level: float = 0.95,
                            relative_margin: float = RELATIVE_MARGIN, concave_fraction: float = 1.0,
                            confidence: float = 0.95, withheld_because: str | None = None) -> dict:
    """Both parts of the marginal-effect claim (Sec. 3.3; our rule, docs/paper-notes.md §4), paired by seed, top-1
    in points (``training``: columns m, seed, top1 as a fraction; one row per model):

    1. *rise*: top-1 rises from the smallest trained m to the saturation point m_s of Σ S′ (the first trained m at
       or after it) — :func:`~semscale_lib.verdicts.paired_verdict`: held if the CI of the gain lies above 0;
    2. *flat*: the gain from m_s to the largest trained m is small next to the gain before it — the paired
       difference ``relative_margin`` · gain_before − gain_after: held if its CI lies above 0 (the gain after is
       below that fraction of the gain before), contradicted if below 0.

    A premise that fails (:func:`premise`: Σ S′ not concave or not saturating in the measured range), too few
    trained sizes around m_s, or ``withheld_because`` (e.g. models not at their plateau) makes both parts "not
    testable" — never "contradicted". Returns {"premise": …, "compared": (smallest, m_s, largest) or None,
    "rise": record, "flat": record, "sentence": str}."""
    from ..verdicts import withheld

    state = premise(volumes, level=level, concave_fraction=concave_fraction)
    m_sat = state["saturation_m"]
    trained = sorted(int(m) for m in training["m"].unique())
    after = [m for m in trained if m_sat is not None and m >= m_sat]
    before = [m for m in trained if m_sat is not None and m < m_sat]
    compared = (before[0], after[0], after[-1]) if before and len(after) >= 2 else None
    reason = state["failed"] or withheld_because
    if reason is None and compared is None:
        reason = (f"the trained sizes {trained} do not bracket the saturation point m = {m_sat}: the claim needs one "
                  "m below it and two at or above it")
    by_seed = (training.pivot_table(index="seed", columns="m", values="top1").dropna(subset=list(compared))
               if compared else None)
    small, sat, large = ((100 * by_seed[m].to_numpy() for m in compared) if compared else
                         (np.zeros(0), np.zeros(0), np.zeros(0)))
    rise = paired_verdict(small, sat, confidence=confidence)
    flat = paired_verdict(large - sat, relative_margin * (sat - small), confidence=confidence)
    if reason:
        rise, flat = withheld(rise, reason), withheld(flat, reason)
    if compared:
        sentence = (f"Σ S′ saturates at m = {m_sat} ({level:.0%} of its final value). From m = {compared[0]} to "
                    f"{compared[1]} top-1 gains {rise.estimate:+.2f} points (95 % CI "
                    f"{format_ci(rise.ci_low, rise.ci_high)}): {rise.verdict}; from m = {compared[1]} to "
                    f"{compared[2]} it gains {float(np.mean(large - sat)):+.2f} points, and "
                    f"{relative_margin:g} × the gain before minus the gain after is {flat.estimate:+.2f} "
                    f"({format_ci(flat.ci_low, flat.ci_high)}): {flat.verdict}")
    else:
        sentence = f"Not testable: {reason}"
    return {"premise": state, "compared": compared, "rise": rise, "flat": flat, "sentence": sentence}


def marginal_effect_claims(verdict: Mapping, *, dataset: str, data: str, relative_margin: float = RELATIVE_MARGIN,
                           fit: Mapping | None = None, figures: Sequence[str] = ()) -> list[dict]:
    """The two claim records of :func:`marginal_effect_verdict` (rise and flat), with the premise numbers and
    ``fit`` (how well the models were trained) in their numbers."""
    from .claims import claim_record

    numbers = {**{k: v for k, v in verdict["premise"].items() if k != "failed"}, "compared": verdict["compared"],
               **dict(fit or {})}
    paper = "shapes only: S′(m) rises quickly then saturates; accuracy improves little once Σ S′ saturates"
    return [
        claim_record(claim_id="marginal-effect-rise", claim="accuracy rises while Σ S′ rises (smallest m → its "
                     "saturation point)", section="Sec. 3.3", dataset=dataset, paper=paper, data=data,
                     record=verdict["rise"], numbers=numbers, figures=figures),
        claim_record(claim_id="marginal-effect-flat", claim=f"after Σ S′ saturates, accuracy gains less than "
                     f"{relative_margin:g} × what it gained before", section="Sec. 3.3", dataset=dataset,
                     paper=paper, data=data, record=verdict["flat"], numbers=numbers, figures=figures),
    ]


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


def train_subsets(train_sizes: Sequence[int], seeds: Sequence[int], out_dir, *, min_epochs: int,
                  min_steps: int = 0, preset: str | None = None, progress: bool = False, **overrides) -> pd.DataFrame:
    """Train one model from scratch per nested sub-dataset (m per class) and seed, through the one trainer.

    Each run is ``train()`` with ``subset_per_class=m``, the nested draw seeded by the run's own seed (so the subsets
    vary with the seed while staying nested within it), ``preset`` and ``overrides`` (dataset, model, ...). Every m
    trains long enough to reach its plateau: ``min_epochs`` epochs, more when that is fewer than ``min_steps``
    optimizer steps (a small sub-dataset needs more epochs for the same number of updates); the studies check the
    budget by doubling it (:func:`~semscale_lib.studies.plateau.budget_check`). Runs go to
    ``<out_dir>/<run_folder_name(config)>/``, named by their settings.

    Returns one row per run: m, seed, top1 (test), train_top1, val_top1 (fractions), epochs, feature_total (Σ over
    classes of S′ of the model's embeddings of its own training subset, bits), seconds (training time), run_dir.
    """
    out = prepare_out_dir(out_dir)
    rows = []
    for m in train_sizes:
        for seed in seeds:
            config = make_config(preset, **subset_settings(m, seed, min_epochs=min_epochs, min_steps=min_steps,
                                                           preset=preset, **overrides))
            folder = train_or_reuse(config, out / run_folder_name(config), progress=progress)
            run = load_run(folder)
            images = training_images(run)
            features = embed_run(folder, images)
            rows.append({"m": int(m), "seed": int(seed), "top1": float(run.metrics["top1"].iloc[-1]),
                         **run_summary(run.metrics), "epochs": config.optim.epochs,
                         "feature_total": float(class_semantic_scales(features, images.labels,
                                                                      device=overrides.get("device")).sum()),
                         "seconds": float(run.metrics["seconds"].sum()), "run_dir": str(folder)})
    return pd.DataFrame(rows)


def subset_settings(m: int, seed: int, *, min_epochs: int, min_steps: int = 0, preset: str | None = None,
                    **overrides) -> dict:
    """The TrainConfig settings of the run at m per class for ``seed`` (:func:`train_subsets`): the nested subset
    drawn with ``split_seed = seed``, and epochs = max(``min_epochs``, ⌈``min_steps`` / batches per epoch⌉)."""
    settings = {**overrides, "subset_per_class": int(m), "seed": int(seed), "split_seed": int(seed)}
    config = make_config(preset, **settings)
    # training images per class: m minus the ⌊val_fraction · m⌋ that data.validation_indices carves out
    images = max(1, int(m) - math.floor(config.data.val_fraction * int(m))) * _num_classes(config)
    per_epoch = math.ceil(images / config.optim.batch_size)
    return {**settings, "epochs": max(int(min_epochs), math.ceil(min_steps / per_epoch))}


def _num_classes(config) -> int:
    """Classes of the config's dataset (from its test set, the smaller file)."""
    return load_dataset(split_dataset_name(config.data.dataset)[0], train=False, root=config.data.data_root).num_classes


__all__ = ["RELATIVE_MARGIN", "capped_sizes", "concavity", "design_sizes", "fit_stats", "marginal_effect_claims",
           "marginal_effect_correlations", "marginal_effect_verdict", "nested_sample_volumes", "premise",
           "saturation_point", "subset_settings", "train_subsets", "volume_totals"]
