"""Figures people would rather look at than read: per-class scales, scale vs accuracy, correlation tables.

Every function draws on an ``ax`` (created when omitted) and returns it; none calls ``plt.show``.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

COLUMN_LABELS = {
    "semantic_scale": "semantic scale S′ (bits)",
    "normalized_scale": "S′ / max S′",
    "interclass": "inter-class term W",
    "imbalance_scale": "imbalance scale S = S′ ⊙ W",
    "count": "training samples N",
}


def _axes(ax, figsize=(7, 3.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _class_labels(table: pd.DataFrame) -> list[str]:
    return [str(v) for v in (table["name"] if "name" in table else table["class"])]


def plot_class_scales(table: pd.DataFrame, column: str = "imbalance_scale", *, sort: bool = True, ax=None,
                      title: str | None = None):
    """Bar chart of one per-class column of a ``quantify_imbalance`` table, classes sorted by it."""
    ax = _axes(ax, figsize=(max(5, 0.35 * len(table) + 2), 3.5))
    data = pd.DataFrame({"class": _class_labels(table), "value": table[column].to_numpy()})
    if sort:
        data = data.sort_values("value", ascending=False)
    sns.barplot(data=data, x="class", y="value", ax=ax, color=sns.color_palette()[0])
    ax.set_ylabel(COLUMN_LABELS.get(column, column))
    ax.set_xlabel("class")
    if len(table) > 12:
        ax.tick_params(axis="x", labelrotation=90)
    ax.set_title(title or f"{COLUMN_LABELS.get(column, column)} per class")
    return ax


def plot_scale_vs_accuracy(table: pd.DataFrame, accuracy, column: str = "imbalance_scale", *, ax=None,
                           annotate: bool = True, title: str | None = None):
    """Scatter of a per-class quantity against per-class accuracy, with class names and Pearson r."""
    ax = _axes(ax, figsize=(5, 4))
    x, y = table[column].to_numpy(np.float64), np.asarray(accuracy, dtype=np.float64)
    ax.scatter(x, y)
    if annotate:
        for label, xi, yi in zip(_class_labels(table), x, y):
            ax.annotate(label, (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize=8)
    r = np.corrcoef(x, y)[0, 1] if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
    ax.set_xlabel(COLUMN_LABELS.get(column, column))
    ax.set_ylabel("per-class accuracy")
    ax.set_title(title or f"Pearson r = {r:.3f}")
    return ax


def plot_correlations(correlations: pd.DataFrame, *, reference: dict | None = None, ax=None,
                      title: str = "correlation with per-class accuracy"):
    """Pearson r per quantity with its bootstrap 95% CI; undefined ones are marked; optional paper values."""
    ax = _axes(ax, figsize=(8, 3.5))
    positions = np.arange(len(correlations))
    r = correlations["pearson_r"].to_numpy()
    low = np.nan_to_num(r - correlations["ci_low"].to_numpy())
    high = np.nan_to_num(correlations["ci_high"].to_numpy() - r)
    ax.errorbar(positions, r, yerr=[low, high], fmt="o", capsize=3, label="ours (95% bootstrap CI)")
    for position, defined in zip(positions, correlations["defined"]):
        if not defined:
            ax.annotate("undefined", (position, 0), ha="center", fontsize=8, rotation=90, color="grey")
    if reference:
        ref = [reference.get(q, np.nan) for q in correlations["quantity"]]
        ax.scatter(positions, ref, marker="x", color="C3", label="paper")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(positions, correlations["quantity"], rotation=45, ha="right")
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("Pearson r")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_curves(frame: pd.DataFrame, x: str, y: str, *, hue: str | None = None, ax=None, title: str | None = None,
                errorbar: str | tuple | None = "sd"):
    """Line plot of ``y`` against ``x`` (one line per ``hue``), mean ± band over repeated rows (seeds, classes)."""
    ax = _axes(ax, figsize=(6, 3.5))
    sns.lineplot(data=frame, x=x, y=y, hue=hue, ax=ax, errorbar=errorbar, marker="o")
    if title:
        ax.set_title(title)
    return ax


def save_figure(ax_or_fig, path) -> None:
    """Save the figure of ``ax_or_fig`` as PNG (150 dpi, tight) and close it."""
    figure = ax_or_fig.figure if hasattr(ax_or_fig, "figure") and not isinstance(ax_or_fig, plt.Figure) \
        else ax_or_fig
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)


def use_headless_backend() -> None:
    """Switch matplotlib to Agg (for command-line use on machines without a display)."""
    matplotlib.use("Agg")


def grid(n_panels: int, *, ncols: int = 3, panel_size: Sequence[float] = (4.5, 3.5)):
    """A figure with ``n_panels`` axes in rows of ``ncols``; unused axes are hidden. Returns (fig, axes list)."""
    nrows = -(-n_panels // ncols)
    fig, axes = plt.subplots(nrows, min(ncols, n_panels),
                             figsize=(panel_size[0] * min(ncols, n_panels), panel_size[1] * nrows), squeeze=False)
    flat = list(axes.ravel())
    for extra in flat[n_panels:]:
        extra.set_visible(False)
    return fig, flat[:n_panels]
