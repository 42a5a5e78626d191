"""Tests of semscale_lib.plotting: figures a reader can read — class names that never overlap, scatter labels that
do not pile up, accuracies in percent, integer epoch ticks, no error bar from one seed, forest and ranking plots."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from semscale_lib import plotting  # noqa: E402
from semscale_lib.studies.notebook import save_and_show  # noqa: E402

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _scales(names, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"class": range(len(names)), "name": names,
                         "semantic_scale": rng.uniform(60, 120, len(names)),
                         "imbalance_scale": rng.uniform(0.3, 1.0, len(names))})


def _boxes(labels):
    renderer = labels[0].figure.canvas.get_renderer()
    return sorted((t.get_window_extent(renderer) for t in labels if t.get_text()), key=lambda b: b.x0)


def _assert_no_bbox_overlap(labels):
    boxes = _boxes(labels)
    assert len(boxes) >= 2
    for left, right in zip(boxes, boxes[1:]):
        assert not left.overlaps(right), f"tick labels overlap: {left} and {right}"


def _assert_no_glyph_collision(ax):
    """Rotated x tick labels: neighbouring text bands (parallel strips through each tick) must lie at least one
    text height apart, measured perpendicular to the text."""
    named = [(x, t) for x, t in zip(ax.get_xticks(), ax.get_xticklabels()) if t.get_text()]
    labels = [t for _, t in named]
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    rotation = labels[0].get_rotation()
    assert all(t.get_rotation() == rotation for t in labels)
    xs = np.sort(ax.transData.transform(np.c_[[x for x, _ in named], np.zeros(len(named))])[:, 0])
    heights = []
    for label in labels:
        probe = Text(0, 0, label.get_text(), fontproperties=label.get_fontproperties())
        probe.set_figure(fig)
        heights.append(probe.get_window_extent(renderer).height)
    if rotation == 0:
        _assert_no_bbox_overlap(labels)
    else:
        assert np.min(np.diff(xs)) * math.sin(math.radians(rotation)) >= max(heights)


def test_fashion_mnist_class_names_do_not_overlap_at_the_default_size():
    ax = plotting.plot_class_scales(_scales(FASHION), "semantic_scale")
    ax.figure.canvas.draw()
    labels = ax.get_xticklabels()
    assert [t.get_text().replace("\n", " ") for t in labels] != []
    assert {t.get_text().replace("/\n", "/").replace("\n", " ") for t in labels} == set(FASHION)
    _assert_no_bbox_overlap(labels)
    # and still after the final layout (what save_figure / save_and_show do)
    plotting.finish_layout(ax.figure)
    ax.figure.canvas.draw()
    _assert_no_bbox_overlap(ax.get_xticklabels())


@pytest.mark.parametrize("n_classes, figsize", [(10, (12, 3.8)), (10, (6, 3)), (100, (12, 4))])
def test_class_names_never_collide_in_given_axes(n_classes, figsize, tmp_path):
    names = FASHION if n_classes == 10 else [f"class name {i}" for i in range(n_classes)]
    fig, axes = plt.subplots(1, 2, figsize=figsize)
    for ax in axes:
        plotting.plot_class_scales(_scales(names), "imbalance_scale", ax=ax)
    plotting.finish_layout(fig)           # what save_and_show does before saving
    fig.canvas.draw()
    for ax in axes:
        _assert_no_glyph_collision(ax)
    save_and_show(fig, tmp_path / "f.png", show=False)
    assert (tmp_path / "f.png").stat().st_size > 0


def test_wrap_label():
    assert plotting.wrap_label("T-shirt/top") == "T-shirt/\ntop"
    assert plotting.wrap_label("Ankle boot") == "Ankle\nboot"
    assert plotting.wrap_label("Sneaker") == "Sneaker"


def test_correlation_quantities_do_not_collide():
    corr = pd.DataFrame({"quantity": ["N", "E_n (beta=0.999)", "S′", "S (alpha=1)", "S (alpha=2)", "W"],
                         "pearson_r": [np.nan, np.nan, 0.5, 0.6, 0.55, 0.2],
                         "ci_low": [np.nan, np.nan, 0.2, 0.3, 0.2, -0.2],
                         "ci_high": [np.nan, np.nan, 0.8, 0.85, 0.8, 0.5],
                         "defined": [False, False, True, True, True, True]})
    fig, axes = plt.subplots(2, 3, figsize=(16, 8), sharey=True)
    for ax in axes.ravel():
        plotting.plot_correlations(corr, reference={"S′": 0.8}, ax=ax)
    plotting.finish_layout(fig)
    fig.canvas.draw()
    for ax in axes.ravel():
        _assert_no_glyph_collision(ax)


def test_scatter_names_do_not_pile_up_and_accuracy_is_in_percent():
    # two tight clusters of five classes each
    table = _scales(FASHION).assign(imbalance_scale=[0.50, 0.501, 0.502, 0.503, 0.504, 0.9, 0.9, 0.901, 0.902, 0.9])
    accuracy = np.array([0.80, 0.802, 0.801, 0.803, 0.80, 0.60, 0.601, 0.60, 0.602, 0.603])
    ax = plotting.plot_scale_vs_accuracy(table, accuracy)
    ax.figure.canvas.draw()
    texts = [t for t in ax.texts if t.get_text() in FASHION]
    assert len(texts) == 10 and all(t.get_fontsize() <= 8 for t in texts)
    renderer = ax.figure.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in texts]      # the text, without its leader line
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
    y = ax.collections[0].get_offsets()[:, 1]
    assert np.allclose(y, 100 * accuracy) and "(%)" in ax.get_ylabel()
    assert "(bits)" in plotting.plot_scale_vs_accuracy(table, accuracy, "semantic_scale").get_xlabel()


def _curves(n_seeds):
    rows = [{"method": method, "seed": seed, "epoch": epoch, "top1": 0.3 + 0.05 * epoch + 0.01 * seed,
             "few": 0.1 + 0.02 * epoch}
            for method in ("CE", "DSB-CE") for seed in range(n_seeds) for epoch in range(1, 8)]
    return pd.DataFrame(rows)


def test_plot_curves_percent_integer_epochs_and_the_band_it_states():
    ax = plotting.plot_curves(_curves(3), "epoch", "top1", hue="method", title="test top-1 per epoch")
    ys = np.concatenate([line.get_ydata() for line in ax.get_lines() if len(line.get_ydata())])
    assert ys.max() > 1 and ys.max() <= 100 and ax.get_ylabel() == "top-1 (%)"
    assert "mean ± sd over 3 seeds" in ax.get_title() and "test top-1 per epoch" in ax.get_title()
    assert any(isinstance(c, PolyCollection) for c in ax.collections)            # the sd band
    ax.figure.canvas.draw()
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_plot_curves_draws_no_error_bar_from_one_seed():
    ax = plotting.plot_curves(_curves(1), "epoch", "few", hue="method", errorbar="sd")
    assert not any(isinstance(c, PolyCollection) for c in ax.collections)
    assert "n = 1" in ax.get_title() and ax.get_ylabel() == "few-shot accuracy (%)"
    # percentages stay percentages
    ax = plotting.plot_curves(_curves(2).assign(top1=lambda f: 100 * f["top1"]), "epoch", "top1", hue="method")
    assert max(max(line.get_ydata()) for line in ax.get_lines() if len(line.get_ydata())) < 100
    assert "mean ± sd over 2 seeds" in ax.get_title()
    # without a hue, both methods' seeds are pooled: four runs per epoch, not four seeds
    assert "mean ± sd over 4 runs" in plotting.plot_curves(_curves(2), "epoch", "top1").get_title()


FOREST = pd.DataFrame({"study": ["mnist", "pooled", "fashion-mnist", "digits"], "r": [0.4, 0.35, 0.6, -0.1],
                       "ci_low": [0.1, 0.2, 0.4, -0.5], "ci_high": [0.65, 0.5, 0.8, 0.3], "weight": [10, None, 20, 5]})


def _row_order(ax):
    ticks = ax.get_yticks()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    return [label for _, label in sorted(zip(ticks, labels), key=lambda pair: -pair[0])]


def test_forest_plot_sorted_rows_and_a_pooled_diamond():
    ax = plotting.forest_plot(FOREST, title="S")
    assert _row_order(ax) == ["fashion-mnist", "mnist", "digits", "pooled"]
    diamonds = [p for p in ax.patches if isinstance(p, Polygon) and p.get_gid() == "pooled"]
    assert len(diamonds) == 1
    xy = diamonds[0].get_xy()
    assert xy[:, 0].min() == pytest.approx(0.2) and xy[:, 0].max() == pytest.approx(0.5)
    assert len(np.unique(np.round(xy[:-1], 6), axis=0)) == 4                 # four corners: a diamond
    assert ax.get_xlabel() == "Pearson r with per-class accuracy" and ax.get_title() == "S"
    assert any(np.allclose(line.get_xdata(), 0) for line in ax.get_lines())   # the vertical line at 0
    sizes = ax.collections[-1].get_sizes()
    assert sizes.max() > sizes.min()                                          # marker area from the weights
    assert [t.get_text() for t in ax.texts][-1] == "+0.35 [+0.20, +0.50]"
    ax.figure.canvas.draw()
    without = plotting.forest_plot(FOREST[FOREST["study"] != "pooled"].drop(columns="weight"))
    assert _row_order(without) == ["fashion-mnist", "mnist", "digits"]
    assert not [p for p in without.patches if p.get_gid() == "pooled"]


def test_ranking_plot_sorted_by_r():
    table = pd.DataFrame({"predictor": ["S′", "S", "N", "W"], "r": [0.35, 0.5, np.nan, -0.2],
                          "ci_low": [0.2, 0.3, np.nan, -0.4], "ci_high": [0.5, 0.65, np.nan, 0.0]})
    fig, ax = plt.subplots()
    assert plotting.ranking_plot(table, ax=ax, title="which predictor") is ax
    assert _row_order(ax) == ["S", "S′", "W", "N"]                            # undefined last
    assert any(np.allclose(line.get_xdata(), 0) for line in ax.get_lines())
    assert "Pearson r" in ax.get_xlabel() and ax.get_title() == "which predictor"
    fig.canvas.draw()
    with pytest.raises(ValueError, match="ci_low"):
        plotting.ranking_plot(table.drop(columns="ci_low"))


def test_grid_of_forest_plots(tmp_path):
    fig, axes = plotting.grid(4, ncols=3, panel_size=(5.5, 3))
    assert len(axes) == 4 and len(axes.ravel()) == 4 and sum(ax.get_visible() for ax in fig.axes) == 4
    for ax, name in zip(axes.ravel(), ["S", "S′", "W", "N"]):
        plotting.forest_plot(FOREST, ax=ax, title=name)
    save_and_show(fig, tmp_path / "forest.png", show=False)
    assert (tmp_path / "forest.png").stat().st_size > 0
