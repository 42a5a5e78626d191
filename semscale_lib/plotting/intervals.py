"""Correlations with their intervals, one row each: forest plots of per-study r with the pooled estimate, and
the ranking of pooled r per predictor (notebook 06). Panels compared side by side share one r axis."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.patches import Polygon

from .layout import grid, new_axes
from .names import display_name
from .style import INTERVAL_TEXT_SIZE, PALETTE, REFERENCE_COLOR, style, style_axes
from .text import fit_tick_labels

R_AXIS = "Pearson r with per-class accuracy"


def _interval_rows(table: pd.DataFrame, label: str) -> pd.DataFrame:
    missing = {label, "r", "ci_low", "ci_high"} - set(table.columns)
    if missing:
        raise ValueError(f"the table needs columns {label}, r, ci_low, ci_high; missing {sorted(missing)}")
    rows = table.copy()
    for column in ("r", "ci_low", "ci_high"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce").astype(np.float64)
    rows[label] = rows[label].astype(str)
    return rows


def _sorted_by_r(rows: pd.DataFrame) -> pd.DataFrame:
    """Largest r first (drawn on top); undefined r last; ties in input order."""
    return rows.assign(_key=rows["r"].fillna(-np.inf)).sort_values("_key", ascending=False, kind="stable") \
        .drop(columns="_key").reset_index(drop=True)


def interval_text(r, low, high) -> str:
    """"+0.35 [+0.20, +0.50]"; the estimate alone without a CI; "undefined" without an estimate."""
    if not np.isfinite(r):
        return "undefined"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{r:+.2f}"
    return f"{r:+.2f} [{low:+.2f}, {high:+.2f}]"


def _draw_intervals(ax, rows: pd.DataFrame, y: np.ndarray, *, sizes=None, marker="o", color=PALETTE[0]):
    r, low, high = rows["r"].to_numpy(), rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy()
    has_ci = np.isfinite(low) & np.isfinite(high) & np.isfinite(r)
    ax.hlines(y[has_ci], low[has_ci], high[has_ci], color=color, linewidth=1.5, zorder=2)
    ax.scatter(np.where(np.isfinite(r), r, np.nan), y, s=sizes if sizes is not None else 36, marker=marker,
               color=color, zorder=3)
    for yi, ri, lo, hi in zip(y, r, low, high):
        ax.annotate(interval_text(ri, lo, hi), (1.02, yi), xycoords=("axes fraction", "data"), va="center",
                    fontsize=INTERVAL_TEXT_SIZE, color="0.2", annotation_clip=False)


def r_range(*columns, margin: float = 0.08) -> tuple[float, float]:
    """An r axis holding every finite value of ``columns`` (estimates and CI bounds) and 0, with a margin, within
    [-1.05, 1.05]: pass every panel's columns to share one range."""
    values = np.concatenate([np.asarray(c, dtype=np.float64).ravel() for c in columns] + [np.zeros(1)])
    values = values[np.isfinite(values)]
    low, high = float(values.min()), float(values.max())
    pad = margin * max(high - low, 0.1)
    return max(-1.05, low - pad), min(1.05, high + pad)


def forest_plot(table: pd.DataFrame, *, ax=None, title: str | None = None, sort: bool = True,
                xlim: tuple[float, float] | None = None):
    """Forest plot: one row per study (``study``, ``r``, ``ci_low``, ``ci_high``, optional ``weight`` setting the
    marker area), largest r on top (``sort``), each study a square with its CI; a row with ``study == "pooled"``
    is drawn below a line as a diamond spanning its CI. Vertical line at 0; the estimate and CI are written
    beside each row. ``xlim``: the r axis (shared by the panels of :func:`forest_figure`; default: this table's
    values). ``title`` is shown by its display name. Returns the ax."""
    with style():
        rows = _interval_rows(table, "study")
        pooled = rows[rows["study"].str.lower() == "pooled"]
        studies = rows[rows["study"].str.lower() != "pooled"].reset_index(drop=True)
        if sort:
            studies = _sorted_by_r(studies)
        n = len(studies)
        ax = new_axes(ax, figsize=(7, 1.2 + 0.38 * (n + 2 * len(pooled))))
        style_axes(ax)
        y = np.arange(n, 0, -1, dtype=np.float64) + (1.0 if len(pooled) else 0.0)
        sizes = None
        if "weight" in studies and pd.to_numeric(studies["weight"], errors="coerce").notna().any():
            weight = pd.to_numeric(studies["weight"], errors="coerce").fillna(0).to_numpy(np.float64)
            sizes = 15 + 120 * weight / weight.max() if weight.max() > 0 else None
        _draw_intervals(ax, studies, y, sizes=sizes, marker="s")
        ticks, labels = list(y), [display_name(s) for s in studies["study"]]
        if len(pooled):
            p = pooled.iloc[0]
            ax.axhline(1.0, color="0.7", linewidth=0.8)
            if np.isfinite(p["ci_low"]) and np.isfinite(p["ci_high"]) and np.isfinite(p["r"]):
                diamond = Polygon([(p["ci_low"], 0.0), (p["r"], 0.28), (p["ci_high"], 0.0), (p["r"], -0.28)],
                                  closed=True, facecolor=PALETTE[3], edgecolor=PALETTE[3], zorder=3, gid="pooled")
                ax.add_patch(diamond)
            elif np.isfinite(p["r"]):
                ax.scatter([p["r"]], [0.0], marker="D", color=PALETTE[3], s=60, zorder=3, gid="pooled")
            ax.annotate(interval_text(p["r"], p["ci_low"], p["ci_high"]), (1.02, 0.0),
                        xycoords=("axes fraction", "data"), va="center", fontsize=INTERVAL_TEXT_SIZE,
                        fontweight="bold", annotation_clip=False)
            ticks.append(0.0)
            labels.append(str(p["study"]))
        return _finish_r_axes(ax, rows, ticks, labels, (min(ticks) - 0.7, max(ticks) + 0.7), R_AXIS, title,
                              xlim)


def ranking_plot(table: pd.DataFrame, *, ax=None, title: str | None = None,
                 xlim: tuple[float, float] | None = None):
    """Pooled correlation per predictor (``predictor``, ``r``, ``ci_low``, ``ci_high``): a dot and its CI per
    row, predictors by their display names, sorted by r (largest on top), vertical line at 0, the estimate and
    CI written beside each row. ``xlim``: the r axis (default: this table's values)."""
    with style():
        rows = _sorted_by_r(_interval_rows(table, "predictor"))
        n = len(rows)
        ax = new_axes(ax, figsize=(7, 1.2 + 0.38 * n))
        style_axes(ax)
        y = np.arange(n, 0, -1, dtype=np.float64)
        _draw_intervals(ax, rows, y)
        return _finish_r_axes(ax, rows, y, [display_name(p) for p in rows["predictor"]], (0.3, n + 0.7),
                              "pooled Pearson r with per-class accuracy (with CI)", title, xlim)


def _finish_r_axes(ax, rows: pd.DataFrame, ticks, labels, ylim, xlabel: str, title: str | None, xlim):
    """The common end of :func:`forest_plot` and :func:`ranking_plot`: a dashed line at r = 0, row labels, limits
    that hold every CI (or ``xlim``), labels and title; returns ``ax``."""
    ax.axvline(0, color=REFERENCE_COLOR, linewidth=0.8, linestyle="--", zorder=1)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(*ylim)
    ax.set_xlim(*(xlim or r_range(rows["r"], rows["ci_low"], rows["ci_high"])))
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(display_name(title))
    fit_tick_labels(ax, "y")
    return ax


def _ci_words(confidence: float) -> str:
    return f"{100 * confidence:.{0 if round(100 * confidence, 6).is_integer() else 1}f} % CI"


def forest_figure(tables: Mapping[str, pd.DataFrame], *, confidence: float, ncols: int = 3):
    """Notebook 06's forest plots, one panel per predictor, all on one r axis (the union of every estimate and
    CI, within [-1, 1]) and with the studies in one order (by name; a study missing from a predictor's table is
    a row marked "undefined"), so that panels can be compared row by row; study names on the first column only.

    ``tables``: {predictor: DataFrame with columns study, r, ci_low, ci_high, weight (marker area), the last row
    ``study == "pooled"``} (``studies.tracking.forest_table``), in panel order; ``confidence``: the level of the
    CIs (e.g. 0.995), stated in the figure title. Panels are titled by the predictors' display names. Returns
    the Figure."""
    if not tables:
        raise ValueError("forest_figure needs at least one predictor's table")
    rows = {name: _interval_rows(table, "study") for name, table in tables.items()}
    studies = sorted({s for t in rows.values() for s in t["study"] if s.lower() != "pooled"})
    xlim = r_range(*[t[c] for t in rows.values() for c in ("r", "ci_low", "ci_high")])
    ncols = min(ncols, len(rows))
    fig, axes = grid(len(rows), ncols=ncols, panel_size=(4.8, 0.42 * len(studies) + 2.2))
    for i, (ax, (name, table)) in enumerate(zip(axes, rows.items())):
        pooled = table[table["study"].str.lower() == "pooled"]
        aligned = table.set_index("study").reindex(studies).reset_index()
        forest_plot(pd.concat([aligned, pooled], ignore_index=True), ax=ax, title=name, sort=False, xlim=xlim)
        if i % ncols:
            ax.set_yticks(ax.get_yticks(), [""] * len(ax.get_yticks()))
            ax._semscale_ticklabels.pop("y", None)
    with style():
        fig.suptitle(f"Pearson r with per-class accuracy per study, {_ci_words(confidence)}; "
                     "the diamond is the pooled estimate (random effects)")
    return fig


def ranking_figure(ranking: pd.DataFrame, *, confidence: float):
    """Notebook 06's ranking of predictors: pooled r per predictor with its CI, largest on top.

    ``ranking``: columns predictor, k (studies where it is defined), r, ci_low, ci_high
    (``studies.tracking.pooled_ranking``); rows with r undefined are left out. ``confidence``: the CI level,
    stated in the title with the number of studies. Returns the Figure."""
    rows = _interval_rows(ranking, "predictor").dropna(subset=["r"]).reset_index(drop=True)
    if rows.empty:
        raise ValueError("no predictor has a pooled r")
    ks = sorted(set(int(k) for k in rows["k"])) if "k" in rows else []
    studies = f", {ks[0]} studies" if len(ks) == 1 else ""
    if len(ks) > 1:     # the number of studies differs: say it per row
        rows["predictor"] = [f"{display_name(p)} (k = {int(k)})" for p, k in zip(rows["predictor"], rows["k"])]
    with style():
        ax = new_axes(None, figsize=(7.5, 0.45 * len(rows) + 1.6))
        ranking_plot(rows, ax=ax, title=f"pooled Pearson r with per-class accuracy ({_ci_words(confidence)})"
                                         f"{studies}")
        ax.set_xlabel(f"pooled Pearson r ({_ci_words(confidence)})")
    return ax.figure


__all__ = ["R_AXIS", "forest_figure", "forest_plot", "interval_text", "r_range", "ranking_figure", "ranking_plot"]
