"""Tests of semscale_lib.plotting: figures a reader can read — class names that never overlap, scatter labels that
do not pile up, accuracies in percent, integer epoch ticks, no error bar from one seed, forest and ranking plots;
then the one style (palette, distinct series, text sizes, legends that hide no data), display names instead of
identifiers, and the figure function of each notebook figure."""
from __future__ import annotations

import math
import re

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
    assert _row_order(ax) == ["S", "S′", "W (inter-class term)", "N (training images)"]   # undefined last
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


# ------------------------------------------------------------------------------ one style, names, figure functions
METHODS = ["CE", "DSB-CE", "LDAM", "DSB-LDAM", "LDAM-DRW"]
PREDICTORS = ["E_n", "N", "knn_accuracy", "W", "nearest_centre", "fisher_ratio", "S (alpha=1)", "effective_rank",
              "S (alpha=2)", "S'"]
STUDIES = ["digits · cnn-small · balanced", "digits · cnn-small · long-tailed", "fashion-mnist · cnn-small · balanced"]


def _marginal_inputs(val=False):
    ms = [10, 100, 1000, 6000]
    volumes = pd.DataFrame([{"m": m, "class": c, "name": FASHION[c],
                             "semantic_scale": (90 + 8 * c) * (1 - np.exp(-m / 150)) + 20}
                            for m in ms for c in range(4)])
    totals = volumes.groupby("m", as_index=False)["semantic_scale"].sum().rename(columns={"semantic_scale": "total"})
    training = pd.DataFrame([{"m": m, "seed": s, "top1": 0.72 + 0.001 * s + 0.0005 * i}
                             for i, m in enumerate((100, 1000, 6000)) for s in range(3)])
    if val:
        training["val_top1"] = training["top1"] + 0.01
    return volumes, totals, training


def _marginal(**kwargs):
    volumes, totals, training = _marginal_inputs(val=kwargs.pop("val", False))
    return plotting.marginal_effect_figure(volumes, totals, training, betas=[0.9, 0.99, 0.999, 0.9999], **kwargs)


def _correlate_output(balanced, seed=0):
    rng = np.random.default_rng(seed)
    quantities = ["N", "E_n", "W", "S'"] + [f"S (alpha={a:g})" for a in (1, 1.5, 2)]
    r = rng.uniform(-0.3, 0.7, len(quantities))
    defined = np.ones(len(quantities), bool)
    if balanced:
        defined[:2], r[:2] = False, np.nan
    return pd.DataFrame({"quantity": quantities, "pearson_r": r, "ci_low": np.clip(r - 0.5, -1, 1),
                         "ci_high": np.clip(r + 0.3, -1, 1), "defined": defined})


def _correlation_figure():
    panels = {(setting, source): _correlate_output(setting == "balanced", i)
              for i, (setting, source) in enumerate([(s, src) for s in ("balanced", "long-tailed")
                                                     for src in ("pixels (training images)", "features (test set)")])}
    references = {"balanced": ("CIFAR-10, ResNet-18", {"W": 0.17, "S'": 0.54, "S (alpha=1)": 0.79}),
                  "long-tailed": ("CIFAR-10-LT, ResNet-18", {"N": 0.84, "S'": 0.87, "S (alpha=2)": 0.96})}
    return plotting.correlation_figure(panels, references=references)


def _scale_accuracy_figure():
    rng = np.random.default_rng(1)
    panels = {}
    for setting in ("balanced", "long-tailed"):
        table = _scales(FASHION, seed=len(setting)).assign(accuracy=rng.uniform(0, 0.95, 10))
        table.attrs["alpha"] = 1.0
        panels[(setting, "features (test set)")] = table
    return plotting.scale_accuracy_figure(panels)


def _groups(n_seeds=3):
    return pd.DataFrame([{"method": loss + suffix, "seed": s, "top1": 0.5 + 0.01 * s + 0.02 * len(suffix) / 12,
                          "few": 0.2 + 0.01 * s} for loss in ("ce", "ldam") for suffix in ("", " + S-weights")
                         for s in range(n_seeds)])


def _learning_curves(val=False):
    rows = [{"method": m, "seed": s, "epoch": e, "top1": 0.3 + 0.05 * e + 0.02 * i + 0.005 * s, "many": 0.8,
             "medium": 0.2 + 0.03 * e, "few": 0.05 * e + 0.01 * i} for i, m in enumerate(METHODS)
            for s in range(3) for e in range(1, 5)]
    curves = pd.DataFrame(rows)
    if val:
        curves["val_top1"] = curves["top1"] + 0.01
    return curves


def _history(n_classes, count=False):
    rows = [{"epoch": 1 + it // 50, "iteration": it, "class": c, "name": f"class {c}",
             "S": 1 + 0.004 * c + 0.001 * it, "a": 1.2 - 0.004 * c + 0.0001 * it}
            for it in range(100, 160, 10) for c in range(n_classes)]
    history = pd.DataFrame(rows)
    if count:
        history["count"] = history["class"].map(lambda c: int(500 * 0.97 ** c))
    return history


def _forest_tables(predictors=PREDICTORS[:4]):
    tables = {}
    for i, predictor in enumerate(predictors):
        r = np.array([0.8, 0.3, -0.2]) - 0.15 * i
        studies = pd.DataFrame({"study": STUDIES, "r": r, "ci_low": np.clip(r - 0.5 - 0.1 * i, -1, 1),
                                "ci_high": np.clip(r + 0.2, -1, 1), "weight": [3.0, 2.0, 1.0]})
        pooled = pd.DataFrame([{"study": "pooled", "r": r.mean(), "ci_low": r.mean() - 0.3,
                                "ci_high": r.mean() + 0.2, "weight": 1.0}])
        tables[predictor] = pd.concat([studies, pooled], ignore_index=True)
    return tables


def _ranking():
    r = np.linspace(0.6, -0.2, len(PREDICTORS))
    return pd.DataFrame({"predictor": PREDICTORS, "k": 4, "r": r, "ci_low": r - 0.3, "ci_high": r + 0.2})


FIGURES = {
    "marginal_effect": lambda: _marginal(saturation_m=1000, val=True),
    "correlation": _correlation_figure,
    "scale_accuracy": _scale_accuracy_figure,
    "losses": lambda: plotting.losses_figure(_groups(), ["ce", "ldam"], few_threshold=200),
    "learning_curves": lambda: plotting.learning_curves_figure(_learning_curves(val=True), stage_epoch=2,
                                                               many_threshold=1000, few_threshold=200),
    "weights_evolution": lambda: plotting.weights_evolution_figure(_history(10), method="DSB-CE"),
    "weights_evolution_100": lambda: plotting.weights_evolution_figure(_history(100, count=True), method="DSB-CE"),
    "stage_sweep": lambda: plotting.stage_sweep_figure(pd.DataFrame({"n": [1], "top1": [0.512]}),
                                                       baseline=("CE", 0.487), method="DSB-CE"),
    "forest": lambda: plotting.forest_figure(_forest_tables(PREDICTORS), confidence=0.995),
    "ranking": lambda: plotting.ranking_figure(_ranking(), confidence=0.995),
}


def _finished(fig):
    plotting.finish_layout(fig)          # what save_and_show does before saving
    fig.set_dpi(150)
    fig.canvas.draw()
    return fig


def _texts(fig):
    """Every visible, non-empty text of ``fig`` with its role: tick, legend, axis (labels, titles), other."""
    found = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        ticks = set(ax.get_xticklabels() + ax.get_yticklabels())
        legend = ax.get_legend()
        legend_texts = set(legend.get_texts()) | {legend.get_title()} if legend else set()
        axis = {ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label}
        for text in ax.findobj(Text):
            if not text.get_visible() or not text.get_text().strip():
                continue
            role = ("tick" if text in ticks else "legend" if text in legend_texts else "axis" if text in axis
                    else "other")
            found.append((role, text))
    if getattr(fig, "_suptitle", None) is not None:
        found.append(("axis", fig._suptitle))
    return found


def _data_pixels(ax):
    """Display coordinates of every data point of ``ax``: line vertices in data coordinates and scatter points."""
    points = [np.empty((0, 2))]
    for line in ax.lines:
        if line.get_transform() is ax.transData and len(line.get_xydata()):
            points.append(ax.transData.transform(np.asarray(line.get_xydata(), dtype=np.float64)))
    for collection in ax.collections:
        offsets = np.asarray(collection.get_offsets(), dtype=np.float64).reshape(-1, 2)
        if type(collection).__name__ == "PathCollection" and len(offsets):
            points.append(collection.get_offset_transform().transform(offsets))
    points = np.concatenate(points)
    return points[np.all(np.isfinite(points), axis=1)]


def _series_key(handle):
    return (matplotlib.colors.to_hex(handle.get_color()), handle.get_marker(), str(handle.get_linestyle()),
            str(handle._unscaled_dash_pattern))


def test_the_palette_is_seaborn_colorblind_and_series_styles_are_distinct():
    import seaborn as sns

    assert np.allclose(plotting.PALETTE, sns.color_palette("colorblind"))
    styles = [plotting.series_style(i) for i in range(220)]
    assert len({(s["color"], s["marker"], str(s["linestyle"])) for s in styles}) == 220
    for a, b in zip(styles, styles[1:]):          # neighbours differ without colour
        assert a["marker"] != b["marker"] and a["linestyle"] != b["linestyle"]


@pytest.mark.parametrize("name", ["marginal_effect", "learning_curves", "weights_evolution"])
def test_no_two_series_share_colour_marker_and_line_style(name):
    fig = _finished(FIGURES[name]())
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert sum(len(legend.legend_handles) for legend in legends) >= 5
    palette = {matplotlib.colors.to_hex(c) for c in plotting.PALETTE}
    for legend in legends:
        handles = [h for h in legend.legend_handles if isinstance(h, matplotlib.lines.Line2D)]
        keys = [_series_key(h) for h in handles]
        assert len(set(keys)) == len(keys), [t.get_text() for t in legend.get_texts()]
        for handle in handles:     # categorical colours from the palette; references in black or grey
            colour = matplotlib.colors.to_rgb(handle.get_color())
            assert matplotlib.colors.to_hex(colour) in palette or len(set(colour)) == 1


def test_beta_0999_and_09999_differ_in_colour_marker_and_line_style():
    fig = _finished(_marginal())
    lines = {line.get_label(): line for line in fig.axes[1].get_lines()}
    a, b = lines["Eₘ, β = 0.999"], lines["Eₘ, β = 0.9999"]
    assert a.get_marker() != b.get_marker()
    assert _series_key(a)[2:] != _series_key(b)[2:]
    assert a.get_color() != b.get_color()


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_text_is_readable_at_150_dpi_and_shows_no_identifier(name, tmp_path):
    fig = _finished(FIGURES[name]())
    texts = _texts(fig)
    assert texts
    for role, text in texts:
        size, content = text.get_fontsize(), text.get_text()
        assert size >= {"tick": 9, "axis": 10, "legend": 9, "other": 8}[role], (role, content, size)
        assert "alpha=" not in content and "beta=" not in content, content
        assert not re.search(r"[A-Za-z]_[A-Za-z]", content), content
    save_and_show(fig, tmp_path / f"{name}.png", show=False)
    assert (tmp_path / f"{name}.png").stat().st_size > 0


def test_old_panels_use_the_minimum_sizes_too():
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    plotting.plot_class_scales(_scales([f"class name {i}" for i in range(60)]), ax=axes[0])
    plotting.plot_correlations(_correlate_output(False), reference={"S'": 0.8}, ax=axes[1])
    plotting.plot_scale_vs_accuracy(_scales(FASHION), np.linspace(0.1, 0.9, 10), ax=axes[2])
    for role, text in _texts(_finished(fig)):
        assert text.get_fontsize() >= (9 if role == "tick" else 8), (role, text.get_text())


@pytest.mark.parametrize("name", ["marginal_effect", "losses", "stage_sweep", "correlation", "learning_curves"])
def test_legends_hide_no_data_point(name):
    fig = _finished(FIGURES[name]())
    legends = [(ax, ax.get_legend()) for ax in fig.axes if ax.get_legend() is not None]
    assert legends
    renderer = fig.canvas.get_renderer()
    for ax, legend in legends:
        box = legend.get_window_extent(renderer)
        points = _data_pixels(ax)
        inside = (points[:, 0] >= box.x0) & (points[:, 0] <= box.x1) & (points[:, 1] >= box.y0) & \
                 (points[:, 1] <= box.y1)
        assert not inside.any(), (ax.get_title(), points[inside])
        for bar in ax.patches:
            if isinstance(bar, matplotlib.patches.Rectangle):
                assert not bar.get_window_extent(renderer).overlaps(box)


def test_display_names():
    name = plotting.display_name
    assert name("knn_accuracy") == "k-NN accuracy" and name("fisher_ratio") == "Fisher ratio"
    assert name("nearest_centre") == "nearest-centre distance" and name("effective_rank") == "effective rank"
    assert name("S (alpha=1)") == "S (α = 1)" and name("S (alpha=2.5)") == "S (α = 2.5)"
    assert name("S'") == "S′" and name("S' (raw)") == "S′ (raw)"
    assert name("E_n") == "Eₙ (effective number)" and name("E_n (beta=0.999)") == "Eₙ (β = 0.999)"
    assert name("N") == "N (training images)" and name("W") == "W (inter-class term)"
    assert name("semantic_scale") == plotting.COLUMN_LABELS["semantic_scale"]
    assert name("an unknown_name") == "an unknown_name" and name(3) == "3"


def test_style_changes_no_global_state():
    before = dict(matplotlib.rcParams)
    for name in ("learning_curves", "stage_sweep"):
        plt.close(_finished(FIGURES[name]()))
    with plotting.style():
        assert matplotlib.rcParams["xtick.labelsize"] == plotting.TICK_SIZE
    assert dict(matplotlib.rcParams) == before


def test_marginal_effect_figure_panels():
    fig = _finished(_marginal(saturation_m=1000, val=True))
    a, b, c, d = fig.axes
    low, high = c.get_ylim()
    assert high - low >= 10 and c.get_ylabel() == "top-1 (%)"          # a flat line looks flat
    assert d.get_ylim()[1] - d.get_ylim()[0] >= 10
    assert a.get_xscale() == b.get_xscale() == c.get_xscale() == "log"
    assert "mean ± sd over 4 classes" in a.get_title()
    labels = [t.get_text() for t in c.get_legend().get_texts()]
    assert any("validation" in t for t in labels) and any("min–max" in t for t in labels)
    assert any("m = 1000" in t for t in labels)                           # the saturation line
    assert sorted(t.get_text() for t in d.texts) == ["m = 100", "m = 1000", "m = 6000"]
    b_lines = {line.get_label(): line for line in b.get_lines()}
    assert {"Σ S′ of the images", "m itself"} <= set(b_lines)
    assert np.isclose(b_lines["Σ S′ of the images"].get_ydata()[-1], 1.0)
    with pytest.raises(ValueError, match="trained m"):
        volumes, totals, training = _marginal_inputs()
        plotting.marginal_effect_figure(volumes, totals[totals["m"] != 6000], training, betas=[0.999])


def test_correlation_figure_says_fisher_z_and_names_each_rows_paper_data():
    fig = _finished(_correlation_figure())
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4 and {ax.get_xlim() for ax in visible} == {(-1.0, 1.0)}
    legends = [ax.get_legend() for ax in visible if ax.get_legend() is not None]
    assert len(legends) == 2                                              # one per row
    texts = [[t.get_text() for t in legend.get_texts()] for legend in legends]
    assert all(any("Fisher-z" in t for t in row) for row in texts)
    assert not any("bootstrap" in t for row in texts for t in row)
    assert "paper: CIFAR-10, ResNet-18" in texts[0] and "paper: CIFAR-10-LT, ResNet-18" in texts[1]
    rows = [t.get_text() for t in visible[0].get_yticklabels()]
    assert rows[:2] == ["N (training images)", "Eₙ (effective number)"] and "S (α = 1.5)" in rows
    assert sum(t.get_text() == "undefined" for t in visible[0].texts) == 2


def test_plot_correlations_labels_the_fisher_z_interval():
    ax = plotting.plot_correlations(_correlate_output(True), reference={"S'": 0.8},
                                    reference_label="paper: CIFAR-10-LT, ResNet-18")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("Fisher-z" in t for t in labels) and "paper: CIFAR-10-LT, ResNet-18" in labels
    assert [t.get_text() for t in ax.get_xticklabels()][3] == "S′"


def test_scale_accuracy_figure_titles_carry_r_and_share_the_accuracy_axis():
    fig = _finished(_scale_accuracy_figure())
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len({ax.get_ylim() for ax in visible}) == 1
    for ax in visible:
        assert "Pearson r(S, accuracy) = " in ax.get_title() and "(α = 1)" in ax.get_title()
        assert sorted(t.get_text() for t in ax.texts) == sorted(FASHION)
        assert all(t.get_fontsize() >= 8 for t in ax.texts)


def test_losses_figure_bars_and_what_the_error_bar_is():
    fig = _finished(plotting.losses_figure(_groups(), ["ce", "ldam"], few_threshold=150))
    top1, few = fig.axes
    assert "mean ± sd over 3 seeds" in top1.get_title() and "< 150 training images" in few.get_title()
    assert [t.get_text() for t in top1.get_xticklabels()] == ["ce", "ldam"]
    bars = [p for p in top1.patches if isinstance(p, matplotlib.patches.Rectangle)]
    assert len(bars) == 4 and max(b.get_height() for b in bars) > 1          # percent
    labels = [t.get_text() for t in few.get_legend().get_texts()]
    assert labels == ["without weights", "with 1/S weights"]
    one = _finished(plotting.losses_figure(_groups(1), ["ce", "ldam"], few_threshold=150))
    assert "1 seed, no error bar" in one.axes[0].get_title()


@pytest.mark.parametrize("tail, words", [("few", "few-shot: < 123 training images"),
                                         ("medium", "medium-shot: 123–456 training images")])
def test_learning_curves_tail_title_states_the_thresholds_given(tail, words):
    fig = _finished(plotting.learning_curves_figure(_learning_curves(), stage_epoch=2, many_threshold=456,
                                                    few_threshold=123, tail=tail))
    top1, tail_ax = fig.axes
    assert words in tail_ax.get_title() and "mean ± sd over 3 seeds" in tail_ax.get_title()
    assert "20" not in tail_ax.get_title().replace("123", "")
    assert tail_ax.get_ylabel() == f"{tail}-shot accuracy (%)"
    labels = [t.get_text() for t in tail_ax.get_legend().get_texts()]
    assert labels[:5] == METHODS and "end of stage 2 (epoch n = 2)" in labels
    assert sum(np.allclose(line.get_xdata(), 2) for line in top1.get_lines()) == 1


def test_weights_evolution_with_many_classes_shows_a_few_and_the_spread():
    fig = _finished(plotting.weights_evolution_figure(_history(100, count=True), method="DSB-CE"))
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert len(labels) <= 8 and "class 0" in labels and "class 99" in labels     # largest and smallest count
    assert any("all 100 classes" in t for t in labels)
    assert "DSB-CE" in fig.axes[0].get_title()
    few = _finished(plotting.weights_evolution_figure(_history(4), method="DSB-CE"))
    assert [t.get_text() for t in few.axes[1].get_legend().get_texts()] == [f"class {c}" for c in range(4)]


def test_a_single_point_stage_sweep_is_not_drawn_on_a_sliver():
    fig = _finished(FIGURES["stage_sweep"]())
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert high - low >= 10 and low <= 48.7 <= high                         # the baseline is on the axis
    assert "51.2 %" in [t.get_text() for t in ax.texts]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "CE: 48.7 %" in labels and "DSB-CE" in labels
    assert ax.get_xlim()[0] < 1 < ax.get_xlim()[1]
    seeds = pd.DataFrame({"n": [1, 1, 5, 5], "seed": [0, 1, 0, 1], "top1": [0.5, 0.52, 0.55, 0.57]})
    two = _finished(plotting.stage_sweep_figure(seeds, method="DSB-CE"))
    assert "mean ± sd over 2 seeds" in two.axes[0].get_title()


def test_forest_figure_panels_share_one_r_axis_and_name_predictors():
    fig = _finished(plotting.forest_figure(_forest_tables(), confidence=0.995))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len({ax.get_xlim() for ax in visible}) == 1
    low, high = visible[0].get_xlim()
    assert -1.05 <= low <= -0.7 and 0.8 <= high <= 1.05                   # the union of every CI
    assert [ax.get_title() for ax in visible] == ["Eₙ (effective number)", "N (training images)", "k-NN accuracy",
                                                  "W (inter-class term)"]
    assert "99.5 % CI" in fig._suptitle.get_text()
    assert _row_order(visible[0]) == STUDIES + ["pooled"]                   # one study order in every panel
    assert all(t.get_fontsize() >= 9 for ax in visible for t in ax.texts)
    # a study missing from one predictor's table is an "undefined" row, not a shifted one
    tables = _forest_tables()
    tables["W"] = tables["W"].iloc[1:].reset_index(drop=True)
    fig = _finished(plotting.forest_figure(tables, confidence=0.95))
    assert "undefined" in [t.get_text() for t in fig.axes[3].texts]


def test_ranking_figure():
    ranking = _ranking()
    ranking.loc[len(ranking)] = {"predictor": "silhouette", "k": 1, "r": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    fig = _finished(plotting.ranking_figure(ranking, confidence=0.995))
    ax = fig.axes[0]
    assert _row_order(ax)[:3] == ["Eₙ (effective number)", "N (training images)", "k-NN accuracy"]
    assert len(ax.get_yticks()) == len(PREDICTORS)                           # the undefined one is left out
    assert "99.5 % CI" in ax.get_title() and "4 studies" in ax.get_title()
    ranking.loc[0, "k"] = 3                                                  # k differs: said per row
    ax = _finished(plotting.ranking_figure(ranking, confidence=0.995)).axes[0]
    assert _row_order(ax)[0].replace("\n", " ") == "Eₙ (effective number) (k = 3)"


def test_minimal_inputs():
    volumes = pd.DataFrame({"m": [10, 100, 10, 100], "class": [0, 0, 1, 1], "name": ["a", "a", "b", "b"],
                            "semantic_scale": [1.0, 2.0, 1.5, 2.5]})
    totals = pd.DataFrame({"m": [10, 100], "total": [2.5, 4.5]})
    training = pd.DataFrame({"m": [10, 100], "seed": [0, 0], "top1": [0.5, 0.6]})
    corr = pd.DataFrame({"quantity": ["S'"], "pearson_r": [0.2], "ci_low": [-0.5], "ci_high": [0.7],
                         "defined": [True]})
    curves = pd.DataFrame({"method": ["CE", "CE"], "seed": [0, 0], "epoch": [1, 2], "top1": [0.3, 0.4],
                           "many": [0.5, 0.6], "medium": [np.nan, np.nan], "few": [0.0, 0.1]})
    history = pd.DataFrame({"epoch": [2], "iteration": [10], "class": [0], "name": ["a"], "S": [1.0], "a": [1.0]})
    table = pd.DataFrame({"name": ["a", "b", "c"], "imbalance_scale": [0.2, 0.4, 0.9], "accuracy": [0.1, 0.5, 0.4]})
    built = [
        plotting.marginal_effect_figure(volumes, totals, training, betas=[0.999]),
        plotting.correlation_figure({"one panel": corr}),
        plotting.scale_accuracy_figure({"one panel": table}),
        plotting.losses_figure(pd.DataFrame({"method": ["ce", "ce + S-weights"], "seed": [0, 0], "top1": [0.5, 0.6],
                                             "few": [np.nan, np.nan]}), ["ce"], few_threshold=20),
        plotting.learning_curves_figure(curves, many_threshold=100, few_threshold=20, tail="medium"),
        plotting.weights_evolution_figure(history, method="DSB-CE"),
        plotting.stage_sweep_figure(pd.DataFrame({"n": [3], "top1": [0.9]}), method="DSB-CE"),
        plotting.forest_figure({"S'": FOREST}, confidence=0.95),
        plotting.ranking_figure(pd.DataFrame({"predictor": ["S'"], "k": [2], "r": [0.3], "ci_low": [0.1],
                                              "ci_high": [0.5]}), confidence=0.95),
    ]
    for fig in built:
        assert isinstance(fig, matplotlib.figure.Figure)
        _finished(fig)
    assert "no medium-shot class" in built[4].axes[1].texts[0].get_text()
    assert "no class has fewer than 20" in built[3].axes[1].texts[-1].get_text()
