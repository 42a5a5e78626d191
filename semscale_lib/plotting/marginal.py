"""Notebook 01's figure (Sec. 3.3): how S′ grows with the samples per class m, against the effective number,
and whether accuracy follows it."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .legends import place_legend
from .panels import pearson_r, plot_curves
from .style import (ANNOTATION_SIZE, PALETTE, REFERENCE_COLOR, SECONDARY_LINESTYLE, accuracy_limits,
                    log_count_axis, series_style, style, style_axes)
from .text import annotate_points


def _seed_summary(training: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean, min, max (percent) and number of seeds of ``column`` (fractions) per m."""
    part = training.dropna(subset=[column])
    summary = part.groupby("m")[column].agg(["mean", "min", "max"]).mul(100.0)
    summary["n"] = part.groupby("m")["seed"].nunique() if "seed" in part else part.groupby("m").size()
    return summary


def _normalised_growth(ax, totals: pd.DataFrame, betas: Sequence[float]) -> None:
    from ..scale import effective_number     # here, not at import: scale imports torch

    ms = totals["m"].to_numpy(np.float64)
    total = totals["total"].to_numpy(np.float64)
    ax.plot(ms, total / total[-1], color="k", marker="o", linestyle="-", linewidth=2, label="Σ S′ of the images")
    for i, beta in enumerate(betas):
        e = effective_number(ms, beta)
        ax.plot(ms, e / e[-1], markersize=5, label=f"Eₘ, β = {beta:g}", **series_style(i + 1))
    ax.plot(ms, ms / ms[-1], color=REFERENCE_COLOR, linestyle=SECONDARY_LINESTYLE, linewidth=1.5,
            label="m itself")
    ax.set(xlabel="m (samples per class)", ylabel=f"value ÷ its value at m = {int(ms[-1])}",
           title="(b) Σ S′ against Eₘ and m, each ÷ its value at the largest m")


def marginal_effect_figure(volumes: pd.DataFrame, totals: pd.DataFrame, training: pd.DataFrame, *,
                           betas: Sequence[float], saturation_m: int | None = None, level: float = 0.95):
    """Notebook 01's four panels, m (samples per class) on a log axis where it is the x axis:

    (a) S′(m) of each class: mean ± sd band over the classes; (b) Σ S′, Eₘ for each β in ``betas`` and m, each
    divided by its value at the largest m (every series its own colour, marker and line style); (c) test top-1
    (%) against m: the mean over seeds with a min–max band, and validation top-1 as a second series when
    ``training`` has ``val_top1``; (d) mean top-1 against Σ S′, points labelled "m = …", Pearson r over the
    trained m in the title. Accuracy axes span at least 10 points, so that a flat line looks flat.
    ``saturation_m``: where Σ S′ reaches ``level`` of its final value, a vertical line in (b) and (c).

    ``volumes``: m, class, name, semantic_scale (bits); ``totals``: m, total (Σ S′, bits), sorted by m or not;
    ``training``: m, seed, top1 (fraction), optionally val_top1 (fraction). Returns the Figure."""
    totals = totals.sort_values("m").reset_index(drop=True)
    missing = set(training["m"]) - set(totals["m"])
    if missing:
        raise ValueError(f"no Σ S′ in totals for trained m = {sorted(missing)}")
    with style():
        fig, axes = plt.subplots(2, 2, figsize=(15, 9.5))
        for ax in axes.ravel():
            style_axes(ax)
        plot_curves(volumes, "m", "semantic_scale", ax=axes[0, 0], errorbar="sd", replicate="class",
                    title="(a) S′(m) of a class")
        _normalised_growth(axes[0, 1], totals, betas)

        ax = axes[1, 0]
        test = _seed_summary(training, "top1")
        n_seeds = int(test["n"].min())
        ax.plot(test.index, test["mean"], color=PALETTE[0], marker="o", linestyle="-",
                label=f"test top-1, mean over {n_seeds} seeds" if n_seeds > 1 else "test top-1 (1 seed)")
        shown = [test["mean"].to_numpy()]
        if n_seeds > 1:
            ax.fill_between(test.index, test["min"], test["max"], color=PALETTE[0], alpha=0.2,
                            label="test top-1, min–max over seeds")
            shown += [test["min"].to_numpy(), test["max"].to_numpy()]
        if "val_top1" in training and training["val_top1"].notna().any():
            val = _seed_summary(training, "val_top1")
            ax.plot(val.index, val["mean"], color=PALETTE[1], marker="s", linestyle="--",
                    label="validation top-1, mean over seeds" if n_seeds > 1 else "validation top-1")
            if val["n"].max() > 1:
                ax.fill_between(val.index, val["min"], val["max"], color=PALETTE[1], alpha=0.15)
                shown += [val["min"].to_numpy(), val["max"].to_numpy()]
            shown.append(val["mean"].to_numpy())
        accuracy_limits(ax, np.concatenate(shown))
        ax.set(xlabel="m (samples per class)", ylabel="top-1 (%)",
               title="(c) accuracy of a model trained on each sub-dataset")
        if saturation_m is not None:
            for target in (axes[0, 1], ax):
                target.axvline(saturation_m, color="k", linestyle="--", linewidth=1,
                               label=f"Σ S′ reaches {100 * level:g} % (m = {saturation_m})")
        for target in axes.ravel()[:3]:
            log_count_axis(target)

        ax = axes[1, 1]
        total = totals.set_index("m").loc[test.index, "total"].to_numpy(np.float64)
        ax.scatter(total, test["mean"], s=36, color=PALETTE[0], zorder=3)
        accuracy_limits(ax, test["mean"])
        annotate_points(ax, total, test["mean"].to_numpy(), [f"m = {int(m)}" for m in test.index],
                        fontsize=ANNOTATION_SIZE + 1)
        ax.set(xlabel="Σ S′ of the images (bits)", ylabel="mean test top-1 (%)",
               title=f"(d) top-1 against Σ S′: Pearson r = {pearson_r(total, test['mean']):.2f} "
                     f"over {len(test)} m")
        for target in (axes[0, 1], axes[1, 0]):
            place_legend(target)
    return fig


__all__ = ["marginal_effect_figure"]
