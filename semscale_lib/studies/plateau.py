"""Were the models trained to their plateau? (Ours: a claim is judged only on models trained to a plateau.)

Every study's runs carve a validation split out of their training set (``val_fraction``) and record its top-1 after
each epoch. Whether a study's budget of E epochs reaches the plateau is shown, not assumed: the study's first
method (plain CE) is trained once more with 2E epochs, everything else equal, and the two final validation top-1
values are compared (each the mean of the last :data:`LAST_EPOCHS` epochs, because a validation set of a few
hundred images moves by a point from one epoch to the next). A budget whose doubling adds less than
:data:`PLATEAU_POINTS` points — or less than :data:`PLATEAU_IMAGES` validation images, where the validation set is
so small that one image is worth more than a point — is at the plateau; otherwise the study's claims are not judged
(the report calls the models far from trained). A within-run criterion would not do: under a schedule that decays the learning rate to 0,
validation top-1 rises over the last epochs whether or not more epochs would help.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

#: [ours] Doubling the epochs adds less than this many points of validation top-1: the budget is at the plateau.
PLATEAU_POINTS = 1.0
#: [ours] ... or by fewer than this many validation images (the resolution of a small validation set).
PLATEAU_IMAGES = 2
#: Epochs averaged for a run's final validation top-1.
LAST_EPOCHS = 3


def final_validation(metrics: pd.DataFrame) -> float:
    """Mean validation top-1 (a fraction) over the last :data:`LAST_EPOCHS` epochs of ``metrics.csv``; NaN without a
    validation split."""
    if "val_top1" not in metrics:
        return float("nan")
    values = metrics["val_top1"].to_numpy(np.float64)[-LAST_EPOCHS:]
    return float("nan") if len(values) == 0 or np.isnan(values).any() else float(values.mean())


def run_summary(metrics: pd.DataFrame) -> dict:
    """How far one run (its ``metrics.csv``) fits: train_top1 (the final model on its own training images) and
    val_top1 (:func:`final_validation`), fractions; NaN where not measured."""
    last = metrics.iloc[-1]
    return {"train_top1": float(last.get("train_top1", np.nan)), "val_top1": final_validation(metrics)}


def budget_bases(method: Mapping, base: Mapping, *, preset: str | None = None) -> list[dict]:
    """The base settings :func:`budget_check` trains ``method`` with: ``base`` (its epochs made explicit), and the
    same with twice the epochs when the runs hold out a validation split (``val_fraction`` > 0); one entry
    without one (nothing to check on)."""
    from ..training import make_config

    config = make_config(preset, **{**dict(base), **dict(method)})
    epochs = config.optim.epochs
    if config.data.val_fraction == 0:
        return [{**dict(base), "epochs": epochs}]
    return [{**dict(base), "epochs": epochs}, {**dict(base), "epochs": 2 * epochs}]


def budget_check(method: Mapping, seed: int, base: Mapping, runs_dir, *, preset: str | None = None) -> dict:
    """Train ``method`` (TrainConfig overrides, e.g. plain CE) for ``seed`` with ``base``'s epochs and with twice as
    many, everything else equal (the first run is usually the study's own and is reused), through
    :func:`~semscale_lib.studies.reweighting.run_methods` into ``runs_dir``. Returns epochs, doubled (epochs),
    val_top1 and val_top1_doubled (fractions), gain (points), threshold (points: :data:`PLATEAU_POINTS`, or
    :data:`PLATEAU_IMAGES` validation images when that is more) and plateaued (gain < threshold). Runs without a
    validation split (``val_fraction`` 0, e.g. the CIFAR-LT protocol) are not checked: nothing is trained, the
    gain is NaN and plateaued None."""
    from .reweighting import run_methods   # reweighting reads run summaries from this module

    bases = budget_bases(method, base, preset=preset)
    epochs = bases[0]["epochs"]
    if len(bases) == 1:   # no validation split: not measured
        return {"epochs": epochs, "doubled": 2 * epochs, "val_top1": float("nan"), "val_top1_doubled": float("nan"),
                "gain": float("nan"), "threshold": float("nan"), "plateaued": None}
    results = run_methods({"budget": dict(method)}, [seed], bases[0], runs_dir, preset=preset)
    counts = json.loads((Path(results["run_dir"].iloc[0]) / "config.json").read_text()).get("val_counts") or []
    if not sum(counts):      # classes too small to give a validation image: nothing to measure the plateau on
        return {"epochs": epochs, "doubled": 2 * epochs, "val_top1": float("nan"), "val_top1_doubled": float("nan"),
                "gain": float("nan"), "threshold": float("nan"), "plateaued": None}
    doubled = run_methods({"doubled budget": dict(method)}, [seed], bases[1], runs_dir, preset=preset)
    short, long = float(results["val_top1"].iloc[0]), float(doubled["val_top1"].iloc[0])
    gain = 100 * (long - short)
    threshold = max(PLATEAU_POINTS, 100 * PLATEAU_IMAGES / sum(counts))
    return {"epochs": epochs, "doubled": 2 * epochs, "val_top1": short, "val_top1_doubled": long, "gain": gain,
            "threshold": threshold, "plateaued": None if math.isnan(gain) else bool(gain < threshold)}


def budget_text(check: Mapping) -> str:
    """One line on a :func:`budget_check`: what doubling the budget added, and what that means."""
    if check.get("plateaued") is None:
        return (f"{check['epochs']} epochs; the plateau is not measured (no validation images), so the claims are "
                "judged without that check")
    verdict = "at the plateau" if check["plateaued"] else "NOT at the plateau: its claims are not judged"
    return (f"{check['epochs']} → {check['doubled']} epochs adds {check['gain']:+.1f} points of validation top-1 "
            f"(threshold {check['threshold']:.1f}): {verdict}")


def far_from_trained(check: Mapping | None) -> str | None:
    """Why a study's models are too far from trained to judge its claims on (from :func:`budget_check`), or None."""
    if not check or check.get("plateaued") is not False:
        return None
    return (f"models not trained to a plateau: doubling the budget from {check['epochs']} to {check['doubled']} "
            f"epochs added {check['gain']:+.1f} points of validation top-1 (a plateau adds < {check['threshold']:.1f})")


def fit_numbers(results: pd.DataFrame, check: Mapping | None = None, methods=None) -> dict:
    """The numbers a claim record carries about its models: mean train_top1 and val_top1 over the runs of
    ``methods`` (default all rows of ``results``), and the budget check's gain and plateau flag when given."""
    part = results if methods is None else results[results["method"].isin(list(methods))]
    numbers = {"train_top1": float(part["train_top1"].mean()), "val_top1": float(part["val_top1"].mean())}
    if check:
        numbers.update(budget_gain=check["gain"], plateaued=check["plateaued"])
    return numbers


__all__ = ["LAST_EPOCHS", "PLATEAU_IMAGES", "PLATEAU_POINTS", "budget_check", "budget_text", "far_from_trained",
           "final_validation", "fit_numbers", "run_summary"]
