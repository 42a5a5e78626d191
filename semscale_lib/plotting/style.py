"""One look for every figure: seaborn's colour-blind palette, a distinct marker and line style per series, text
sizes readable at the saved 150 dpi, accuracy axes that do not magnify noise.

:func:`style` is an rc context: figure functions draw inside it, and nothing changes matplotlib's global state
when the package is imported. Sizes that must survive drawing outside the context (tick labels created at draw
time, legends re-placed after the layout) are also set explicitly on each artist.
"""
from __future__ import annotations

from contextlib import contextmanager

import matplotlib
import numpy as np
import seaborn as sns
from cycler import cycler
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

#: seaborn's ``colorblind`` palette (10 colours, RGB in [0, 1]): every categorical colour.
PALETTE: list[tuple[float, float, float]] = [tuple(float(c) for c in rgb) for rgb in sns.color_palette("colorblind")]
#: One marker per series; 11 markers against 10 colours, so (colour, marker) pairs repeat only after 110 series.
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h"]
#: Line styles of series; dotted (":") is kept for reference lines and secondary series (validation).
LINESTYLES = ["-", "--", "-.", (0, (3, 1, 1, 1, 1, 1))]
SECONDARY_LINESTYLE = ":"
#: Grey of reference lines (r = 0, a baseline, the end of a stage) and of spread bands of many classes.
REFERENCE_COLOR = "0.35"

# Font sizes in points (at 150 dpi one point is 2.08 px).
FONT_SIZE = 10.0          # axis labels, body text
TITLE_SIZE = 11.0
TICK_SIZE = 10.0
MIN_TICK_SIZE = 9.0       # the smallest a crowded axis may shrink its tick labels to
LEGEND_SIZE = 9.0
ANNOTATION_SIZE = 8.0     # point labels, values written beside a marker
INTERVAL_TEXT_SIZE = 9.0  # "r [low, high]" beside a forest / ranking row

STYLE_RC = {
    "font.size": FONT_SIZE,
    "axes.titlesize": TITLE_SIZE,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": TICK_SIZE,
    "ytick.labelsize": TICK_SIZE,
    "legend.fontsize": LEGEND_SIZE,
    "legend.title_fontsize": LEGEND_SIZE,
    "figure.titlesize": TITLE_SIZE + 1,
    "axes.prop_cycle": cycler(color=PALETTE),
    "savefig.dpi": 150,
}


@contextmanager
def style():
    """The package's rc settings (:data:`STYLE_RC`) for the duration of a ``with`` block; global matplotlib
    state is restored afterwards. Figure functions create and draw their figures inside it."""
    with matplotlib.rc_context(STYLE_RC):
        yield


def series_style(index: int) -> dict:
    """Colour, marker and line style of the ``index``-th series: no two of the first 220 series share all three,
    and neighbours differ in all three (curves differ without colour)."""
    return {"color": PALETTE[index % len(PALETTE)], "marker": MARKERS[index % len(MARKERS)],
            "linestyle": LINESTYLES[index % len(LINESTYLES)]}


def style_axes(ax) -> None:
    """Tick labels at :data:`TICK_SIZE` on ``ax`` however it was created (stored on the axis, so ticks created
    later at draw time get it too)."""
    ax.tick_params(labelsize=TICK_SIZE)


def accuracy_limits(ax, values, *, min_span: float = 10.0, axis: str = "y", pad: float = 0.08) -> tuple:
    """Set the accuracy axis (percent) to hold ``values`` with a margin and to span at least ``min_span`` points,
    centred on the values and kept within [0, 100]: a flat line looks flat, not like a trend in the second
    decimal. Returns the limits."""
    finite = np.asarray(values, dtype=np.float64).ravel()
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return (ax.get_ylim() if axis == "y" else ax.get_xlim())
    low, high = float(finite.min()), float(finite.max())
    span = max(min_span, (high - low) * (1 + 2 * pad))
    centre = (low + high) / 2
    low, high = centre - span / 2, centre + span / 2
    if low < 0:
        low, high = 0.0, min(100.0, high - low)
    if high > 100:
        low, high = max(0.0, low - (high - 100)), 100.0
    (ax.set_ylim if axis == "y" else ax.set_xlim)(low, high)
    return low, high


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


__all__ = ["ANNOTATION_SIZE", "FONT_SIZE", "INTERVAL_TEXT_SIZE", "LEGEND_SIZE", "LINESTYLES", "MARKERS",
           "MIN_TICK_SIZE", "PALETTE", "REFERENCE_COLOR", "SECONDARY_LINESTYLE", "STYLE_RC", "TICK_SIZE",
           "TITLE_SIZE", "accuracy_limits", "integer_ticks", "log_count_axis", "series_style", "style",
           "style_axes"]
