"""Figures people would rather look at than read: per-class scales, scale against accuracy, correlations with
their CIs, learning curves, forest and ranking plots, and one figure function per notebook figure.

Modules: ``names`` (display names of identifiers and columns), ``style`` (palette, markers, font sizes, the rc
context), ``text`` (tick labels that fit, point labels that repel), ``legends`` (legends that hide no data),
``layout`` (grids, final layout, saving), ``panels`` (one-panel plots on an ``ax``), ``intervals`` (forest and
ranking plots), ``correlation`` (notebook 02), ``marginal`` (notebook 01), ``training`` (notebooks 03 and 04).
Every name is importable from ``semscale_lib.plotting``.

Conventions kept by every function here:

* one style (:func:`style`): seaborn's ``colorblind`` palette, each series its own colour, marker and line
  style, text readable at the saved 150 dpi (body 10 pt, ticks ≥ 9 pt, annotations ≥ 8 pt); importing the
  package changes no global matplotlib state;
* every label, legend entry and tick shows a :func:`display_name` ("k-NN accuracy", "S (α = 1)"), never an
  identifier;
* accuracies are shown in percent (0–100): columns named like ``top1``, ``many``, ``medium``, ``few`` or
  ``accuracy`` holding fractions are multiplied by 100 and the axis says "(%)"; an accuracy axis of a figure
  function spans at least 10 points;
* S′ is in bits, and its axis says so;
* class (or predictor) names on an axis never overlap: they are wrapped, rotated or thinned as the axes'
  width requires (:func:`fit_tick_labels`), and refitted after the final layout (``finish_layout``, which
  ``save_figure`` and ``studies.notebook.save_and_show`` call), which also re-places legends so that they hide
  no data (:func:`place_legend`);
* panels compared side by side share their axis (forest plots, correlation panels);
* a mean drawn from one value per point draws no error bar and says "n = 1"; otherwise the title says what the
  bar is ("mean ± sd over 3 seeds").

Panel functions draw on an ``ax`` (created when omitted) and return it; figure functions (``*_figure``) return
the Figure; none calls ``plt.show``.
"""
from __future__ import annotations

from .correlation import correlation_figure, correlation_panel, scale_accuracy_figure
from .intervals import R_AXIS, forest_figure, forest_plot, interval_text, r_range, ranking_figure, ranking_plot
from .layout import finish_layout, grid, new_axes, save_figure, use_headless_backend
from .legends import data_obstacles, place_legend, replace_legends
from .marginal import marginal_effect_figure
from .names import (ACCURACY_LABELS, COLUMN_LABELS, DISPLAY_NAMES, INTEGER_COLUMNS, as_percent, axis_label,
                    display_name, is_fraction)
from .panels import (FISHER_CI, pearson_r, plot_class_scales, plot_correlations, plot_curves,
                     plot_scale_vs_accuracy)
from .style import (ANNOTATION_SIZE, FONT_SIZE, LEGEND_SIZE, LINESTYLES, MARKERS, MIN_TICK_SIZE, PALETTE,
                    STYLE_RC, TICK_SIZE, accuracy_limits, integer_ticks, log_count_axis, series_style, style,
                    style_axes)
from .text import annotate_points, fit_tick_labels, refit_tick_labels, row_label, wrap_label
from .training import (learning_curves_figure, losses_figure, stage_sweep_figure, tail_title,
                       weights_evolution_figure)

__all__ = ["ACCURACY_LABELS", "ANNOTATION_SIZE", "COLUMN_LABELS", "DISPLAY_NAMES", "FISHER_CI", "FONT_SIZE",
           "INTEGER_COLUMNS", "LEGEND_SIZE", "LINESTYLES", "MARKERS", "MIN_TICK_SIZE", "PALETTE", "R_AXIS",
           "STYLE_RC", "TICK_SIZE", "accuracy_limits", "annotate_points", "as_percent", "axis_label",
           "correlation_figure", "correlation_panel", "data_obstacles", "display_name", "finish_layout",
           "fit_tick_labels", "forest_figure", "forest_plot", "grid", "integer_ticks", "interval_text",
           "is_fraction", "learning_curves_figure", "log_count_axis", "losses_figure", "marginal_effect_figure",
           "new_axes", "pearson_r", "place_legend", "plot_class_scales", "plot_correlations", "plot_curves",
           "plot_scale_vs_accuracy", "r_range", "ranking_figure", "ranking_plot", "refit_tick_labels",
           "replace_legends", "row_label", "save_figure", "scale_accuracy_figure", "series_style",
           "stage_sweep_figure", "style", "style_axes", "tail_title", "use_headless_backend",
           "weights_evolution_figure", "wrap_label"]
