"""Figures people would rather look at than read: per-class scales, scale vs accuracy, correlation tables,
learning curves and the forest / ranking plots of pooled correlations.

Every function draws on an ``ax`` (created when omitted) and returns it; none calls ``plt.show``.

Conventions kept by every function here:

* accuracies are shown in percent (0–100): columns named like ``top1``, ``many``, ``medium``, ``few`` or
  ``accuracy`` holding fractions are multiplied by 100 and the axis says "(%)";
* S′ is in bits, and its axis says so;
* class (or predictor) names on an axis never overlap: they are wrapped, rotated or made smaller as the axes'
  width requires (:func:`fit_tick_labels`), and refitted after the final layout by :func:`refit_tick_labels`
  (``save_figure`` and ``studies.notebook.save_and_show`` call it);
* a mean drawn from one value per point draws no error bar and says "n = 1"; otherwise the title says what the
  bar is ("mean ± sd over 3 seeds").
"""
from __future__ import annotations

import math
import re
import textwrap
from typing import Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Polygon
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

COLUMN_LABELS = {
    "semantic_scale": "semantic scale S′ (bits)",
    "normalized_scale": "S′ / max S′",
    "interclass": "inter-class term W",
    "imbalance_scale": "imbalance scale S = S′ ⊙ W",
    "count": "training samples N",
    "total": "Σ S′ (bits)",
    "feature_total": "Σ S′ of the features (bits)",
    "m": "m (samples per class)",
    "n": "n (epochs)",
    "epoch": "epoch",
    "iteration": "iteration",
}

#: Accuracy columns: shown in percent, with these axis names.
ACCURACY_LABELS = {
    "top1": "top-1", "top5": "top-5", "accuracy": "accuracy", "overall": "mean per-class accuracy",
    "many": "many-shot accuracy", "medium": "medium-shot accuracy", "few": "few-shot accuracy",
}

#: Columns that count something (epochs, samples, seeds): integer ticks.
INTEGER_COLUMNS = {"epoch", "epochs", "n", "m", "iteration", "step", "steps", "seed", "count"}

_PLURALS = {"class": "classes"}


def _axes(ax, figsize=(7, 3.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _class_labels(table: pd.DataFrame) -> list[str]:
    return [str(v) for v in (table["name"] if "name" in table else table["class"])]


def axis_label(column: str, *, percent: bool = False) -> str:
    """The axis name of a column: accuracies say "(%)" when shown in percent, S′ says "(bits)"."""
    if column in ACCURACY_LABELS:
        return ACCURACY_LABELS[column] + (" (%)" if percent else " (fraction)")
    return COLUMN_LABELS.get(column, column)


def is_fraction(values) -> bool:
    """Whether accuracies ``values`` are fractions (every finite value in [0, 1]) rather than percentages."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return bool(finite.size) and float(finite.min()) >= 0.0 and float(finite.max()) <= 1.0


def as_percent(values) -> np.ndarray:
    """Accuracies in percent: fractions (all in [0, 1]) × 100, anything else unchanged."""
    values = np.asarray(values, dtype=np.float64)
    return 100.0 * values if is_fraction(values) else values


def integer_ticks(ax, axis: str = "x") -> None:
    """Integer tick positions (epochs, n, m) on a linear ``axis``."""
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def log_count_axis(ax, axis: str = "x") -> None:
    """A logarithmic ``axis`` for counts (m samples per class) labelled 10, 100, 1000 rather than 10¹, 10², 10³."""
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    target.set_major_formatter(formatter)
    target.set_minor_formatter(NullFormatter())


# ------------------------------------------------------------------------------------------ tick labels that fit
def _renderer(fig):
    try:
        return fig.canvas.get_renderer()
    except AttributeError:
        return fig._get_renderer()


def _text_size(fig, renderer, text: str, fontproperties) -> tuple[float, float]:
    """Width and height in pixels of ``text`` (several lines allowed), unrotated."""
    if not text:
        return 0.0, 0.0
    probe = Text(0, 0, text, fontproperties=fontproperties, linespacing=1.2)
    probe.set_figure(fig)
    box = probe.get_window_extent(renderer)
    return box.width, box.height


def wrap_label(text: str, width: int | None = None) -> str:
    """``text`` on at most three lines, broken at spaces ("Ankle boot" → "Ankle" + "boot") or, in a name without
    spaces, after "/" ("T-shirt/top" → "T-shirt/" + "top"); ``width`` is the longest line wanted in characters
    (default: the longest unbreakable piece, at least 5). Unchanged when it cannot be broken into ≤ 3 lines."""
    if re.search(r"\s", text.strip()):
        pieces = text.split()
        lines = textwrap.wrap(text, width or max(5, max(len(p) for p in pieces)), break_long_words=False,
                              break_on_hyphens=False)
    else:
        pieces = [p for p in re.split(r"(?<=/)", text) if p]
        if len(pieces) < 2:
            return text
        width = width or max(5, max(len(p) for p in pieces))
        lines, current = [], ""
        for piece in pieces:
            if current and len(current + piece) > width:
                lines.append(current)
                current = piece
            else:
                current += piece
        lines.append(current)
    return "\n".join(lines) if 1 < len(lines) <= 3 else text


def _tick_pixels(ax, axis: str, positions) -> np.ndarray:
    points = np.zeros((len(positions), 2))
    points[:, 0 if axis == "x" else 1] = positions
    return ax.transData.transform(points)[:, 0 if axis == "x" else 1]


def fit_tick_labels(ax, axis: str = "x", *, grow: bool = False, max_width: float = 12.0, slack: float = 0.85):
    """Make the tick labels of ``axis`` not overlap at the axes' present size, changing them as little as
    needed: as they are; wrapped (:func:`wrap_label`); rotated 45° (right-aligned at the tick); rotated 90°;
    rotated 90° in a smaller font (down to 5 pt); when even that does not fit, only every k-th tick is named.
    ``grow``: first widen the figure (to at most ``max_width`` inches) when that lets the labels stay
    horizontal — for figures this module created. ``slack``: fraction of the tick spacing the labels may use,
    room for the final layout to shrink the axes a little.

    The original labels are remembered on the axes, so that :func:`refit_tick_labels` can fit them again after
    ``tight_layout``. Returns the rotation chosen (0, 45 or 90)."""
    fig = ax.figure
    target = ax.xaxis if axis == "x" else ax.yaxis
    stored = getattr(ax, "_semscale_ticklabels", {})
    if axis in stored:
        positions, texts, fontsize = stored[axis]
    else:
        positions = list(target.get_ticklocs())
        texts = [label.get_text() for label in target.get_ticklabels()]
        fontsize = target.get_ticklabels()[0].get_fontsize() if texts else 10.0
        stored[axis] = (positions, texts, fontsize)
        ax._semscale_ticklabels = stored
    if len(positions) == 0:
        return 0
    renderer = _renderer(fig)
    order = np.argsort(positions)
    pixels = _tick_pixels(ax, axis, np.asarray(positions, dtype=np.float64)[order])
    gaps = np.abs(np.diff(pixels)) * slack

    def sizes(labels, size):
        props = matplotlib.font_manager.FontProperties(size=size)
        return np.array([_text_size(fig, renderer, labels[i], props) for i in order]).reshape(-1, 2)

    pad = 0.35 * fontsize * fig.dpi / 72
    line = _text_size(fig, renderer, "Ag", matplotlib.font_manager.FontProperties(size=fontsize))[1]

    def apply(labels, rotation, size=fontsize):
        kwargs = {"fontsize": size}
        if axis == "x":
            kwargs.update(rotation=rotation, ha="right" if rotation == 45 else "center",
                          va="top", rotation_mode="anchor" if rotation == 45 else "default")
        target.set_ticks(positions, labels, **kwargs)
        return rotation

    if axis == "y":   # horizontal text stacked: long names wrapped when the lines fit, else on one line
        for labels in ([_row_label(t) for t in texts], texts):
            extent = sizes(labels, fontsize)[:, 1]
            need = (extent[:-1] + extent[1:]) / 2 + pad
            if len(gaps) == 0 or np.all(need <= gaps):
                return apply(labels, 0)
        return apply(texts, 0, size=max(5.0, fontsize * float(np.min(gaps / need))))

    candidates = [list(texts)]
    wrapped = [wrap_label(t) for t in texts]
    if wrapped != candidates[0]:
        candidates.append(wrapped)
    for labels in candidates:
        width = sizes(labels, fontsize)[:, 0]
        need = (width[:-1] + width[1:]) / 2 + pad
        if len(gaps) == 0 or np.all(need <= gaps):
            return apply(labels, 0)
    if grow and len(gaps):
        # widen the figure so that the wrapped labels fit side by side, if that stays within max_width
        labels = candidates[-1]
        width = sizes(labels, fontsize)[:, 0]
        need = (width[:-1] + width[1:]) / 2 + pad
        new_width = fig.get_figwidth() * float(np.max(need / gaps)) * 1.05   # the axes keep their fractions
        if new_width <= max_width:
            fig.set_size_inches(new_width, fig.get_figheight())
            return apply(labels, 0)
    # rotated labels: neighbouring text bands lie gap·sin(θ) apart
    if len(gaps) == 0 or np.all(gaps * math.sin(math.radians(45)) >= line + pad):
        return apply(texts, 45)
    if np.all(gaps >= line + pad):
        return apply(texts, 90)
    size = max(5.0, fontsize * float(np.min(gaps)) / (line + pad))
    need = (line + pad) * size / fontsize
    step = max(1, math.ceil(need / float(np.min(gaps))))
    if step > 1:     # too many names even at 5 pt: name every step-th tick from the left
        keep = set(order[::step].tolist())
        texts = [t if i in keep else "" for i, t in enumerate(texts)]
    return apply(texts, 90, size=size)


def refit_tick_labels(fig) -> None:
    """Fit again the tick labels that :func:`fit_tick_labels` fitted on any axes of ``fig`` (after a layout
    change such as ``tight_layout``)."""
    for ax in fig.axes:
        for axis in getattr(ax, "_semscale_ticklabels", {}):
            fit_tick_labels(ax, axis)


# ------------------------------------------------------------------------------------- annotations that repel
def _overlap(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def annotate_points(ax, xs, ys, labels: Sequence[str], *, fontsize: float = 7.0, color: str = "0.2"):
    """Label points with names placed so that they overlap neither each other nor the points: each label takes
    the first of several positions around its point (right-above, right-below, left-above, …, then farther out)
    that is free, else the least crowded one, with a thin leader line when it sits away from its point.
    Deterministic (points are labelled in order of x, then y). Returns the annotations."""
    fig = ax.figure
    renderer = _renderer(fig)
    ax.autoscale_view()
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    finite = np.isfinite(xs) & np.isfinite(ys)
    points = ax.transData.transform(np.c_[np.where(finite, xs, 0), np.where(finite, ys, 0)])
    frame = ax.get_window_extent(renderer)
    px_per_pt = fig.dpi / 72
    marker = 3.5 * px_per_pt
    obstacles = [(x - marker, y - marker, x + marker, y + marker) for (x, y), ok in zip(points, finite) if ok]
    props = matplotlib.font_manager.FontProperties(size=fontsize)
    r = 2.5 * px_per_pt
    gap = 1.0 * px_per_pt      # free space kept around every label
    placed = []
    for i in sorted(np.flatnonzero(finite), key=lambda k: (points[k][0], points[k][1])):
        px, py = points[i]
        w, h = _text_size(fig, renderer, str(labels[i]), props)
        best, best_cost = None, np.inf
        for scale in (1, 3, 6, 9, 13):
            d = r * scale
            for dx, dy in ((d, d * 0.4), (d, -h - d * 0.4), (-w - d, d * 0.4), (-w - d, -h - d * 0.4),
                           (-w / 2, d + 2), (-w / 2, -h - d - 2), (d + 2, -h / 2), (-w - d - 2, -h / 2)):
                box = (px + dx - gap, py + dy - gap, px + dx + w + gap, py + dy + h + gap)
                outside = (max(0, frame.x0 - box[0]) + max(0, box[2] - frame.x1) + max(0, frame.y0 - box[1])
                           + max(0, box[3] - frame.y1)) * 3 * h      # leaving the axes is worse than crowding
                cost = sum(_overlap(box, o) for o in obstacles) + outside
                if cost < best_cost - 1e-9:
                    best, best_cost = (dx, dy, scale), cost
                if cost == 0:
                    break
            if best_cost == 0:
                break
        dx, dy, scale = best
        obstacles.append((px + dx - gap, py + dy - gap, px + dx + w + gap, py + dy + h + gap))
        arrow = {"arrowstyle": "-", "color": "0.6", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 2} \
            if scale > 1 else None
        placed.append(ax.annotate(str(labels[i]), (xs[i], ys[i]), xytext=(dx / px_per_pt, dy / px_per_pt),
                                  textcoords="offset points", ha="left", va="bottom", fontsize=fontsize,
                                  color=color, arrowprops=arrow))
    return placed


# ------------------------------------------------------------------------------------------------------- plots
def plot_class_scales(table: pd.DataFrame, column: str = "imbalance_scale", *, sort: bool = True, ax=None,
                      title: str | None = None):
    """Bar chart of one per-class column of a ``quantify_imbalance`` table, classes sorted by it. Class names
    are wrapped or rotated so that they never overlap (a figure made here is widened for them first)."""
    created = ax is None
    ax = _axes(ax, figsize=(max(5, 0.35 * len(table) + 2), 3.5))
    data = pd.DataFrame({"class": _class_labels(table), "value": table[column].to_numpy()})
    if sort:
        data = data.sort_values("value", ascending=False)
    sns.barplot(data=data, x="class", y="value", ax=ax, color=sns.color_palette()[0])
    ax.set_ylabel(COLUMN_LABELS.get(column, column))
    ax.set_xlabel("class")
    ax.set_title(title or f"{COLUMN_LABELS.get(column, column)} per class")
    fit_tick_labels(ax, "x", grow=created, max_width=max(12.0, ax.figure.get_figwidth()))
    return ax


def plot_scale_vs_accuracy(table: pd.DataFrame, accuracy, column: str = "imbalance_scale", *, ax=None,
                           annotate: bool = True, title: str | None = None):
    """Scatter of a per-class quantity against per-class accuracy (in %), with class names and Pearson r."""
    ax = _axes(ax, figsize=(5, 4))
    x = table[column].to_numpy(np.float64)
    y = as_percent(accuracy)
    ax.scatter(x, y, s=18, zorder=3)
    if annotate:
        annotate_points(ax, x, y, _class_labels(table))
    ok = np.isfinite(x) & np.isfinite(y)
    r = np.corrcoef(x[ok], y[ok])[0, 1] if ok.sum() > 1 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0 else np.nan
    ax.set_xlabel(COLUMN_LABELS.get(column, column))
    ax.set_ylabel("per-class accuracy (%)")
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
    ax.set_xticks(positions, [str(q) for q in correlations["quantity"]])
    ax.set_xlim(-0.5, len(correlations) - 0.5)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("Pearson r")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
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
                errorbar: str | tuple | None = "sd", percent: bool | None = None, replicate: str | None = None):
    """Line plot of ``y`` against ``x`` (one line per ``hue``): the mean over repeated rows (seeds, classes) with
    an ``errorbar`` band (seaborn's: "sd", "se", ("ci", 95), None).

    Accuracy columns (top1, many, medium, few, accuracy) are drawn in percent (``percent=None``: when they hold
    fractions). Epochs, n and m get integer ticks. Where every point is one row (one seed) no band is drawn and
    the title says "n = 1"; otherwise it says what the band is, e.g. "mean ± sd over 3 seeds". ``replicate``
    names what the rows repeat over (default: "seed" when there is a seed column, else "class", else "row")."""
    ax = _axes(ax, figsize=(6, 3.5))
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
            unit = "run"     # rows repeat for another reason too (no hue separates them): say runs, not seeds
    if n_high <= 1:
        errorbar, note = None, f"n = 1 {unit} per point, no error bar"
    else:
        n_text = f"{n_low}" if n_low == n_high else f"{n_low}–{n_high}"
        note = f"{_errorbar_words(errorbar)} over {n_text} {_PLURALS.get(unit, unit + 's')}"
    sns.lineplot(data=data, x=x, y=y, hue=hue, ax=ax, errorbar=errorbar, marker="o")
    ax.set_xlabel(COLUMN_LABELS.get(x, x))
    ax.set_ylabel(axis_label(y, percent=shown_percent))
    if x in INTEGER_COLUMNS:
        integer_ticks(ax, "x")
    ax.set_title(f"{title}\n({note})" if title else note)
    if ax.get_legend() is not None:
        ax.legend(fontsize=8, title=hue, title_fontsize=8)
    ax._semscale_note = note
    return ax


def _interval_rows(table: pd.DataFrame, label: str) -> pd.DataFrame:
    missing = {label, "r", "ci_low", "ci_high"} - set(table.columns)
    if missing:
        raise ValueError(f"the table needs columns {label}, r, ci_low, ci_high; missing {sorted(missing)}")
    rows = table.copy()
    for column in ("r", "ci_low", "ci_high"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce").astype(np.float64)
    rows[label] = rows[label].astype(str)
    return rows


def _row_label(name: str, longest: int = 24) -> str:
    """A y tick label (a row of a forest or ranking plot), wrapped when longer than ``longest`` characters."""
    return wrap_label(name, longest - 4) if len(name) > longest else name


def _sorted_by_r(rows: pd.DataFrame) -> pd.DataFrame:
    """Largest r first (drawn on top); undefined r last; ties in input order."""
    return rows.assign(_key=rows["r"].fillna(-np.inf)).sort_values("_key", ascending=False, kind="stable") \
        .drop(columns="_key").reset_index(drop=True)


def _interval_text(r, low, high) -> str:
    if not np.isfinite(r):
        return "undefined"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{r:+.2f}"
    return f"{r:+.2f} [{low:+.2f}, {high:+.2f}]"


def _draw_intervals(ax, rows: pd.DataFrame, y: np.ndarray, *, sizes=None, marker="o", color="C0"):
    r, low, high = rows["r"].to_numpy(), rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy()
    has_ci = np.isfinite(low) & np.isfinite(high) & np.isfinite(r)
    ax.hlines(y[has_ci], low[has_ci], high[has_ci], color=color, linewidth=1.5, zorder=2)
    ax.scatter(np.where(np.isfinite(r), r, np.nan), y, s=sizes if sizes is not None else 36, marker=marker,
               color=color, zorder=3)
    for yi, ri, lo, hi in zip(y, r, low, high):
        ax.annotate(_interval_text(ri, lo, hi), (1.02, yi), xycoords=("axes fraction", "data"), va="center",
                    fontsize=8, color="0.25", annotation_clip=False)


def _r_limits(ax, *columns) -> None:
    values = np.concatenate([np.asarray(c, dtype=np.float64) for c in columns] + [np.zeros(1)])
    values = values[np.isfinite(values)]
    low, high = float(values.min()), float(values.max())
    margin = 0.08 * max(high - low, 0.1)
    ax.set_xlim(max(-1.05, low - margin), min(1.05, high + margin))


def forest_plot(table: pd.DataFrame, *, ax=None, title: str | None = None, sort: bool = True):
    """Forest plot: one row per study (``study``, ``r``, ``ci_low``, ``ci_high``, optional ``weight`` setting the
    marker area), largest r on top (``sort``), each study a square with its CI; a row with ``study == "pooled"``
    is drawn below a line as a diamond spanning its CI. Vertical line at 0; the estimate and CI are written
    beside each row. Returns the ax."""
    rows = _interval_rows(table, "study")
    pooled = rows[rows["study"].str.lower() == "pooled"]
    studies = rows[rows["study"].str.lower() != "pooled"].reset_index(drop=True)
    if sort:
        studies = _sorted_by_r(studies)
    n = len(studies)
    ax = _axes(ax, figsize=(7, 1.2 + 0.38 * (n + 2 * len(pooled))))
    y = np.arange(n, 0, -1, dtype=np.float64) + (1.0 if len(pooled) else 0.0)
    sizes = None
    if "weight" in studies and pd.to_numeric(studies["weight"], errors="coerce").notna().any():
        weight = pd.to_numeric(studies["weight"], errors="coerce").fillna(0).to_numpy(np.float64)
        sizes = 15 + 120 * weight / weight.max() if weight.max() > 0 else None
    _draw_intervals(ax, studies, y, sizes=sizes, marker="s")
    ticks, labels = list(y), list(studies["study"])
    if len(pooled):
        p = pooled.iloc[0]
        ax.axhline(1.0, color="0.7", linewidth=0.8)
        if np.isfinite(p["ci_low"]) and np.isfinite(p["ci_high"]) and np.isfinite(p["r"]):
            diamond = Polygon([(p["ci_low"], 0.0), (p["r"], 0.28), (p["ci_high"], 0.0), (p["r"], -0.28)],
                              closed=True, facecolor="C3", edgecolor="C3", zorder=3, gid="pooled")
            ax.add_patch(diamond)
        elif np.isfinite(p["r"]):
            ax.scatter([p["r"]], [0.0], marker="D", color="C3", s=60, zorder=3, gid="pooled")
        ax.annotate(_interval_text(p["r"], p["ci_low"], p["ci_high"]), (1.02, 0.0),
                    xycoords=("axes fraction", "data"), va="center", fontsize=8, fontweight="bold",
                    annotation_clip=False)
        ticks.append(0.0)
        labels.append(str(p["study"]))
    return _finish_r_axes(ax, rows, ticks, labels, (min(ticks) - 0.7, max(ticks) + 0.7),
                          "Pearson r with per-class accuracy", title)


def ranking_plot(table: pd.DataFrame, *, ax=None, title: str | None = None):
    """Pooled correlation per predictor (``predictor``, ``r``, ``ci_low``, ``ci_high``): a dot and its CI per
    row, sorted by r (largest on top), vertical line at 0, the estimate and CI written beside each row."""
    rows = _sorted_by_r(_interval_rows(table, "predictor"))
    n = len(rows)
    ax = _axes(ax, figsize=(7, 1.2 + 0.38 * n))
    y = np.arange(n, 0, -1, dtype=np.float64)
    _draw_intervals(ax, rows, y)
    return _finish_r_axes(ax, rows, y, list(rows["predictor"]), (0.3, n + 0.7),
                          "pooled Pearson r with per-class accuracy (with CI)", title)


def _finish_r_axes(ax, rows: pd.DataFrame, ticks, labels, ylim, xlabel: str, title: str | None):
    """The common end of :func:`forest_plot` and :func:`ranking_plot`: a dashed line at r = 0, row labels, limits
    that hold every CI, labels and title; returns ``ax``."""
    ax.axvline(0, color="grey", linewidth=0.8, linestyle="--", zorder=1)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(*ylim)
    _r_limits(ax, rows["r"], rows["ci_low"], rows["ci_high"])
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    fit_tick_labels(ax, "y")
    return ax


def save_figure(ax_or_fig, path) -> None:
    """Save the figure of ``ax_or_fig`` as PNG (150 dpi, tight, tick labels refitted) and close it."""
    figure = ax_or_fig.figure if hasattr(ax_or_fig, "figure") and not isinstance(ax_or_fig, plt.Figure) \
        else ax_or_fig
    finish_layout(figure)
    figure.savefig(path, dpi=150)
    plt.close(figure)


def finish_layout(fig) -> None:
    """``tight_layout``, then refit the tick labels to the final axes sizes, then ``tight_layout`` again."""
    fig.tight_layout()
    if any(getattr(ax, "_semscale_ticklabels", None) for ax in fig.axes):
        refit_tick_labels(fig)
        fig.tight_layout()


def use_headless_backend() -> None:
    """Switch matplotlib to Agg (for command-line use on machines without a display)."""
    matplotlib.use("Agg")


def grid(n_panels: int, *, ncols: int = 3, panel_size: Sequence[float] = (4.5, 3.5)):
    """A figure with ``n_panels`` axes in rows of ``ncols``; unused axes are hidden. Returns (fig, axes): a flat
    numpy array of the ``n_panels`` used axes (index, iterate or ``.ravel()`` it)."""
    nrows = -(-n_panels // ncols)
    fig, axes = plt.subplots(nrows, min(ncols, n_panels),
                             figsize=(panel_size[0] * min(ncols, n_panels), panel_size[1] * nrows), squeeze=False)
    flat = list(axes.ravel())
    for extra in flat[n_panels:]:
        extra.set_visible(False)
    used = np.empty(n_panels, dtype=object)
    used[:] = flat[:n_panels]
    return fig, used


__all__ = ["ACCURACY_LABELS", "COLUMN_LABELS", "INTEGER_COLUMNS", "annotate_points", "as_percent", "axis_label",
           "finish_layout", "fit_tick_labels", "forest_plot", "grid", "integer_ticks", "is_fraction",
           "log_count_axis", "plot_class_scales", "plot_correlations", "plot_curves", "plot_scale_vs_accuracy",
           "ranking_plot", "refit_tick_labels", "save_figure", "use_headless_backend", "wrap_label"]
