"""Notebooks 03 and 04's figures: accuracy per loss without / with the 1/S weights, learning curves per
method, how S and the DSB weights evolve, and the effect of the stage length n (Fig. 5)."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .legends import place_legend
from .names import display_name, is_fraction
from .panels import plot_curves
from .style import (ANNOTATION_SIZE, PALETTE, REFERENCE_COLOR, SECONDARY_LINESTYLE, accuracy_limits,
                    integer_ticks, series_style, style, style_axes)
from .text import annotate_points

WEIGHTED_SUFFIX = " + S-weights"


def _spread_words(n_seeds: int) -> str:
    return f"mean ± sd over {n_seeds} seeds" if n_seeds > 1 else "1 seed, no error bar"


def _empty_panel(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=REFERENCE_COLOR)


def losses_figure(groups: pd.DataFrame, losses: Sequence[str], *, few_threshold: float):
    """Notebook 03: bars of top-1 and of few-shot accuracy (%) per base loss, without and with the static 1/S
    class weights, mean ± sd over seeds (the titles say so; one seed: no error bar), the mean written on each
    bar.

    ``groups``: columns method, seed, top1, few (fractions; ``reweighting.group_table``), the weighted methods
    named "<loss> + S-weights"; ``losses``: the base losses in bar order; ``few_threshold``: few-shot classes
    have fewer training images than this (stated in the title). Returns the Figure."""
    data = groups.assign(weighted=groups["method"].str.endswith(WEIGHTED_SUFFIX),
                         loss=groups["method"].str.replace(WEIGHTED_SUFFIX, "", regex=False))
    n_seeds = int(data.groupby("method")["seed"].nunique().max())
    x = np.arange(len(losses))
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.2))
        titles = {"top1": "overall top-1", "few": f"few-shot accuracy (< {few_threshold:g} training images)"}
        for ax, column in zip(axes, ("top1", "few")):
            style_axes(ax)
            tops = [0.0]
            for offset, weighted, label, hatch in ((-0.2, False, "without weights", None),
                                                   (0.2, True, "with 1/S weights", "//")):
                part = data[data["weighted"] == weighted].groupby("loss")[column]
                mean = 100 * part.mean().reindex(losses)
                sd = 100 * part.std(ddof=1).reindex(losses) if n_seeds > 1 else None
                color = PALETTE[1 if weighted else 0]
                bars = ax.bar(x + offset, mean.fillna(0), width=0.4, color=color, hatch=hatch, edgecolor="white",
                              label=label, yerr=None if sd is None else sd.fillna(0), capsize=3,
                              error_kw={"ecolor": "0.2", "elinewidth": 1})
                for bar, value, spread in zip(bars, mean, sd if sd is not None else [0.0] * len(mean)):
                    top = (value if np.isfinite(value) else 0.0) + (spread if np.isfinite(spread) else 0.0)
                    tops.append(top)
                    ax.annotate("—" if not np.isfinite(value) else f"{value:.1f}",
                                (bar.get_x() + bar.get_width() / 2, top), xytext=(0, 3),
                                textcoords="offset points", ha="center", va="bottom", fontsize=ANNOTATION_SIZE)
            ax.set_ylim(0, min(100.0, max(tops) * 1.3 + 5))
            ax.set_xticks(x, [display_name(loss) for loss in losses])
            ax.set(ylabel=f"{'top-1' if column == 'top1' else 'few-shot accuracy'} (%)",
                   title=f"{titles[column]}\n({_spread_words(n_seeds)})")
            if not data[column].notna().any():
                _empty_panel(ax, f"no class has fewer than {few_threshold:g} training images")
        place_legend(axes[1])
    return fig


def tail_title(tail: str, *, many_threshold: float, few_threshold: float) -> str:
    """What a shot group means, with the thresholds it was computed with: "few-shot: < 200 training images",
    "medium-shot: 200–1000 training images", "many-shot: > 1000 training images"."""
    if tail == "few":
        return f"few-shot: < {few_threshold:g} training images"
    if tail == "medium":
        return f"medium-shot: {few_threshold:g}–{many_threshold:g} training images"
    if tail == "many":
        return f"many-shot: > {many_threshold:g} training images"
    raise ValueError(f"tail must be 'few', 'medium' or 'many', got {tail!r}")


def _method_handles(methods: Sequence[str]) -> list[Line2D]:
    return [Line2D([], [], markersize=6, label=display_name(m), **series_style(i)) for i, m in enumerate(methods)]


def learning_curves_figure(curves: pd.DataFrame, *, stage_epoch: int | None = None, many_threshold: float,
                           few_threshold: float, tail: str = "few"):
    """Notebook 04's learning curves: test top-1 per epoch and the ``tail`` group's accuracy per epoch (%), mean
    ± sd over seeds, one colour, marker and line style per method (in order of appearance). Runs that evaluated the
    test set only once (after training) get one panel of validation top-1 per epoch instead. The tail panel's
    title states the thresholds given (:func:`tail_title`): they must be the ones the group columns of
    ``curves`` were computed with. ``stage_epoch``: a vertical line at the end of stage 2 (epoch n), with a
    legend entry. Validation top-1 (``val_top1``, when present) is drawn dotted with hollow markers in each
    method's colour.

    ``curves``: columns method, seed, epoch, top1, many, medium, few (fractions; NaN where not evaluated),
    optionally val_top1 (``reweighting.learning_curves``). Returns the Figure."""
    title = tail_title(tail, many_threshold=many_threshold, few_threshold=few_threshold)
    methods = list(dict.fromkeys(curves["method"]))
    if curves.groupby(["method", "seed"])["top1"].count().max() <= 1 and "val_top1" in curves:
        return _validation_curves(curves, methods, stage_epoch)
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(13.5, 4.3))
        plot_curves(curves, "epoch", "top1", hue="method", ax=axes[0], title="test top-1 per epoch", legend=False)
        handles = _method_handles(methods)
        if "val_top1" in curves and curves["val_top1"].notna().any():
            val = curves.dropna(subset=["val_top1"]).groupby(["method", "epoch"], sort=False)["val_top1"].mean()
            for i, method in enumerate(methods):
                if method in val.index.get_level_values(0):
                    line = val.loc[method]
                    axes[0].plot(line.index, 100 * line.to_numpy(), markerfacecolor="none", markersize=6,
                                 **{**series_style(i), "linestyle": SECONDARY_LINESTYLE})
            handles.append(Line2D([], [], color=REFERENCE_COLOR, marker="o", markerfacecolor="none",
                                  linestyle=SECONDARY_LINESTYLE, label="validation top-1 (dotted, hollow)"))
        if curves[tail].notna().any():
            plot_curves(curves, "epoch", tail, hue="method", ax=axes[1], title=f"accuracy per epoch, {title}",
                        legend=False)
        else:
            axes[1].set(title=title, xlabel="epoch", ylabel=f"{tail}-shot accuracy (%)")
            style_axes(axes[1])
            _empty_panel(axes[1], f"no {tail}-shot class ({title.split(': ')[1]})")
        if stage_epoch is not None:
            stage_line = {"color": "0.5", "linestyle": "-", "linewidth": 3, "alpha": 0.45}
            for ax in axes:
                ax.axvline(stage_epoch, zorder=1, **stage_line)
            handles.append(Line2D([], [], label=f"end of stage 2 (epoch n = {stage_epoch})", **stage_line))
        place_legend(axes[1], handles, [h.get_label() for h in handles], where="outside", title="method")
    return fig


def _validation_curves(curves: pd.DataFrame, methods: list, stage_epoch: int | None):
    """One panel of validation top-1 per epoch (mean ± sd over seeds), for runs that evaluate the test set only
    once, after training."""
    with style():
        fig, ax = plt.subplots(figsize=(10, 4.3))
        plot_curves(curves.assign(top1=curves["val_top1"]), "epoch", "top1", hue="method", ax=ax, legend=False,
                    title="validation top-1 per epoch (held-out training images; the test set is used once, at "
                          "the end)")
        ax.set_ylabel("validation top-1 (%)")
        handles = _method_handles(methods)
        if stage_epoch is not None:
            stage_line = {"color": "0.5", "linestyle": "-", "linewidth": 3, "alpha": 0.45}
            ax.axvline(stage_epoch, zorder=1, **stage_line)
            handles.append(Line2D([], [], label=f"end of stage 2 (epoch n = {stage_epoch})", **stage_line))
        place_legend(ax, handles, [h.get_label() for h in handles], where="outside", title="method")
    return fig


def _representatives(history: pd.DataFrame, k: int) -> list:
    """``k`` classes spread over the classes' training count (column ``count``) or else their final weight a:
    the largest, the smallest and evenly spaced ranks between."""
    last = history[history["iteration"] == history["iteration"].max()].set_index("class")
    key = last["count"] if "count" in last else last["a"]
    ranked = key.sort_values(ascending=False).index.tolist()
    picks = np.unique(np.round(np.linspace(0, len(ranked) - 1, k)).astype(int))
    return [ranked[i] for i in picks]


def weights_evolution_figure(history: pd.DataFrame, *, method: str, max_classes: int = 10):
    """Notebook 04: S and the class weight a of a DSB run at each logged refresh (x: iteration). Up to
    ``max_classes`` classes: one series per class. More (e.g. 100): the min–max and 25–75 % bands over all
    classes, and 5 representative classes — the largest, smallest and evenly spaced ranks of the training count
    (column ``count``, when given) or else of the final a — named in the legend.

    ``history``: columns epoch, iteration, class, name, S, a (``reweighting.weights_history``), optional count;
    ``method``: the run's method, in the titles. Returns the Figure."""
    classes = list(dict.fromkeys(history["class"]))
    many = len(classes) > max_classes
    shown = _representatives(history, 5) if many else classes
    names = history.drop_duplicates("class").set_index("class")["name"]
    by = "count" if "count" in history else "final a"
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(13.5, 4.3))
        for ax, column, label in ((axes[0], "S", "imbalance scale S"), (axes[1], "a", "class weight a")):
            style_axes(ax)
            if many:
                spread = history.groupby("iteration")[column]
                ax.fill_between(spread.min().index, spread.min(), spread.max(), color="0.8",
                                label=f"all {len(classes)} classes: min–max")
                ax.fill_between(spread.min().index, spread.quantile(0.25), spread.quantile(0.75), color="0.6",
                                label="all classes: 25–75 %")
            for i, c in enumerate(shown):
                part = history[history["class"] == c]
                ax.plot(part["iteration"], part[column], markersize=4, label=str(names[c]), **series_style(i))
            ax.set(xlabel="iteration", ylabel=label, title=f"{method}: {label} at each logged refresh")
            integer_ticks(ax)
        title = f"class (5 of {len(classes)}, spread by {by})" if many else "class"
        place_legend(axes[1], where="outside", title=title)
    return fig


def stage_sweep_figure(stage: pd.DataFrame, *, baseline=None, method: str):
    """Notebook 04 (the paper's Fig. 5): final top-1 (%) of ``method`` against the stage length n, the mean ± sd
    over seeds when ``stage`` has several rows per n, the value written beside each point; the accuracy axis
    spans at least 10 points (one point is not drawn on a sliver of an axis). ``baseline``: the method without
    DSB as a labelled horizontal line — a top-1 (fraction) or (label, top-1).

    ``stage``: columns n, top1 (fraction), optionally seed. Returns the Figure."""
    scale = 100.0 if is_fraction(stage["top1"]) else 1.0
    summary = stage.groupby("n")["top1"].agg(["mean", "std", "size"]).sort_index()
    summary[["mean", "std"]] *= scale
    n_seeds = int(summary["size"].max())
    label, base = (baseline if isinstance(baseline, tuple) else ("baseline", baseline))
    base = None if base is None else scale * float(base)
    with style():
        fig, ax = plt.subplots(figsize=(6, 4))
        style_axes(ax)
        ns, mean = summary.index.to_numpy(np.float64), summary["mean"].to_numpy()
        sd = summary["std"].fillna(0).to_numpy() if n_seeds > 1 else None
        ax.errorbar(ns, mean, yerr=sd, capsize=3, markersize=7, label=display_name(method),
                    **series_style(0))
        if base is not None:
            ax.axhline(base, color=REFERENCE_COLOR, linestyle="--", linewidth=1.2, label=f"{label}: {base:.1f} %")
        spread = sd if sd is not None else 0.0
        accuracy_limits(ax, np.concatenate([mean - spread, mean + spread, [np.nan if base is None else base]]))
        if len(ns) == 1:
            ax.set_xlim(ns[0] - 1, ns[0] + 1)
        else:
            ax.set_xlim(ns.min() - 0.05 * np.ptp(ns) - 0.5, ns.max() + 0.05 * np.ptp(ns) + 0.5)
        integer_ticks(ax)
        annotate_points(ax, ns, mean, [f"{v:.1f} %" for v in mean], fontsize=ANNOTATION_SIZE + 1)
        ax.set(xlabel="stage length n (epochs before re-weighting)", ylabel="final top-1 (%)",
               title=f"{display_name(method)}: final top-1 against n\n({_spread_words(n_seeds)})")
        place_legend(ax)
    return fig


__all__ = ["learning_curves_figure", "losses_figure", "stage_sweep_figure", "tail_title",
           "weights_evolution_figure"]
