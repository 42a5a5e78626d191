"""What a reader sees instead of an identifier: axis names of table columns and display names of quantities.

Every label, legend entry, tick and title drawn by this package goes through :func:`display_name` (or
:func:`axis_label` for an axis of a table column), so that ``knn_accuracy`` reads "k-NN accuracy" and
``S (alpha=1)`` reads "S (α = 1)".
"""
from __future__ import annotations

import re

import numpy as np

#: Axis names of the columns of the library's tables (units in brackets).
COLUMN_LABELS = {
    "semantic_scale": "semantic scale S′ (bits)",
    "normalized_scale": "S′ / max S′",
    "interclass": "inter-class term W",
    "imbalance_scale": "imbalance scale S = S′ ⊙ W",
    "count": "training samples N",
    "total": "Σ S′ (bits)",
    "feature_total": "Σ S′ of the features (bits)",
    "m": "m (samples per class)",
    "n": "n (epochs)",
    "epoch": "epoch",
    "iteration": "iteration",
}

#: Accuracy columns: shown in percent, with these axis names.
ACCURACY_LABELS = {
    "top1": "top-1", "top5": "top-5", "accuracy": "accuracy", "overall": "mean per-class accuracy",
    "many": "many-shot accuracy", "medium": "medium-shot accuracy", "few": "few-shot accuracy",
    "val_top1": "validation top-1",
}

#: Columns that count something (epochs, samples, seeds): integer ticks.
INTEGER_COLUMNS = {"epoch", "epochs", "n", "m", "iteration", "step", "steps", "seed", "count"}

#: Display names of the quantities the studies name by identifiers (``imbalance.correlate``,
#: ``studies.tracking.PREDICTORS``, ``imbalance_summary``), then the table columns.
DISPLAY_NAMES = {
    "knn_accuracy": "k-NN accuracy",
    "fisher_ratio": "Fisher ratio",
    "nearest_centre": "nearest-centre distance",
    "effective_rank": "effective rank",
    "silhouette": "silhouette",
    "S'": "S′",
    "S' (raw)": "S′ (raw)",
    "E_n": "Eₙ (effective number)",
    "E_m": "Eₘ (effective number)",
    "N": "N (training images)",
    "W": "W (inter-class term)",
    "train_accuracy": "training accuracy",
    **COLUMN_LABELS,
}

_GREEK = {"alpha": "α", "beta": "β", "α": "α", "β": "β"}
_SUBSCRIPT = {"E_n": "Eₙ", "E_m": "Eₘ"}
# "S (alpha=1)", "E_n (beta=0.999)", "E_m (β=0.9)": a symbol with one parameter in brackets
_PARAMETER = re.compile(r"^(?P<symbol>S|S'|W|E_n|E_m) \((?P<greek>alpha|beta|α|β)\s*=\s*(?P<value>[^)]+)\)$")


def display_name(identifier) -> str:
    """The name a reader sees for ``identifier``: ``knn_accuracy`` → "k-NN accuracy", ``S (alpha=1)`` →
    "S (α = 1)" (every α), ``E_n (beta=0.999)`` → "Eₙ (β = 0.999)", ``S'`` → "S′", a table column → its axis name
    (:data:`COLUMN_LABELS`). Names it does not know are returned unchanged (as ``str``)."""
    name = str(identifier)
    if name in DISPLAY_NAMES:
        return DISPLAY_NAMES[name]
    match = _PARAMETER.match(name)
    if match:
        symbol = _SUBSCRIPT.get(match["symbol"], match["symbol"].replace("'", "′"))
        return f"{symbol} ({_GREEK[match['greek']]} = {match['value'].strip()})"
    return name


def axis_label(column: str, *, percent: bool = False) -> str:
    """The axis name of a column: accuracies say "(%)" when shown in percent, S′ says "(bits)"; any other column
    its :func:`display_name`."""
    if column in ACCURACY_LABELS:
        return ACCURACY_LABELS[column] + (" (%)" if percent else " (fraction)")
    return display_name(column)


def is_fraction(values) -> bool:
    """Whether accuracies ``values`` are fractions (every finite value in [0, 1]) rather than percentages."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return bool(finite.size) and float(finite.min()) >= 0.0 and float(finite.max()) <= 1.0


def as_percent(values) -> np.ndarray:
    """Accuracies in percent: fractions (all in [0, 1]) × 100, anything else unchanged."""
    values = np.asarray(values, dtype=np.float64)
    return 100.0 * values if is_fraction(values) else values


__all__ = ["ACCURACY_LABELS", "COLUMN_LABELS", "DISPLAY_NAMES", "INTEGER_COLUMNS", "as_percent", "axis_label",
           "display_name", "is_fraction"]
