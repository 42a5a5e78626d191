"""Figure layout: grids of panels, the final layout (tick labels refitted, legends re-placed) and saving."""
from __future__ import annotations

from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from .legends import replace_legends
from .style import style
from .text import _renderer, refit_tick_labels


def _tight(fig) -> None:
    """``tight_layout`` below the figure's suptitle, if it has one (tight_layout alone lets panel titles run
    into it)."""
    title = getattr(fig, "_suptitle", None)
    if title is None or not title.get_text():
        fig.tight_layout()
        return
    height = title.get_window_extent(_renderer(fig)).height / fig.bbox.height
    fig.tight_layout(rect=(0, 0, 1, title.get_position()[1] - height - 0.005))


def finish_layout(fig) -> None:
    """``tight_layout`` (below a suptitle), then fit the tick labels and place the legends again for the final
    axes sizes, then ``tight_layout`` again (once more when a legend moved outside its axes or back)."""
    with style():
        _tight(fig)
        fitted = any(getattr(ax, "_semscale_ticklabels", None) for ax in fig.axes)
        placed = any(getattr(ax, "_semscale_legend", None) for ax in fig.axes)
        if not (fitted or placed):
            return
        if fitted:
            refit_tick_labels(fig)
        replace_legends(fig)
        _tight(fig)
        if placed and replace_legends(fig):
            _tight(fig)


def save_figure(ax_or_fig, path) -> None:
    """Save the figure of ``ax_or_fig`` as PNG (150 dpi, tight, tick labels refitted) and close it."""
    figure = ax_or_fig.figure if hasattr(ax_or_fig, "figure") and not isinstance(ax_or_fig, plt.Figure) \
        else ax_or_fig
    finish_layout(figure)
    figure.savefig(path, dpi=150)
    plt.close(figure)


def use_headless_backend() -> None:
    """Switch matplotlib to Agg (for command-line use on machines without a display)."""
    matplotlib.use("Agg")


def grid(n_panels: int, *, ncols: int = 3, panel_size: Sequence[float] = (4.5, 3.5), **subplots):
    """A figure with ``n_panels`` axes in rows of ``ncols`` (in the package's style); unused axes are hidden.
    ``subplots``: more arguments of ``plt.subplots`` (``sharex``, ...). Returns (fig, axes): a flat numpy array
    of the ``n_panels`` used axes (index, iterate or ``.ravel()`` it)."""
    nrows = -(-n_panels // ncols)
    with style():
        fig, axes = plt.subplots(nrows, min(ncols, n_panels), squeeze=False,
                                 figsize=(panel_size[0] * min(ncols, n_panels), panel_size[1] * nrows), **subplots)
    flat = list(axes.ravel())
    for extra in flat[n_panels:]:
        extra.set_visible(False)
    used = np.empty(n_panels, dtype=object)
    used[:] = flat[:n_panels]
    return fig, used


def new_axes(ax=None, figsize=(7, 3.5)):
    """``ax``, or the axes of a new figure of ``figsize`` inches made in the package's style."""
    if ax is None:
        with style():
            _, ax = plt.subplots(figsize=figsize)
    return ax


__all__ = ["finish_layout", "grid", "new_axes", "save_figure", "use_headless_backend"]
