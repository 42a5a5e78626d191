"""Legends that hide no data: in a corner of the axes that no data point, line or bar crosses, else outside the
axes on the right. The choice is remembered on the axes and made again after the final layout
(:func:`replace_legends`, called by ``finish_layout``), when the axes have their final size."""
from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.patches import Rectangle

from .style import LEGEND_SIZE
from .text import _renderer

CORNERS = ("upper left", "upper right", "lower left", "lower right", "center left", "center right",
           "upper center", "lower center")


def _sampled(points: np.ndarray, step: float = 3.0) -> np.ndarray:
    """Points every ``step`` pixels along the polyline through ``points`` (display coordinates)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    points = points[np.all(np.isfinite(points), axis=1)]
    if len(points) < 2:
        return points
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:]):
        k = max(1, int(np.hypot(*(b - a)) // step))
        out.append(a + (b - a) * np.linspace(0, 1, k + 1)[1:, None])
    return np.concatenate(out)


def data_obstacles(ax) -> tuple[np.ndarray, list, np.ndarray]:
    """What a legend must not cover on ``ax``, in display pixels: points along every data line and error bar and
    every scatter point; boxes (x0, y0, x1, y1) of bars; and points along reference lines (``axhline`` /
    ``axvline``, drawn in axes coordinates on one side) and the edges of bands, which a legend should avoid
    when it can. Returns (data points (N, 2), bar boxes, soft points (M, 2))."""
    data, soft, boxes = [np.empty((0, 2))], [np.empty((0, 2))], []
    for line in ax.lines:
        if not line.get_visible() or len(line.get_xydata()) == 0:
            continue
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=np.float64))
        (data if line.get_transform() is ax.transData else soft).append(_sampled(xy))
    for collection in ax.collections:
        if not collection.get_visible():
            continue
        if isinstance(collection, PathCollection):
            offsets = np.asarray(collection.get_offsets(), dtype=np.float64)
            if len(offsets):
                data.append(collection.get_offset_transform().transform(offsets.reshape(-1, 2)))
        elif isinstance(collection, LineCollection):
            for segment in collection.get_segments():
                data.append(_sampled(collection.get_transform().transform(np.asarray(segment, dtype=np.float64))))
        elif isinstance(collection, PolyCollection):
            for path in collection.get_paths():
                soft.append(_sampled(collection.get_transform().transform(path.vertices), step=6.0))
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_visible() and patch.get_height() != 0:
            box = patch.get_window_extent()
            boxes.append((box.x0, box.y0, box.x1, box.y1))
        elif patch.get_visible():
            data.append(_sampled(patch.get_transform().transform(patch.get_path().vertices)))
    return np.concatenate(data), boxes, np.concatenate(soft)


def _hits(box, points: np.ndarray, boxes, margin: float) -> int:
    x0, y0, x1, y1 = box.x0 - margin, box.y0 - margin, box.x1 + margin, box.y1 + margin
    inside = (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
    covered = sum(1 for b in boxes if b[0] < x1 and b[2] > x0 and b[1] < y1 and b[3] > y0)
    return int(inside.sum()) + covered


def _draw(ax, spec, loc, outside: bool):
    kwargs = dict(spec["kwargs"])
    if outside:
        kwargs.update(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    else:
        kwargs.update(loc=loc)
    legend = ax.legend(spec["handles"], spec["labels"], fontsize=LEGEND_SIZE, title_fontsize=LEGEND_SIZE,
                       **kwargs)
    legend._semscale_place = "outside" if outside else loc
    return legend


def _place(ax):
    spec = ax._semscale_legend
    if spec["where"] == "outside":
        return _draw(ax, spec, None, True)
    renderer = _renderer(ax.figure)
    points, boxes, soft = data_obstacles(ax)
    margin = 4 * ax.figure.dpi / 72
    frame = ax.get_window_extent(renderer)
    fallback = None
    for loc in ([spec["where"]] if spec["where"] != "auto" else CORNERS):
        legend = _draw(ax, spec, loc, False)
        box = legend.get_window_extent(renderer)
        if box.width > 0.6 * frame.width or box.height > 0.75 * frame.height:
            break          # a legend that large hides the panel, wherever it sits
        if _hits(box, points, boxes, margin) == 0:
            if _hits(box, soft, [], margin) == 0:
                return legend
            fallback = fallback or loc
    if fallback is not None:
        return _draw(ax, spec, fallback, False)
    return _draw(ax, spec, None, True)


def place_legend(ax, handles=None, labels=None, *, where: str = "auto", **kwargs):
    """A legend on ``ax`` that hides no data: ``where="auto"`` takes the first corner of :data:`CORNERS` that no
    data point, line, error bar or bar crosses (preferring one clear of reference lines and bands too), else
    goes outside the axes on the right; ``where="outside"`` always goes outside; a matplotlib ``loc`` string
    forces that corner when free. ``handles`` / ``labels`` default to the axes' labelled artists; other keyword
    arguments go to ``ax.legend`` (title, ncol, ...). Text at :data:`~.style.LEGEND_SIZE`. Returns the legend
    (None when nothing is labelled)."""
    if handles is None:
        handles, found = ax.get_legend_handles_labels()
        labels = found if labels is None else labels
    if not handles:
        return None
    ax._semscale_legend = {"handles": list(handles), "labels": list(labels), "where": where, "kwargs": kwargs}
    return _place(ax)


def replace_legends(fig) -> bool:
    """Place again every legend :func:`place_legend` made on ``fig`` (after a layout change); returns whether any
    moved between inside and outside the axes (the layout then has to be redone)."""
    moved = False
    for ax in fig.axes:
        if getattr(ax, "_semscale_legend", None) is None:
            continue
        before = getattr(ax.get_legend(), "_semscale_place", None)
        after = _place(ax)._semscale_place
        moved = moved or ((before == "outside") != (after == "outside"))
    return moved


__all__ = ["CORNERS", "data_obstacles", "place_legend", "replace_legends"]
