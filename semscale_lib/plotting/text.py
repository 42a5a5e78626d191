"""Text that fits: tick labels that never overlap (wrapped, rotated, thinned) and point labels that repel each
other and the points."""
from __future__ import annotations

import math
import re
import textwrap
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.text import Text

from .style import ANNOTATION_SIZE, MIN_TICK_SIZE


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


def row_label(name: str, longest: int = 24) -> str:
    """A y tick label (a row of a forest or ranking plot), wrapped when longer than ``longest`` characters."""
    return wrap_label(name, longest - 4) if len(name) > longest else name


def _tick_pixels(ax, axis: str, positions) -> np.ndarray:
    points = np.zeros((len(positions), 2))
    points[:, 0 if axis == "x" else 1] = positions
    return ax.transData.transform(points)[:, 0 if axis == "x" else 1]


def _every_kth(texts, order, step: int) -> list[str]:
    keep = set(np.asarray(order)[::step].tolist())
    return [t if i in keep else "" for i, t in enumerate(texts)]


def fit_tick_labels(ax, axis: str = "x", *, grow: bool = False, max_width: float = 12.0, slack: float = 0.85):
    """Make the tick labels of ``axis`` not overlap at the axes' present size, changing them as little as
    needed: as they are; wrapped (:func:`wrap_label`); rotated 45° (right-aligned at the tick); rotated 90°;
    rotated 90° in a smaller font (down to :data:`~.style.MIN_TICK_SIZE`, readable at 150 dpi); when even that
    does not fit, only every k-th tick is named. ``grow``: first widen the figure (to at most ``max_width``
    inches) when that lets the labels stay horizontal — for figures this package created. ``slack``: fraction
    of the tick spacing the labels may use, room for the final layout to shrink the axes a little.

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
        for labels in ([row_label(t) for t in texts], texts):
            extent = sizes(labels, fontsize)[:, 1]
            need = (extent[:-1] + extent[1:]) / 2 + pad
            if len(gaps) == 0 or np.all(need <= gaps):
                return apply(labels, 0)
        size = max(MIN_TICK_SIZE, fontsize * float(np.min(gaps / need)))
        step = max(1, math.ceil(float(np.max(need)) * size / fontsize / float(np.min(gaps))))
        return apply(_every_kth(texts, order, step) if step > 1 else texts, 0, size=size)

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
    size = max(MIN_TICK_SIZE, fontsize * float(np.min(gaps)) / (line + pad))
    need = (line + pad) * size / fontsize
    step = max(1, math.ceil(need / float(np.min(gaps))))
    if step > 1:     # too many names even at the smallest size: name every step-th tick from the left
        texts = _every_kth(texts, order, step)
    return apply(texts, 90, size=size)


def refit_tick_labels(fig) -> None:
    """Fit again the tick labels that :func:`fit_tick_labels` fitted on any axes of ``fig`` (after a layout
    change such as ``tight_layout``)."""
    for ax in fig.axes:
        for axis in getattr(ax, "_semscale_ticklabels", {}):
            fit_tick_labels(ax, axis)


def _overlap(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def annotate_points(ax, xs, ys, labels: Sequence[str], *, fontsize: float = ANNOTATION_SIZE, color: str = "0.2"):
    """Label points with names placed so that they overlap neither each other nor the points: each label takes
    the first of several positions around its point (right-above, right-below, left-above, …, then farther out)
    that is free, else the least crowded one, with a thin leader line when it sits away from its point.
    Deterministic (points are labelled in order of x, then y). ``fontsize`` in points (default 8, readable at
    150 dpi). Returns the annotations."""
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
        for scale in (1, 3, 6, 9, 13, 18, 24, 32):
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


__all__ = ["annotate_points", "fit_tick_labels", "refit_tick_labels", "row_label", "wrap_label"]
