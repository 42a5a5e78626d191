"""Semantic-scale-balanced re-weighting against baselines (Sec. 4, Tables 2–3; notebooks 03 and 04): grids of
training runs (methods × seeds), static 1/S weights from a trained model, learning curves, many/medium/few,
paired comparisons and the DSB weights over time.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..imbalance import quantify_imbalance
from ..metrics import group_accuracy, mean_sd_table
from ..scale import pool_features
from ..training import embed_run, load_run, make_config, training_images
from ..training.trainer import run_folder_name, train_or_reuse
from ..weights import dsb_class_weights
from .claims import claim_record
from ..verdicts import paired_verdict, withheld
from .notebook import prepare_out_dir
from .plateau import far_from_trained, fit_numbers, run_summary

#: The paper's X → DSB-X gain in top-1 points on ImageNet-LT (Table 2), by our loss names.
PAPER_DSB_DELTAS = {"ce": 49.2 - 44.4, "focal": 50.6 - 47.2, "ldam": 52.3 - 51.1, "balanced-softmax": 52.8 - 51.2}

#: The paper's X → DSB-X top-1 (Table 2: ImageNet-LT; iNaturalist 2018), by our loss names.
PAPER_DSB_GAINS = {
    "ce": "ImageNet-LT (ResNeXt-50) CE 44.4 → DSB-CE 49.2; iNaturalist 2018 (ResNet-50) 61.7 → 64.3",
    "focal": "ImageNet-LT (ResNeXt-50) Focal 47.2 → 50.6; iNaturalist 2018 (ResNet-50) 61.1 → 63.5",
    "ldam": "ImageNet-LT (ResNeXt-50) LDAM 51.1 → 52.3; iNaturalist 2018 (ResNet-50) 64.6 → 65.7",
    "balanced-softmax": "ImageNet-LT (ResNeXt-50) BS 51.2 → 52.8; iNaturalist 2018 (ResNet-50) 53.2 → 55.1",
}


def long_tailed_base(dataset: str, imbalance_factor: float | None, *, image_root=None, image_size: int | None = None,
                     **overrides) -> dict:
    """The TrainConfig overrides of a notebook's training set (notebooks 02–04, 06): ``dataset``-lt at
    ``imbalance_factor`` (exponential profile), or the balanced ``dataset`` when it is None, plus ``overrides``.
    ``dataset`` is the base name; "cifar100-lt" is refused (it would become "cifar100-lt-lt"). For your own images
    (``dataset="imagefolder"``), ``image_root`` is the root/<class>/<image> tree and ``image_size`` the side the
    images are resized to; other datasets ignore both."""
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(f"dataset must be a dataset name such as 'cifar100', got {dataset!r}")
    if dataset.endswith("-lt"):
        raise ValueError(f"dataset is the base name ({dataset[:-3]!r}); the long-tailed version is chosen by "
                         f"imbalance_factor (None: the balanced set), so pass dataset={dataset[:-3]!r}")
    if dataset == "imagefolder":
        if image_root is None:
            raise ValueError("dataset 'imagefolder' needs image_root: the root/<class>/<image> tree of your images")
        overrides = {"image_root": str(image_root), **({"image_size": int(image_size)} if image_size else {}),
                     **overrides}
    if imbalance_factor is None:
        return {"dataset": dataset, **overrides}
    return {"dataset": f"{dataset}-lt", "imbalance_factor": imbalance_factor, **overrides}


def shot_thresholds(results: pd.DataFrame) -> tuple[int, int]:
    """(many, few) training images of the runs in ``results`` (:func:`run_methods`): the paper's many / few-shot
    thresholds, 100 and 20, while the largest class has at most 1,280 images (ImageNet-LT's largest; CIFAR-100-LT's
    and Double-MNIST-LT's 500 alike); beyond that scaled by largest / 1,280 (ours: Fashion-MNIST-LT's 5,400 → 422 /
    84), so that larger datasets are not all "many-shot"."""
    largest = max(int(pd.read_csv(Path(d) / "per_class.csv")["train_count"].max()) for d in results["run_dir"])
    scale = max(1.0, largest / 1280)
    return round(100 * scale), round(20 * scale)


def method_configs(methods: Mapping[str, Mapping], seeds: Sequence[int], base: Mapping, *,
                   preset: str | None = None) -> dict[tuple[str, int], object]:
    """{(method name, seed) → TrainConfig} of every method × seed (:func:`run_methods` trains exactly these):
    ``preset``, then ``base``, then the method's overrides, then the seed. Two method names with the same
    settings are refused (ValueError naming both)."""
    configs: dict[tuple[str, int], object] = {}
    named: dict[str, str] = {}
    for name, overrides in methods.items():
        for seed in seeds:
            config = make_config(preset, **{**dict(base), **dict(overrides), "seed": int(seed)})
            other = named.setdefault(run_folder_name(config), name)
            if other != name:
                raise ValueError(f"methods {other!r} and {name!r} have the same settings (seed {seed}), so they "
                                 "would be one run; remove one or change its settings")
            configs[(name, int(seed))] = config
    return configs


def run_methods(methods: Mapping[str, Mapping], seeds: Sequence[int], base: Mapping, runs_dir, *,
                preset: str | None = None, progress: bool = False) -> pd.DataFrame:
    """Train every method × seed and return one row per run with its final metrics.

    ``methods``: {name → TrainConfig overrides, e.g. {"loss": "ldam", "reweight": "drw"}}; ``base``: overrides
    shared by all (dataset, epochs, model, ...); ``preset``: a ``PRESETS`` name under both. Runs go to
    ``<runs_dir>/<run_folder_name(config)>/``, a folder named by the run's settings, so ``runs_dir`` may be shared
    by several notebooks: a finished run there with the same settings is reused, an interrupted one resumed.
    Two method names with the same settings are refused, naming both. Returns columns method, seed, run_dir,
    top1, many, medium, few (test, fractions), train_top1, val_top1, plateau_gain, plateaued
    (:func:`~semscale_lib.studies.plateau.run_summary`), epochs, seconds (training time summed over epochs),
    reduction.
    """
    configs = method_configs(methods, seeds, base, preset=preset)
    out = prepare_out_dir(runs_dir)
    rows = []
    for (name, seed), config in configs.items():
        folder = train_or_reuse(config, out / run_folder_name(config), progress=progress)
        run = load_run(folder)
        last = run.metrics.iloc[-1]
        rows.append({"method": name, "seed": seed, "run_dir": str(folder), "top1": float(last["top1"]),
                     "many": float(last["many"]), "medium": float(last["medium"]), "few": float(last["few"]),
                     **run_summary(run.metrics), "epochs": int(last["epoch"]),
                     "seconds": float(run.metrics["seconds"].sum()),
                     "reduction": config.reduction if config.weighting.rule != "none" else "—"})
    return pd.DataFrame(rows)


def learning_curves(results: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch metrics of every run in ``results`` (from :func:`run_methods`): columns method, seed, epoch,
    loss, lr, top1, many, medium, few."""
    frames = []
    for row in results.itertuples(index=False):
        metrics = pd.read_csv(Path(row.run_dir) / "metrics.csv")
        metrics.insert(0, "seed", row.seed)
        metrics.insert(0, "method", row.method)
        frames.append(metrics.drop(columns=["seconds"], errors="ignore"))
    return pd.concat(frames, ignore_index=True)


def group_table(results: pd.DataFrame, *, many: int = 100, few: int = 20) -> pd.DataFrame:
    """Final per-run top-1 and many/medium/few recomputed from each run's ``per_class.csv`` with thresholds
    ``many`` / ``few`` (training images; the paper's are 100 / 20). Columns method, seed, top1, overall (mean of
    per-class accuracies), many, medium, few, and the number of classes per group (n_many, n_medium, n_few)."""
    rows = []
    for row in results.itertuples(index=False):
        per_class = pd.read_csv(Path(row.run_dir) / "per_class.csv")
        counts = per_class["train_count"].to_numpy()
        groups = group_accuracy(per_class["accuracy"].to_numpy(), counts, many=many, few=few)
        rows.append({"method": row.method, "reduction": getattr(row, "reduction", "—"), "seed": row.seed,
                     "top1": row.top1, **groups,
                     "n_many": int((counts > many).sum()), "n_medium": int(((counts >= few) & (counts <= many)).sum()),
                     "n_few": int((counts < few).sum())})
    return pd.DataFrame(rows)


def summary_table(groups: pd.DataFrame, *, order: Sequence[str] | None = None, decimals: int = 1) -> pd.DataFrame:
    """Mean ± sd over seeds, in percent, of top-1 and many/medium/few per method, with the batch reduction of its
    weighted loss (``order`` keeps the methods' order, default as first seen)."""
    percent = groups.copy()
    for column in ("top1", "many", "medium", "few"):
        percent[column] = 100 * percent[column]
    keys = ["method", "reduction"] if "reduction" in percent else ["method"]
    table = mean_sd_table(percent, keys, ["top1", "many", "medium", "few"], decimals=decimals)
    order = list(order) if order is not None else list(dict.fromkeys(groups["method"]))
    return table.set_index("method").loc[order].reset_index()


def compare_pairs(results: pd.DataFrame, pairs, *, metric: str = "top1",
                  paper_deltas: Mapping[str, float] | None = None, min_n: int = 3,
                  confidence: float = 0.95, power: float = 0.8) -> pd.DataFrame:
    """Paired comparison (same seeds) of each (treated, baseline) method pair on ``metric`` (a fraction,
    compared in percentage points) by :func:`~semscale_lib.verdicts.paired_verdict`. ``pairs``: a mapping
    treated → baseline, or a sequence of (treated, baseline) pairs (one treated method may face two baselines).

    ``paper_deltas``: the paper's gain in points, keyed by (treated, baseline) or by treated method, placed
    against our CI and against the smallest gain the seeds detect with ``power`` (underpowered → not testable).
    ``confidence``: of every pair's CI (e.g. 1 − 0.05/m for a Bonferroni family of m pairs).
    Refuses (ValueError) a method with the same seed twice, and — when ``results`` has a ``run_dir`` column — two
    methods whose runs of one seed are the same run folder: either would pair a run with itself.
    Returns one row per pair: method, baseline, n_seeds, mean_with, mean_without (%), diff, ci_low, ci_high
    (points), verdict, sentence, and record (the verdict record itself, with its power).
    """
    rows = []
    for method, baseline in (pairs.items() if isinstance(pairs, Mapping) else pairs):
        runs = {}
        for name in (method, baseline):
            part = results[results["method"] == name]
            repeated = part["seed"][part["seed"].duplicated()]
            if len(repeated):
                raise ValueError(f"method {name!r} has seed {repeated.iloc[0]} more than once; each seed must be "
                                 "one run (duplicated runs would be paired as if independent)")
            runs[name] = part.set_index("seed")
        a, b = runs[method][metric], runs[baseline][metric]
        seeds = sorted(set(a.index) & set(b.index))
        if not seeds:
            raise ValueError(f"no common seed between {method!r} and {baseline!r}")
        if "run_dir" in results:
            same = [seed for seed in seeds if runs[method].at[seed, "run_dir"] == runs[baseline].at[seed, "run_dir"]]
            if same:
                raise ValueError(f"{method!r} and {baseline!r} are the same run for seed {same[0]} "
                                 f"(run_dir {runs[method].at[same[0], 'run_dir']!r}): a method compared with itself")
        deltas = paper_deltas or {}
        record = paired_verdict(100 * b.loc[seeds].to_numpy(), 100 * a.loc[seeds].to_numpy(), min_n=min_n,
                                paper_delta=deltas.get((method, baseline), deltas.get(method)),
                                confidence=confidence, power=power)
        rows.append({"method": method, "baseline": baseline, "n_seeds": len(seeds),
                     "mean_with": record.mean_treated, "mean_without": record.mean_baseline,
                     "diff": record.estimate, "ci_low": record.ci_low, "ci_high": record.ci_high,
                     "verdict": record.verdict, "sentence": record.sentence, "record": record})
    return pd.DataFrame(rows)


def pair_claims(pairs: pd.DataFrame, *, claim: str, claim_id: str, paper: Mapping[str, str], dataset: str,
                data: str, section: str, scope: str = "paper", results: pd.DataFrame | None = None,
                budget: Mapping | None = None) -> list[dict]:
    """Claim records for the rows of :func:`compare_pairs` (one per pair).

    ``claim`` and ``claim_id``: templates with ``{method}`` and ``{baseline}`` (e.g. ``"{method} beats
    {baseline}"``, ``"table2-{method}"``); ``paper``: what the paper reports, by method (missing → "not reported
    for this loss"); ``dataset`` / ``data``: on what the numbers were measured; ``scope``: "paper" (a claim the
    paper makes) or "beyond" (our own question, reported apart from the paper's claims). ``results``
    (:func:`run_methods`) and ``budget`` (:func:`~semscale_lib.studies.plateau.budget_check`): how well the two
    methods' models fit, carried by each record; a budget that did not reach the plateau makes every pair "not
    testable" (:func:`~semscale_lib.verdicts.withheld`).
    """
    why = far_from_trained(budget)
    claims = []
    for row in pairs.itertuples(index=False):
        names = {"method": row.method, "baseline": row.baseline}
        fit = fit_numbers(results, budget, [row.method, row.baseline]) if results is not None else {}
        claims.append(claim_record(
            claim_id=claim_id.format(**names), claim=claim.format(**names), section=section,
            paper=paper.get(row.method, "not reported for this loss"), paper_value=row.record.paper_delta,
            dataset=dataset, data=data, record=withheld(row.record, why), scope=scope,
            numbers={"with": row.mean_with, "without": row.mean_without, **fit}))
    return claims


def static_weights_file(run_dir, *, alpha: float, normalize: str, source: str, pool_dim: int | None) -> Path:
    """Where :func:`static_dsb_weights` keeps the weights it derived from a run, in that run's folder."""
    return Path(run_dir) / f"static-weights-{source}-alpha{alpha:g}-{normalize}-pool{pool_dim}.json"


def remembered_static_weights(run_dir, **settings) -> np.ndarray | None:
    """The weights :func:`static_dsb_weights` derived from ``run_dir`` with these settings, or None before it has."""
    path = static_weights_file(run_dir, **settings)
    return np.array(json.loads(path.read_text())["weights"], dtype=np.float64) if path.is_file() else None


def static_dsb_weights(run_dir, *, alpha: float, normalize: str = "mean1", source: str = "train",
                       pool_dim: int | None = None, device=None) -> tuple[np.ndarray, pd.DataFrame]:
    """Static semantic-scale-balanced class weights a ∝ 1/S from a finished (e.g. plain CE) run.

    ``source="train"``: the run's final model embeds its own training images (no test data involved);
    ``"test"``: the saved test embeddings. ``pool_dim``: average-pool the embeddings first (the paper's 64-d
    pool; None keeps the full dimension). Returns (weights (C,) from ``dsb_class_weights(S, normalize)``, the
    ``quantify_imbalance`` table at ``alpha`` with the weights as column ``weight``). ``device``: where the model
    embeds and S′ is computed (None: the run's own device for embedding, the CPU for S′).

    The weights are derived once per run and settings and kept in the run's folder (:func:`static_weights_file`;
    JSON keeps every digit): the weighted runs they name are then the same runs for the notebook and for
    ``semscale plan``, even where embedding again would differ in the last digits (another thread count, a GPU).
    """
    run = load_run(run_dir)
    if source == "train":
        images = training_images(run)
        features, labels = embed_run(run_dir, images, device=device), images.labels
        names = images.classes
    elif source == "test":
        features, labels = run.test_features, run.test_labels
        names = run.per_class["name"].tolist() if run.per_class is not None else None
    else:
        raise ValueError(f"source must be 'train' or 'test', got {source!r}")
    if pool_dim is not None:
        features = pool_features(features, pool_dim)
    table = quantify_imbalance(features, labels, alpha=alpha, class_names=names, device=device)
    settings = dict(alpha=alpha, normalize=normalize, source=source, pool_dim=pool_dim)
    weights = remembered_static_weights(run_dir, **settings)
    if weights is None:
        weights = dsb_class_weights(table["imbalance_scale"].to_numpy(), normalize)
        path = static_weights_file(run_dir, **settings)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({**settings, "weights": [float(w) for w in weights]}))
        os.replace(temporary, path)     # whole or absent: a reader never sees half a file
    table["weight"] = weights
    return weights, table


def static_weighting_grid(losses: Sequence[str], seeds: Sequence[int], base: Mapping, out_dir, *,
                          preset: str | None = None, alpha: float = 2.0, normalize: str = "mean1",
                          source: str = "train", pool_dim: int | None = 64, progress: bool = False,
                          device=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The general scheme of Sec. 4.1 with *static* semantic-scale weights: every base loss with and without
    a ∝ 1/S, same seeds.

    For each seed, a plain cross-entropy model is trained first (it is also the "ce" row when "ce" is in
    ``losses``); S comes from its features (:func:`static_dsb_weights` with ``alpha``, ``normalize``,
    ``source``, ``pool_dim``); then every loss is trained plain (``reweight="none"``) and weighted
    (``reweight="static"`` with those class weights). Returns (results: one row per run as
    :func:`run_methods` plus columns loss and weighted, sorted by loss order then weighted; weights: one row per
    seed × class with S and the weight). ``device``: where S is measured (default: ``base["device"]``, the device
    the runs train on).
    """
    out = prepare_out_dir(out_dir)
    plain_losses = list(dict.fromkeys(["ce", *losses]))
    plain = run_methods({loss: {"loss": loss, "reweight": "none"} for loss in plain_losses}, seeds, base,
                        out, preset=preset, progress=progress)
    frames, weight_rows = [plain[plain["method"].isin(losses)]], []
    for seed in seeds:
        ce_dir = plain[(plain["method"] == "ce") & (plain["seed"] == seed)]["run_dir"].iloc[0]
        weights, table = static_dsb_weights(ce_dir, alpha=alpha, normalize=normalize, source=source,
                                            pool_dim=pool_dim, device=base.get("device") if device is None
                                            else device)
        weight_rows.append(table.assign(seed=seed))
        weighted = {f"{loss} + S-weights": {"loss": loss, "reweight": "static",
                                            "class_weights": [float(w) for w in weights]} for loss in losses}
        frames.append(run_methods(weighted, [seed], base, out, preset=preset, progress=progress))
    results = pd.concat(frames, ignore_index=True)
    results["weighted"] = results["method"].str.endswith(" + S-weights")
    results["loss"] = results["method"].str.replace(" + S-weights", "", regex=False)
    order = {loss: i for i, loss in enumerate(losses)}
    results = results.sort_values(["loss", "weighted", "seed"], key=lambda c: c.map(order) if c.name == "loss"
                                  else c).reset_index(drop=True)
    return results, pd.concat(weight_rows, ignore_index=True)


def weights_history(run_dir, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """A DSB run's logged refreshes (``weights.csv``) in long form: epoch, iteration, class, name, S, a.
    Empty when the run never re-weighted (all epochs ≤ n)."""
    path = Path(run_dir) / "weights.csv"
    columns = ["epoch", "iteration", "class", "name", "S", "a"]
    if not path.exists():
        return pd.DataFrame(columns=columns)
    wide = pd.read_csv(path)
    classes = sorted(int(c[2:]) for c in wide.columns if c.startswith("S_"))
    rows = []
    for c in classes:
        part = wide[["epoch", "iteration"]].copy()
        part["class"] = c
        part["name"] = class_names[c] if class_names is not None else str(c)
        part["S"] = wide[f"S_{c}"]
        part["a"] = wide[f"a_{c}"]
        rows.append(part)
    return pd.concat(rows, ignore_index=True)[columns].sort_values(["iteration", "class"]).reset_index(drop=True)


__all__ = ["PAPER_DSB_DELTAS", "PAPER_DSB_GAINS", "compare_pairs", "group_table", "learning_curves", "pair_claims",
           "long_tailed_base", "run_methods", "shot_thresholds",
           "static_dsb_weights", "static_weighting_grid", "summary_table", "weights_history"]
