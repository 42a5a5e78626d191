"""One-panel plots on an ``ax`` (created when omitted; every function returns the ax): per-class scales,
scale against accuracy, correlations with their CI, and curves of a metric against epochs or m."""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from .layout import new_axes
from .legends import place_legend
from .names import ACCURACY_LABELS, INTEGER_COLUMNS, as_percent, axis_label, display_name, is_fraction
from .style import (LINESTYLES, MARKERS, PALETTE, REFERENCE_COLOR, integer_ticks, series_style, style,
                    style_axes)
from .text import annotate_points, fit_tick_labels

_PLURALS = {"class": "classes"}


def _class_labels(table: pd.DataFrame) -> list[str]:
    return [str(v) for v in (table["name"] if "name" in table else table["class"])]


def plot_class_scales(table: pd.DataFrame, column: str = "imbalance_scale", *, sort: bool = True, ax=None,
                      title: str | None = None):
    """Bar chart of one per-class column of a ``quantify_imbalance`` table (columns ``name`` or ``class``, and
    ``column``), classes sorted by it. Class names are wrapped or rotated so that they never overlap (a figure
    made here is widened for them first)."""
    created = ax is None
    with style():
        ax = new_axes(ax, figsize=(min(16, max(5, 0.35 * len(table) + 2)), 3.5))   # wider is unreadable
        style_axes(ax)
        data = pd.DataFrame({"class": _class_labels(table), "value": table[column].to_numpy()})
        if sort:
            data = data.sort_values("value", ascending=False)
        sns.barplot(data=data, x="class", y="value", ax=ax, color=PALETTE[0])
        ax.set_ylabel(axis_label(column))
        ax.set_xlabel("class")
        ax.set_title(title or f"{axis_label(column)} per class")
        fit_tick_labels(ax, "x", grow=created, max_width=max(12.0, ax.figure.get_figwidth()))
    return ax


def pearson_r(x, y) -> float:
    """Pearson r of the finite pairs of ``x`` and ``y``; NaN when fewer than 2 or either is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def plot_scale_vs_accuracy(table: pd.DataFrame, accuracy, column: str = "imbalance_scale", *, ax=None,
                           annotate: bool = True, title: str | None = None):
    """Scatter of a per-class quantity (``table[column]``; names from ``name`` or ``class``) against per-class
    ``accuracy`` ((C,), fractions or percent; shown in %), each point labelled with its class name, Pearson r
    in the title."""
    with style():
        ax = new_axes(ax, figsize=(5, 4))
        style_axes(ax)
        x = table[column].to_numpy(np.float64)
        y = as_percent(accuracy)
        ax.scatter(x, y, s=22, zorder=3, color=PALETTE[0])
        if annotate:
            annotate_points(ax, x, y, _class_labels(table))
        ax.set_xlabel(axis_label(column))
        ax.set_ylabel("per-class accuracy (%)")
        ax.set_title(title or f"Pearson r = {pearson_r(x, y):.3f}")
    return ax


#: What :func:`imbalance.correlate` reports as the CI of r.
FISHER_CI = "95 % Fisher-z CI"


def plot_correlations(correlations: pd.DataFrame, *, reference: dict | None = None, ax=None,
                      title: str = "correlation with per-class accuracy", reference_label: str = "paper",
                      ci_label: str = FISHER_CI):
    """Pearson r per quantity (columns quantity, pearson_r, ci_low, ci_high, defined: the output of
    ``imbalance.correlate``) with its CI, quantities by their display names along x; undefined ones are marked;
    optional paper values ``reference`` {quantity: r} labelled "``reference_label``". The legend says what
    the interval is (``ci_label``: ``correlate`` gives a 95 % Fisher-z CI)."""
    with style():
        ax = new_axes(ax, figsize=(8, 3.5))
        style_axes(ax)
        positions = np.arange(len(correlations))
        r = correlations["pearson_r"].to_numpy(np.float64)
        low = np.nan_to_num(r - correlations["ci_low"].to_numpy(np.float64))
        high = np.nan_to_num(correlations["ci_high"].to_numpy(np.float64) - r)
        ax.errorbar(positions, r, yerr=[low, high], fmt="o", capsize=3, color=PALETTE[0],
                    label=f"ours: r, {ci_label}")
        for position, defined in zip(positions, correlations["defined"]):
            if not defined:
                ax.annotate("undefined", (position, 0), ha="center", va="bottom", fontsize=8, rotation=90,
                            color=REFERENCE_COLOR)
        if reference:
            ref = [reference.get(q, np.nan) for q in correlations["quantity"]]
            ax.scatter(positions, ref, marker="X", s=45, color=PALETTE[3], zorder=3, label=reference_label)
        ax.axhline(0, color=REFERENCE_COLOR, linewidth=0.8)
        ax.set_xticks(positions, [display_name(q) for q in correlations["quantity"]])
        ax.set_xlim(-0.5, len(correlations) - 0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("Pearson r")
        ax.set_title(title)
        place_legend(ax)
        fit_tick_labels(ax, "x")
    return ax


def _errorbar_words(errorbar) -> str:
    kind, level = (errorbar if isinstance(errorbar, tuple) else (errorbar, None))
    if kind == "sd":
        return "mean ± sd" if level in (None, 1) else f"mean ± {level:g} sd"
    if kind == "se":
        return "mean ± se" if level in (None, 1) else f"mean ± {level:g} se"
    if kind == "ci":
        return f"mean, {level or 95:g}% CI"
    if kind == "pi":
        return f"median, {level or 95:g}% interval"
    return "mean"


def plot_curves(frame: pd.DataFrame, x: str, y: str, *, hue: str | None = None, ax=None, title: str | None = None,
                errorbar: str | tuple | None = "sd", percent: bool | None = None, replicate: str | None = None,
                legend: bool = True):
    """Line plot of ``y`` against ``x`` (one line per ``hue``, each with its own colour, marker and line style,
    in order of appearance): the mean over repeated rows (seeds, classes) with an ``errorbar`` band (seaborn's:
    "sd", "se", ("ci", 95), None).

    Accuracy columns (top1, many, medium, few, accuracy) are drawn in percent (``percent=None``: when they hold
    fractions). Epochs, n and m get integer ticks. Where every point is one row (one seed) no band is drawn and
    the title says "n = 1"; otherwise it says what the band is, e.g. "mean ± sd over 3 seeds". ``replicate``
    names what the rows repeat over (default: "seed" when there is a seed column, else "class", else "row").
    ``legend``: place a legend (:func:`~.legends.place_legend`) with the hue levels' display names."""
    with style():
        ax = new_axes(ax, figsize=(6, 3.5))
        style_axes(ax)
        data = frame.copy()
        shown_percent = False
        if y in ACCURACY_LABELS and (percent or (percent is None and is_fraction(data[y]))):
            data[y] = 100.0 * data[y].astype(np.float64)
            shown_percent = True
        elif y in ACCURACY_LABELS and percent is None:
            shown_percent = True    # already in percent
        groups = [x] + ([hue] if hue else [])
        counts = data.dropna(subset=[y]).groupby(groups)[y].size()
        n_low, n_high = (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)
        unit = replicate or ("seed" if "seed" in data else "class" if "class" in data else "row")
        if unit != "row" and unit in data and len(counts):
            distinct = data.dropna(subset=[y]).groupby(groups)[unit].nunique()
            if not (distinct == counts).all():
                unit = "run"     # rows repeat for another reason too (no hue separates them): runs, not seeds
        if n_high <= 1:
            errorbar, note = None, f"n = 1 {unit} per point, no error bar"
        else:
            n_text = f"{n_low}" if n_low == n_high else f"{n_low}–{n_high}"
            note = f"{_errorbar_words(errorbar)} over {n_text} {_PLURALS.get(unit, unit + 's')}"
        if hue:
            levels = list(dict.fromkeys(data[hue]))
            styles = [series_style(i) for i in range(len(levels))]
            data[hue] = data[hue].map(lambda v: display_name(v))
            order = [display_name(v) for v in levels]
            sns.lineplot(data=data, x=x, y=y, hue=hue, style=hue, hue_order=order, style_order=order, ax=ax,
                         errorbar=errorbar, palette=[s["color"] for s in styles],
                         markers=[s["marker"] for s in styles], dashes=[_dashes(s["linestyle"]) for s in styles],
                         markersize=6, legend=legend)
        else:
            sns.lineplot(data=data, x=x, y=y, ax=ax, errorbar=errorbar, marker=MARKERS[0], color=PALETTE[0],
                         markersize=6, linestyle=LINESTYLES[0], legend=False)
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel(axis_label(y, percent=shown_percent))
        if x in INTEGER_COLUMNS:
            integer_ticks(ax, "x")
        ax.set_title(f"{title}\n({note})" if title else note)
        drawn = ax.get_legend()
        if drawn is not None:      # seaborn's legend, moved where it hides no data
            handles, labels = drawn.legend_handles, [t.get_text() for t in drawn.get_texts()]
            drawn.remove()
            place_legend(ax, handles, labels, title=display_name(hue))
        ax._semscale_note = note
    return ax


def _dashes(linestyle):
    """seaborn's dash spec ("" solid, else (on, off, ...)) of a matplotlib line style of :data:`LINESTYLES`."""
    named = {"-": "", "--": (3.7, 1.6), "-.": (6.4, 1.6, 1.0, 1.6), ":": (1.0, 1.65)}
    return named[linestyle] if isinstance(linestyle, str) else tuple(linestyle[1])


__all__ = ["FISHER_CI", "pearson_r", "plot_class_scales", "plot_correlations", "plot_curves",
           "plot_scale_vs_accuracy"]
