"""The ``measure`` job: per-class semantic scales (and their correlation with accuracy) written to a folder."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import plotting
from ..imbalance import check_per_class, correlate, imbalance_summary, quantify_imbalance
from ..paths import claim_output_dir


def measure_to_folder(features, labels, out_dir, *, counts=None, accuracy=None, alpha: float = 1.0,
                      class_names=None, source: str = "features", extra: dict | None = None,
                      force: bool = False, device=None) -> dict:
    """Quantify semantic scale imbalance of (features (N, d), labels (N,)) and write the results to ``out_dir``.

    Writes ``semantic_scales.csv`` (columns of ``quantify_imbalance``), ``semantic_scales.png`` (bar chart, classes
    sorted by S), ``imbalance_summary.csv`` ([ours] dataset-level ratios) and ``measure.json`` (settings). With
    ``accuracy`` (C,) also ``correlations.csv`` (the paper's Table 1 layout) and ``scale_vs_accuracy.png``.
    ``counts`` (C,) replaces the ``count`` column (e.g. training counts when the features are of a test set).
    Returns the paths written, by name.

    The inputs are checked before anything is written; ``out_dir`` must then be new or empty unless ``force``
    (same-named files are replaced, nothing is deleted): :func:`semscale_lib.paths.claim_output_dir`.
    ``device``: where S′ is computed (None: the CPU for numpy input; "auto": CUDA when present).
    """
    table = quantify_imbalance(features, labels, alpha=alpha, class_names=class_names, device=device)
    if counts is not None:
        counts = check_per_class(counts, len(table), "counts", "one training count per class")
        if np.any(counts < 0):
            raise ValueError(f"counts: expected counts ≥ 0, found {counts.min():g}")
        counts = counts.astype(np.int64) if np.all(counts == np.round(counts)) else counts
        table.insert(table.columns.get_loc("count"), "vectors", table["count"])
        table["count"] = counts
    correlations = None if accuracy is None else correlate(accuracy, table)
    out = claim_output_dir(out_dir, force=force)
    written = {"table": out / "semantic_scales.csv", "summary": out / "imbalance_summary.csv",
               "bars": out / "semantic_scales.png", "settings": out / "measure.json"}
    table.to_csv(written["table"], index=False)
    imbalance_summary(table).to_csv(written["summary"], index=False)
    plotting.save_figure(plotting.plot_class_scales(table, "imbalance_scale"), written["bars"])
    if correlations is not None:
        written["correlations"] = out / "correlations.csv"
        written["scatter"] = out / "scale_vs_accuracy.png"
        correlations.to_csv(written["correlations"], index=False)
        plotting.save_figure(plotting.plot_scale_vs_accuracy(table, accuracy), written["scatter"])
        pd.DataFrame({"class": table["class"], "accuracy": accuracy}).to_csv(out / "per_class_accuracy.csv",
                                                                               index=False)
    settings = {"alpha": alpha, "source": source, "n_vectors": int(len(labels)),
                "dims": int(np.asarray(features).shape[1]), "classes": int(len(table)), **(extra or {})}
    written["settings"].write_text(json.dumps(settings, indent=2, default=str))
    return written
