"""Notebook 02's figures: per-class S against per-class accuracy, and every quantity's r with its Fisher-z CI
beside the paper's Table 1, one panel per setting × source of the vectors."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .layout import grid
from .legends import place_legend
from .names import as_percent, display_name
from .panels import FISHER_CI, pearson_r, plot_scale_vs_accuracy
from .style import ANNOTATION_SIZE, PALETTE, REFERENCE_COLOR, style, style_axes

_SYMBOLS = {"imbalance_scale": "S", "semantic_scale": "S′", "normalized_scale": "S′ / max S′",
            "interclass": "W", "count": "N"}


def _panel_grid(keys, ncols: int):
    """Rows and columns of panels: keys (setting, source) lay out one row per setting, one column per source;
    other keys fill rows of ``ncols``. Returns (nrows, ncols, {key: flat index}, row of each key)."""
    if all(isinstance(k, tuple) and len(k) == 2 for k in keys):
        rows = list(dict.fromkeys(k[0] for k in keys))
        cols = list(dict.fromkeys(k[1] for k in keys))
        index = {k: rows.index(k[0]) * len(cols) + cols.index(k[1]) for k in keys}
        return len(rows), len(cols), index, {k: k[0] for k in keys}
    ncols = min(ncols, len(keys))
    return -(-len(keys) // ncols), ncols, {k: i for i, k in enumerate(keys)}, {k: k for k in keys}


def _title(key) -> str:
    return ", ".join(str(part) for part in key) if isinstance(key, tuple) else str(key)


def correlation_panel(ax, correlations: pd.DataFrame, *, reference: Mapping[str, float] | None = None,
                      reference_label: str = "paper", title: str | None = None, ylabels: bool = True):
    """One panel of :func:`correlation_figure` on ``ax``: a row per quantity (top to bottom in input order, by
    display name), our r with its CI (``correlate``'s 95 % Fisher-z CI) and the ``reference`` r {quantity: r}
    as a cross; "undefined" where r is (a constant column); r axis [-1, 1]. Returns the ax."""
    with style():
        style_axes(ax)
        y = np.arange(len(correlations), 0, -1, dtype=np.float64)
        r = correlations["pearson_r"].to_numpy(np.float64)
        low = correlations["ci_low"].to_numpy(np.float64)
        high = correlations["ci_high"].to_numpy(np.float64)
        ok = np.isfinite(r) & np.isfinite(low) & np.isfinite(high)
        ax.errorbar(r[ok], y[ok], xerr=[r[ok] - low[ok], high[ok] - r[ok]], fmt="o", color=PALETTE[0],
                    capsize=3, markersize=6, clip_on=False, zorder=3, label=f"ours: r, {FISHER_CI}")
        for yi, defined, ri in zip(y, correlations["defined"], r):
            if not defined or not np.isfinite(ri):
                ax.annotate("undefined", (0.02, yi), va="center", ha="left", fontsize=ANNOTATION_SIZE,
                            color=REFERENCE_COLOR)
        if reference:
            ref = np.array([reference.get(q, np.nan) for q in correlations["quantity"]], dtype=np.float64)
            ax.scatter(ref, y, marker="X", s=55, color=PALETTE[3], zorder=4, clip_on=False,
                       label=reference_label)
        ax.axvline(0, color=REFERENCE_COLOR, linewidth=0.8, linestyle="--", zorder=1)
        ax.set_yticks(y, [display_name(q) for q in correlations["quantity"]] if ylabels else [])
        ax.set_ylim(0.4, len(correlations) + 0.6)
        ax.set_xlim(-1.0, 1.0)
        ax.set_xlabel("Pearson r with per-class accuracy")
        if title:
            ax.set_title(title)
    return ax


def correlation_figure(correlations_by_panel: Mapping, *, references: Mapping | None = None):
    """Notebook 02's r-with-CI panels: one per (setting, source) — a row of panels per setting, a column per
    source of the vectors — all on the r axis [-1, 1], quantities by their display names.

    ``correlations_by_panel``: {(setting, source) or title: the output of ``imbalance.correlate`` (columns
    quantity, pearson_r, ci_low, ci_high, defined)}; its CI is the 95 % Fisher-z interval, and the legend says
    so. ``references``: {setting (or the panel's key): (label, {quantity: r})}, e.g. ``{"long-tailed":
    ("CIFAR-10-LT, ResNet-18", TABLE1_REFERENCE[("CIFAR-10-LT", "ResNet-18")])}``; its markers are labelled
    "paper: <label>". One legend per row, right of the row. Returns the Figure."""
    keys = list(correlations_by_panel)
    if not keys:
        raise ValueError("correlation_figure needs at least one panel")
    nrows, ncols, index, row_of = _panel_grid(keys, 3)
    longest = max(len(c) for c in correlations_by_panel.values())
    fig, axes = grid(nrows * ncols, ncols=ncols, panel_size=(4.6, 0.36 * longest + 1.6))
    references = references or {}
    last_in_row = {}
    for key in keys:
        ax = axes[index[key]]
        label, values = references.get(key, references.get(row_of[key], (None, None)))
        correlation_panel(ax, correlations_by_panel[key], reference=values,
                          reference_label=f"paper: {label}" if label else "paper", title=_title(key),
                          ylabels=index[key] % ncols == 0)
        last_in_row[row_of[key]] = ax
    for i, ax in enumerate(axes):
        if i not in index.values():
            ax.set_visible(False)
    for ax in last_in_row.values():
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda i: not labels[i].startswith("ours"))   # ours first
        place_legend(ax, [handles[i] for i in order], [labels[i] for i in order], where="outside")
    with style():
        fig.suptitle("Pearson r of per-class accuracy with each quantity, ours beside the paper's Table 1")
    return fig


def scale_accuracy_figure(panels: Mapping, *, column: str = "imbalance_scale", ncols: int = 3):
    """Notebook 02's scatter grid: per-class ``column`` (default S) against per-class accuracy, each point named
    by its class, one panel per (setting, source) — a row per setting — titled with Pearson r over the classes.

    ``panels``: {(setting, source) or title: DataFrame with columns name (or class), ``column`` and accuracy
    (fraction or percent; shown in %)}; a table's ``attrs["alpha"]`` (``quantify_imbalance`` sets it) is named
    in its title. Panels share the accuracy axis. Returns the Figure."""
    keys = list(panels)
    if not keys:
        raise ValueError("scale_accuracy_figure needs at least one panel")
    nrows, ncols, index, _ = _panel_grid(keys, ncols)
    fig, axes = grid(nrows * ncols, ncols=ncols, panel_size=(5.2, 4.3), sharey=True)
    symbol = _SYMBOLS.get(column, display_name(column))
    # the shared accuracy axis is fixed first: point labels are placed for the final limits
    accuracy = np.concatenate([as_percent(panels[k]["accuracy"]) for k in keys])
    accuracy = accuracy[np.isfinite(accuracy)]
    if accuracy.size:
        pad = 0.06 * max(float(np.ptp(accuracy)), 10.0)
        axes[0].set_ylim(max(-2.0, accuracy.min() - pad), min(102.0, accuracy.max() + pad))
    for key in keys:
        table, ax = panels[key], axes[index[key]]
        r = pearson_r(table[column], table["accuracy"])
        alpha = table.attrs.get("alpha")
        given = f" (α = {alpha:g})" if alpha is not None and column == "imbalance_scale" else ""
        plot_scale_vs_accuracy(table, table["accuracy"].to_numpy(np.float64), column, ax=ax,
                               title=f"{_title(key)}\nPearson r({symbol}, accuracy) = {r:.2f}{given}")
        if index[key] % ncols:
            ax.set_ylabel("")
    for i, ax in enumerate(axes):
        if i not in index.values():
            ax.set_visible(False)
    return fig


__all__ = ["correlation_figure", "correlation_panel", "scale_accuracy_figure"]
